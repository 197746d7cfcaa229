"""Analyse local photo files through the public API: request an upload per photo, upload it
with the presigned POST, poll each job to its end and save its result and artifacts."""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from silhouette.api_client import ApiClient, ApiError, download, upload_file
from silhouette.schema import JobOptions, JobStatus, JobSummary
from silhouette.stages.finalize import RESULT_ARTIFACT

POLL_SECONDS = 0.2


@dataclass
class PhotoJob:
    photo: Path
    started: float
    job_id: str | None = None
    refused: str | None = None  # why the API would not take the photo
    status: JobSummary | None = None
    result: dict[str, Any] | None = None  # result.json, once saved
    finished: float | None = None
    saved: dict[str, Path] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def done(self) -> bool:
        return self.refused is not None or (
            self.status is not None and self.status.status.is_terminal
        )


def content_type(photo: Path) -> str:
    guessed, _ = mimetypes.guess_type(photo.name)
    return guessed or "application/octet-stream"


def submit(api: ApiClient, photo: Path, options: JobOptions) -> PhotoJob:
    job = PhotoJob(photo=photo, started=time.monotonic())
    try:
        created = api.create_upload(
            photo.name, content_type(photo), options, size=photo.stat().st_size
        )
        job.job_id = created["job"]["job_id"]
        upload_file(created["upload"], photo, content_type(photo))
    except ApiError as error:
        job.refused = error.message
        job.finished = time.monotonic()
    return job


def follow(
    api: ApiClient,
    pending: Sequence[PhotoJob],
    timeout_seconds: float,
    on_update: Callable[[PhotoJob], None] = lambda job: None,
) -> None:
    """Poll every job until it is terminal or `timeout_seconds` have passed."""
    deadline = time.monotonic() + timeout_seconds
    waiting = [job for job in pending if not job.done]
    while waiting and time.monotonic() < deadline:
        for job in list(waiting):
            assert job.job_id is not None
            job.status = JobSummary.model_validate(api.job(job.job_id))
            if job.done:
                job.finished = time.monotonic()
                waiting.remove(job)
            on_update(job)
        if waiting:
            time.sleep(POLL_SECONDS)


def save(api: ApiClient, job: PhotoJob, out_dir: Path) -> Path:
    """Write `<out>/<stem>/result.json` and download every artifact next to it."""
    assert job.job_id is not None
    folder = out_dir / job.photo.stem
    folder.mkdir(parents=True, exist_ok=True)
    result = api.result(job.job_id)
    document = {name: value for name, value in result.items() if name != "downloads"}
    for name, link in result["downloads"].items():
        data = download(link["url"])
        if name == RESULT_ARTIFACT:
            document = json.loads(data)
            continue
        path = folder / f"{name}{Path(link['filename']).suffix}"
        path.write_bytes(data)
        job.saved[name] = path
    result_path = folder / "result.json"
    result_path.write_text(json.dumps(document, indent=2) + "\n")
    job.saved["result"] = result_path
    job.result = document
    return result_path


def describe(job: PhotoJob) -> str:
    if job.refused is not None:
        return f"refused: {job.refused}"
    status = job.status
    if status is None or not status.status.is_terminal:
        stage = f" ({status.stage})" if status and status.stage else ""
        return f"{status.status.value if status else JobStatus.QUEUED.value}{stage}"
    detail = status.reason or status.error or ""
    return f"{status.status.value}{': ' + detail if detail else ''}"
