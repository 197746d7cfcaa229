"""What a client can do with its jobs: request an upload, read status and result, list and
delete. Every operation is scoped to the caller's tenant: another tenant's job is reported as
missing, exactly like one that never existed. The HTTP API (silhouette.service.api) is a thin layer
over these functions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

import boto3

from silhouette.schema import JobOptions, JobResult, JobStatus, View
from silhouette.service import cursors, keys, sweeper
from silhouette.service.observability import logger
from silhouette.service.records import (
    DYNAMODB_RECORDS,
    UPLOAD_EVENT_GRACE,
    JobRecord,
    JobRecords,
    is_page_key,
    new_job_id,
)
from silhouette.service.storage import delete_prefixes, s3_client
from silhouette.service.tables import utc_now
from silhouette.service.transfers import (
    ContentType,
    DownloadLink,
    PhotoDeclaration,
    UploadForm,
    download_link,
    presigned_upload,
    refuse_oversize,
    safe_stem,
)
from silhouette.settings import get_settings


class JobNotFound(Exception):
    pass


class JobBusy(Exception):
    """The job is being analysed; deleting it now would race the running stage."""


def create_upload(
    tenant: str,
    filename: str | None,
    content_type: ContentType,
    options: JobOptions,
    size: int | None = None,
    s3: Any = None,
    request_id: str | None = None,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> tuple[JobResult, UploadForm]:
    """A QUEUED job and a presigned POST whose policy fixes the key, the content type and the
    largest size. Zero bytes are let through so the pipeline rejects them with a reason.
    `request_id` (the API request's X-Request-ID) follows the job into its stages' logs."""
    settings = get_settings()
    refuse_oversize(size, settings.max_upload_bytes)
    job_id = new_job_id()
    record = job_records.create_queued(job_id, tenant, filename, options, request_id)
    logger.info("job created", extra={"job_id": job_id})
    upload = presigned_upload(keys.upload(job_id), content_type, settings.max_upload_bytes, s3)
    return record.to_result(), upload


def create_capture(
    tenant: str,
    views: dict[View, PhotoDeclaration],
    options: JobOptions,
    s3: Any = None,
    request_id: str | None = None,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> tuple[JobResult, dict[View, UploadForm]]:
    """A QUEUED capture (service/captures.py) and a presigned POST per view; the pipeline
    starts once every view has arrived, and the job expires if one has not when the forms do."""
    settings = get_settings()
    for photo in views.values():
        refuse_oversize(photo.size, settings.max_upload_bytes)
    job_id = new_job_id()
    expiry = settings.capture_upload_expiry_seconds
    record = job_records.create_queued(
        job_id,
        tenant,
        views[View.FRONT].filename,
        options,
        request_id,
        look_at=utc_now() + timedelta(seconds=expiry) + UPLOAD_EVENT_GRACE,
        views={view: photo.filename for view, photo in views.items()},
    )
    logger.info("capture created", extra={"job_id": job_id, "views": list(views)})
    forms = {
        view: presigned_upload(
            keys.upload(job_id, view), photo.content_type, settings.max_upload_bytes, s3, expiry
        )
        for view, photo in views.items()
    }
    return record.to_result(), forms


def owned(tenant: str, job_id: str, job_records: JobRecords = DYNAMODB_RECORDS) -> JobRecord:
    """The tenant's job; `JobNotFound` for a missing id and for another tenant's job alike."""
    record = job_records.find(job_id)
    if record is None or record.tenant != tenant:
        raise JobNotFound(job_id)
    return record


def get_job(tenant: str, job_id: str, job_records: JobRecords = DYNAMODB_RECORDS) -> JobResult:
    return owned(tenant, job_id, job_records).to_result()


def downloads(result: JobResult, s3: Any = None) -> dict[str, DownloadLink]:
    """Presigned GETs for every artifact, saved under a name derived from the upload's."""
    client = s3 or s3_client()
    stem = safe_stem(result.filename) or result.job_id[:8]
    return {
        name: download_link(key, f"{stem}-{name}{PurePosixPath(key).suffix}", client)
        for name, key in result.artifacts.items()
    }


def delete_job(
    tenant: str, job_id: str, s3: Any = None, job_records: JobRecords = DYNAMODB_RECORDS
) -> None:
    """Erase the photo, every artifact and the record.

    Objects go first: if the record cannot be deleted (a stage started meanwhile), nothing of
    the photo is left and the client is told to try again once the job has finished."""
    record = owned(tenant, job_id, job_records)
    # PROCESSING whose execution has ended (stopped, timed out) is no longer busy.
    processing = record.status == JobStatus.PROCESSING
    if processing and sweeper.execution_running(job_id, boto3.client("stepfunctions")):
        raise JobBusy(job_id)
    delete_prefixes(s3 or s3_client(), get_settings().bucket, keys.job_prefixes(job_id))
    if not job_records.delete(job_id, even_processing=processing):
        raise JobBusy(job_id)


def list_jobs(
    tenant: str, limit: int, cursor: str | None, job_records: JobRecords = DYNAMODB_RECORDS
) -> tuple[list[JobResult], str | None]:
    """One page of the tenant's jobs, newest first, and the cursor of the next page."""
    start = cursors.decode(cursor, lambda key: is_page_key(key, tenant)) if cursor else None
    page = job_records.for_tenant(tenant, limit, start)
    results = [record.to_result() for record in page.records]
    return results, cursors.encode(page.last_key) if page.last_key else None
