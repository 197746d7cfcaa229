"""The upload-event starter: turns object-created events into executions: a job's photo
starts the pipeline, a batch's source starts the batch (service/batches.py).

Events arrive at least once (S3 notifications, EventBridge "Object Created", MinIO webhooks
in S3 record format). Executions are named after their job or batch, so a repeated event finds
the name taken and starts nothing."""

from __future__ import annotations

from typing import Any

import boto3

from silhouette.schema import PipelineState
from silhouette.service import batches, captures, keys
from silhouette.service.handlers import transient_aws_errors
from silhouette.service.observability import log_keys, logger, publish_metric
from silhouette.service.records import DYNAMODB_RECORDS, JobRecords
from silhouette.service.storage import s3_client
from silhouette.service.uploads import UploadedObject, pipeline_state, uploaded_objects
from silhouette.settings import get_settings


def start_job(
    upload: UploadedObject,
    stepfunctions: Any,
    s3: Any,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> bool:
    """Start the pipeline for one upload (a capture's: once all its views are in). False when
    it is not a job upload, or the job waits for other views or was already started.

    An upload whose job has no record (deleted, or never requested through the API) belongs
    to no tenant: it is erased instead of analysed."""
    settings = get_settings()
    job_id = keys.job_id_from_upload(upload.key)
    if upload.bucket != settings.bucket or job_id is None:
        logger.warning(
            "ignoring an object outside the upload scheme",
            extra={"bucket": upload.bucket, "key": upload.key},
        )
        return False
    record = job_records.find(job_id)
    if record is None:
        logger.warning("erasing an upload without a job", extra={"job_id": job_id})
        s3.delete_object(Bucket=upload.bucket, Key=upload.key)
        return False
    if record.batch_id is not None:  # a batch's item: its batch runs it, in turn
        return batches.photo_arrived(record, stepfunctions)
    # The job's own request id, whichever request or event announced the upload.
    with log_keys(request_id=record.request_id):
        if not record.views:
            return _start_execution(pipeline_state(upload, record), stepfunctions)
        uploads = captures.arrived(job_id, upload.bucket, s3)
        if waiting_for := captures.missing(record, uploads):
            logger.info("capture waits for its other views", extra={"missing": waiting_for})
            return False
        return _start_execution(captures.pipeline_state(record, uploads), stepfunctions)


def execution_arn(state_machine_arn: str, job_id: str) -> str:
    """The ARN of the job's execution: executions are named after their job."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{job_id}"


def _start_execution(state: PipelineState, stepfunctions: Any) -> bool:
    """Start the job's execution, named after the job. False if it was started before."""
    try:
        stepfunctions.start_execution(
            stateMachineArn=get_settings().state_machine_arn,
            name=state.job_id,
            input=state.model_dump_json(),
        )
    except stepfunctions.exceptions.ExecutionAlreadyExists:
        logger.info("duplicate upload event: job already started", extra={"job_id": state.job_id})
        publish_metric("DuplicateUploadEvents", 1)
        return False
    logger.info("job started", extra={"job_id": state.job_id})
    publish_metric("JobsStarted", 1)
    return True


def start_uploads(event: dict[str, Any]) -> dict[str, int]:
    """Start a job for every upload an object-created event announces."""
    stepfunctions, s3 = boto3.client("stepfunctions"), s3_client()
    with transient_aws_errors("starter"):
        started = [
            batches.start_batch(upload, stepfunctions)
            if keys.batch_id_from_source(upload.key)
            else start_job(upload, stepfunctions, s3)
            for upload in uploaded_objects(event)
        ]
    return {"started": sum(started), "skipped": len(started) - sum(started)}
