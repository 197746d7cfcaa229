"""Uploads as the pipeline sees them: the objects an upload event announces (S3 notifications,
EventBridge "Object Created", MinIO webhooks in S3 record format) and the pipeline's input for
a job's photo."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field

from silhouette.errors import PermanentError
from silhouette.schema import JobOptions, PipelineState
from silhouette.service.records import JobRecord


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


def pipeline_state(upload: UploadedObject, record: JobRecord) -> PipelineState:
    return PipelineState(
        job_id=record.job_id,
        bucket=upload.bucket,
        upload_key=upload.key,
        upload_size=upload.size,
        received_at=upload.time.astimezone(UTC),
        options=JobOptions.model_validate(record.options.as_dict()),
        request_id=record.request_id,
    )
