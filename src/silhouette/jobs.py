"""Client-facing job operations: request an upload, read a job's status and result.

This is the logic the HTTP API exposes (POST /uploads, GET /jobs/{id}); the CLI calls it
directly against the embedded stack or any endpoint whose names are in its environment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist

from silhouette import keys, records
from silhouette.schema import JobOptions, JobResult, JobStatus
from silhouette.settings import get_settings
from silhouette.storage import s3_client

ACCEPTED_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True)
class Upload:
    job_id: str
    url: str
    fields: dict[str, str]


class JobNotFound(Exception):
    pass


def new_job_id() -> str:
    """128 random bits: unguessable, and safe in keys and execution names."""
    return uuid.uuid4().hex


def create_upload(
    filename: str | None, content_type: str, options: JobOptions, s3: Any = None
) -> tuple[str, Upload | None]:
    """A QUEUED job and a presigned POST for its photo.

    A content type outside the allowlist ends the job REJECTED at once (no upload is offered),
    so the client still gets a job with a reason."""
    settings = get_settings()
    job_id = new_job_id()
    records.create_queued(job_id, filename, options)
    if content_type not in ACCEPTED_CONTENT_TYPES:
        records.finish(
            job_id,
            JobStatus.REJECTED,
            {
                "reason": f"unsupported content type {content_type!r} "
                f"(accepted: {', '.join(ACCEPTED_CONTENT_TYPES)})"
            },
        )
        return job_id, None
    post = (s3 or s3_client()).generate_presigned_post(
        Bucket=settings.bucket,
        Key=keys.upload(job_id),
        Fields={"Content-Type": content_type},
        Conditions=[
            {"Content-Type": content_type},
            # Zero bytes are let through so the pipeline rejects them with a reason.
            ["content-length-range", 0, settings.max_upload_bytes],
        ],
        ExpiresIn=settings.upload_url_expiry_seconds,
    )
    return job_id, Upload(job_id=job_id, url=post["url"], fields=post["fields"])


def get_job(job_id: str) -> JobResult:
    try:
        return records.get(job_id).to_result()
    except DoesNotExist:
        raise JobNotFound(job_id) from None


def download(key: str, s3: Any = None) -> bytes:
    response = (s3 or s3_client()).get_object(Bucket=get_settings().bucket, Key=key)
    return response["Body"].read()
