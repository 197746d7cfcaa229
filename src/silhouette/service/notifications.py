"""Job events for partners on the EventBridge bus: source `silhouette.job`, one detail-type per
terminal status. The detail stays small; the full record is at `result_key`.

Sent through the `EventPublisher` port: `EventBridgePublisher` in the functions,
`MemoryPublisher` in unit tests."""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Protocol

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


class JobEvent(NamedTuple):
    detail_type: str
    detail: dict[str, Any]


def job_event(result: JobResult, result_key: str) -> JobEvent:
    """The event announcing a finished job."""
    return JobEvent(DETAIL_TYPES[result.status], job_event_detail(result, result_key))


class EventPublisher(Protocol):
    def publish(self, event: JobEvent) -> None:
        """Send the event; `TransientError` if it was not accepted."""
        ...


class EventBridgePublisher:
    def __init__(self, bus: str, client: Any = None) -> None:
        self.bus = bus
        self.client = client or boto3.client("events")

    def publish(self, event: JobEvent) -> None:
        response = self.client.put_events(
            Entries=[
                {
                    "EventBusName": self.bus,
                    "Source": EVENT_SOURCE,
                    "DetailType": event.detail_type,
                    "Resources": [],
                    "Detail": json.dumps(event.detail),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise TransientError(f"event not accepted: {response['Entries']}")


class MemoryPublisher:
    """Keeps what it is given, for unit tests; the first `failures` events are refused, as
    EventBridge refuses entries when throttled."""

    def __init__(self, failures: int = 0) -> None:
        self.events: list[JobEvent] = []
        self.failures = failures

    def publish(self, event: JobEvent) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("event not accepted: the publisher was told to refuse it")
        self.events.append(event)
