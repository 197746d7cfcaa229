"""The sweeper: every job ends, and ends erased.

The state machine records every outcome it reaches, but some paths leave the state machine
without reaching one: an execution that times out or is stopped, a finalize that cannot write,
an upload that never arrives, an upload event that is lost. The sweeper runs on a schedule
(and on each execution that ends abnormally) and looks at every job whose `sweep_at` has come:

- QUEUED, no execution: the photo (a capture: every view) arrived and its event was lost ->
  start the job; else, once the upload forms have expired -> EXPIRED, naming a capture's
  missing views. A batch's item is its batch's to run instead
  (batches.look_at_item).
- QUEUED or PROCESSING, execution still running -> look again later.
- QUEUED or PROCESSING, execution ended -> FAILED through finalize (record, result.json,
  event), with the stage it was in and why the execution ended.
- past its retention period -> the photo, its artifacts and the record are erased.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from silhouette.schema import FinalizeRequest, JobStatus, PipelineState, TaskError, View
from silhouette.service import batches, captures, keys
from silhouette.service.finalize import finalize
from silhouette.service.notifications import EventPublisher
from silhouette.service.observability import log_keys, logger, publish_metric
from silhouette.service.records import (
    DYNAMODB_RECORDS,
    EXPIRED_REASON,
    STAGE_CHECK_AFTER,
    JobRecord,
    JobRecords,
)
from silhouette.service.starter import execution_arn, start_job
from silhouette.service.storage import S3Store, delete_prefixes
from silhouette.service.uploads import UploadedObject
from silhouette.settings import get_settings

# Enough for one more job (a finalize at worst) before the function's own timeout.
STOP_WITH_SECONDS_LEFT = 20.0
# How an execution that ended without a recorded outcome is described, when it gives no error.
_ENDED = {
    "TIMED_OUT": ("States.Timeout", "the job did not finish in the time allowed"),
    "ABORTED": ("States.Aborted", "the job's execution was stopped"),
    "FAILED": ("States.Runtime", "the job's execution failed"),
    "SUCCEEDED": ("States.Runtime", "the execution ended without recording an outcome"),
}


def sweep(
    now: datetime,
    stepfunctions: Any,
    s3: Any,
    seconds_left: Callable[[], float] | None = None,
    job_records: JobRecords = DYNAMODB_RECORDS,
    publisher: EventPublisher | None = None,
) -> dict[str, int]:
    """Look at every job that is due; how many ended up in each outcome. With `seconds_left`
    (the invocation's remaining time), stop in good time: what is left stays due for the next
    run."""
    outcomes: Counter[str] = Counter()
    for job_id in job_records.due_for_sweep(now, get_settings().sweep_lookback_days):
        if seconds_left is not None and seconds_left() < STOP_WITH_SECONDS_LEFT:
            logger.warning("sweep stopped early: the rest is left for the next run")
            break
        outcomes[look_at(job_id, now, stepfunctions, s3, job_records, publisher)] += 1
    for outcome, count in outcomes.items():
        publish_metric("JobsSwept", count, outcome=outcome)
    logger.info("sweep finished", extra={"outcomes": dict(outcomes)})
    return dict(outcomes)


def look_at(
    job_id: str,
    now: datetime,
    stepfunctions: Any,
    s3: Any,
    job_records: JobRecords = DYNAMODB_RECORDS,
    publisher: EventPublisher | None = None,
) -> str:
    """Bring one job forward; what was done: erased, started, expired, failed, running or
    waiting (nothing due yet), or gone."""
    with log_keys(correlation_id=job_id):
        record = job_records.find_any(job_id)
        if record is None:
            return "gone"
        if record.expired_by(now):
            delete_prefixes(s3, get_settings().bucket, keys.job_prefixes(job_id))
            job_records.delete(job_id, even_processing=True)
            logger.info("retention ended: job erased")
            return "erased"
        if JobStatus(record.status).is_terminal:
            job_records.sweep_again_at(job_id, record.expires_at or now + STAGE_CHECK_AFTER)
            return "waiting"
        execution = _execution(job_id, stepfunctions)
        if execution is None and record.batch_id is not None:
            return batches.look_at_item(record, now, stepfunctions, job_records=job_records)
        if execution is None:
            return _start_or_expire(record, now, stepfunctions, s3, job_records)
        if execution["status"] == "RUNNING":
            job_records.sweep_again_at(job_id, now + STAGE_CHECK_AFTER)
            return "running"
        return _record_failure(record, execution, job_records, publisher)


def execution_running(job_id: str, stepfunctions: Any) -> bool:
    execution = _execution(job_id, stepfunctions)
    return execution is not None and execution["status"] == "RUNNING"


def _execution(job_id: str, stepfunctions: Any) -> dict[str, Any] | None:
    """The job's execution (named after the job, see starter), or None if it never started."""
    arn = execution_arn(get_settings().state_machine_arn, job_id)
    try:
        return stepfunctions.describe_execution(executionArn=arn)
    except stepfunctions.exceptions.ExecutionDoesNotExist:
        return None


def _start_or_expire(
    record: JobRecord, now: datetime, stepfunctions: Any, s3: Any, job_records: JobRecords
) -> str:
    bucket, reason, arrival = get_settings().bucket, EXPIRED_REASON, None
    if not record.views:
        arrival = _photo(record.job_id, bucket, s3)
    else:
        uploads = captures.arrived(record.job_id, bucket, s3)
        if waiting_for := captures.missing(record, uploads):
            reason = captures.missing_reason(waiting_for)
        else:
            arrival = uploads[View.FRONT]
    if arrival is not None:  # the upload arrived but its event never started the job
        start_job(arrival, stepfunctions, s3, job_records)
        job_records.sweep_again_at(record.job_id, now + STAGE_CHECK_AFTER)
        logger.warning("upload event lost: job started by the sweeper")
        return "started"
    expired = record.expires_at is not None and job_records.expire(
        record.job_id, record.expires_at, reason
    )
    if not expired:
        return "gone"
    logger.info("upload never arrived: job expired", extra={"reason": reason})
    return "expired"


def _photo(job_id: str, bucket: str, s3: Any) -> UploadedObject | None:
    """A single photo's upload, if it is in storage. A listing rather than HeadObject: the role
    may list the upload prefix, and a missing photo is then an empty list rather than a 403."""
    key = keys.upload(job_id)
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", []):
        return UploadedObject(bucket=bucket, key=key, size=item["Size"], time=item["LastModified"])
    return None


def _record_failure(
    record: JobRecord,
    execution: dict[str, Any],
    job_records: JobRecords,
    publisher: EventPublisher | None,
) -> str:
    """FAILED through finalize, as the state machine would have recorded it."""
    error, cause = _ENDED[execution["status"]]
    state = PipelineState.model_validate_json(execution["input"]).model_copy(
        update={
            "error": TaskError(
                Error=execution.get("error") or error, Cause=execution.get("cause") or cause
            )
        }
    )
    # A job that never reached a stage failed waiting for the first one (finalize's default).
    request = FinalizeRequest(terminal=JobStatus.FAILED, job=state, failed_stage=record.stage)
    finalize(request, S3Store(state.bucket), publisher, job_records)
    logger.warning(
        "execution ended without an outcome: job recorded FAILED",
        extra={"execution_status": execution["status"], "stage": record.stage},
    )
    return "failed"


EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


def on_event(
    event: EventBridgeModel,
    stepfunctions: Any,
    s3: Any,
    seconds_left: Callable[[], float],
    job_records: JobRecords = DYNAMODB_RECORDS,
    publisher: EventPublisher | None = None,
) -> dict[str, int]:
    """A scheduled sweep, or one job whose execution just ended abnormally (AWS sends that
    event at once; the schedule catches whatever it missed). The event's time is "now"."""
    if event.detail_type == EXECUTION_STATUS_CHANGE:
        job_id = event.detail["name"]
        return {look_at(job_id, event.time, stepfunctions, s3, job_records, publisher): 1}
    return sweep(event.time, stepfunctions, s3, seconds_left, job_records, publisher)
