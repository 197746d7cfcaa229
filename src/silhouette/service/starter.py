"""The upload-event starter: turns object-created events into pipeline executions.

Events arrive at least once (S3 notifications, EventBridge "Object Created", MinIO webhooks
in S3 record format). The execution is named after the job, so a repeated event finds the
name taken and starts nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3
from pydantic import BaseModel, ConfigDict, Field

from silhouette.errors import PermanentError
from silhouette.schema import JobOptions, PipelineState
from silhouette.service import keys
from silhouette.service.handlers import transient_aws_errors
from silhouette.service.observability import log_keys, logger, publish_metric
from silhouette.service.records import DYNAMODB_RECORDS, JobRecord, JobRecords
from silhouette.service.storage import s3_client
from silhouette.settings import get_settings


class UploadedObject(BaseModel):
    bucket: str
    key: str
    size: int | None
    time: datetime


# Only the fields the starter needs, so every producer's variant parses: AWS S3, MinIO (whose
# records say eventSource "minio:s3") and emulators that spell optional fields differently.
class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Bucket(_Lenient):
    name: str


class _Object(_Lenient):
    key: str
    size: float | None = None


class _S3Entity(_Lenient):
    bucket: _Bucket
    object: _Object | None = None


class _NotificationRecord(_Lenient):
    eventName: str
    eventTime: datetime
    s3: _S3Entity


class _Notification(_Lenient):
    Records: list[_NotificationRecord]


class _ObjectCreatedDetail(_Lenient):
    bucket: _Bucket
    object: _Object


class _ObjectCreated(_Lenient):
    detail_type: str = Field(alias="detail-type")
    time: datetime
    detail: _ObjectCreatedDetail


def uploaded_objects(event: dict[str, Any]) -> list[UploadedObject]:
    """The created objects an S3 notification or EventBridge event describes."""
    if "Records" in event:
        return [
            UploadedObject(
                bucket=record.s3.bucket.name,
                # S3 notifications URL-encode keys; EventBridge events do not.
                key=unquote_plus(record.s3.object.key),
                size=_size(record.s3.object.size),
                time=record.eventTime,
            )
            for record in _Notification.model_validate(event).Records
            if record.eventName.lstrip("s3:").startswith("ObjectCreated")
            and record.s3.object is not None
        ]
    if event.get("detail-type") == "Object Created":
        created = _ObjectCreated.model_validate(event)
        return [
            UploadedObject(
                bucket=created.detail.bucket.name,
                key=created.detail.object.key,
                size=_size(created.detail.object.size),
                time=created.time,
            )
        ]
    raise PermanentError("not an object-created event")


def _size(size: float | None) -> int | None:
    return None if size is None else int(size)


def start_job(
    upload: UploadedObject,
    stepfunctions: Any,
    s3: Any,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> bool:
    """Start the pipeline for one upload. False when it is not a job upload or already started.

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
    # The job's own request id, whichever request or event announced the upload.
    with log_keys(request_id=record.request_id):
        return _start_execution(_pipeline_state(upload, record), stepfunctions)


def _pipeline_state(upload: UploadedObject, record: JobRecord) -> PipelineState:
    return PipelineState(
        job_id=record.job_id,
        bucket=upload.bucket,
        upload_key=upload.key,
        upload_size=upload.size,
        received_at=upload.time.astimezone(UTC),
        options=JobOptions.model_validate(record.options.as_dict()),
        request_id=record.request_id,
    )


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
        started = [start_job(upload, stepfunctions, s3) for upload in uploaded_objects(event)]
    return {"started": sum(started), "skipped": len(started) - sum(started)}
