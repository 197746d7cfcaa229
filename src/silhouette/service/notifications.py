"""Job events for partners on the EventBridge bus: source `silhouette.job`, one detail-type per
terminal status. The detail stays small; the full record is at `result_key`."""

from __future__ import annotations

import json
from typing import Any

import boto3

from silhouette.errors import TransientError
from silhouette.names import EVENT_SOURCE, PROJECT_ROOT
from silhouette.schema import SCHEMA_VERSION, JobResult, JobStatus

DETAIL_TYPES = {
    JobStatus.COMPLETED: "Job Completed",
    JobStatus.REJECTED: "Job Rejected",
    JobStatus.FAILED: "Job Failed",
}
# The contract partners code against: a JSON Schema of the detail, one file per schema version.
# It lives in the source tree beside the template, not in the function images.
DETAIL_SCHEMA_PATH = PROJECT_ROOT / "schemas" / f"job-event.v{SCHEMA_VERSION}.json"


def job_event_detail(result: JobResult, result_key: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "job_id": result.job_id,
        "tenant": result.tenant,
        "status": result.status.value,
        "reason": result.reason,
        "error": result.error,
        "result_key": result_key,
        "image": result.image.model_dump() if result.image else None,
        "artifacts": result.artifacts,
        "timings_ms": result.timings_ms,
    }


def publish_job_event(bus: str, result: JobResult, result_key: str, client: Any = None) -> None:
    events = client or boto3.client("events")
    response = events.put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": EVENT_SOURCE,
                "DetailType": DETAIL_TYPES[result.status],
                "Resources": [],
                "Detail": json.dumps(job_event_detail(result, result_key)),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise TransientError(f"event not accepted: {response['Entries']}")
