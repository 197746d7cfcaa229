"""The storage-key scheme: the only place that knows where a job's objects live.

Keys hold no client-supplied text, so they never need URL-decoding or escaping."""

from __future__ import annotations

import re

UPLOAD_PREFIX = "uploads/"
_UPLOAD_KEY = re.compile(r"^uploads/(?P<job_id>[0-9a-f]{32})/original$")


def upload(job_id: str) -> str:
    return f"{UPLOAD_PREFIX}{job_id}/original"


def job_id_from_upload(key: str) -> str | None:
    """The job an uploaded object belongs to, or None for a key outside the upload scheme."""
    match = _UPLOAD_KEY.match(key)
    return match.group("job_id") if match else None


def artifact(job_id: str, name: str, extension: str) -> str:
    return f"{artifact_prefix(job_id)}{name}.{extension}"


def artifact_prefix(job_id: str) -> str:
    """Where the stages write a job's artifacts."""
    return f"artifacts/{job_id}/"


def result(job_id: str) -> str:
    return f"results/{job_id}/result.json"


def job_prefixes(job_id: str) -> tuple[str, ...]:
    """Every prefix under which a job stores objects (for deletion)."""
    return (f"{UPLOAD_PREFIX}{job_id}/", artifact_prefix(job_id), f"results/{job_id}/")
