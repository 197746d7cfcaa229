"""Analyse local photo files through the pipeline: request an upload per photo, upload it with
the presigned POST, follow each job to its end and save its result and artifacts."""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from silhouette import jobs
from silhouette.schema import JobOptions, JobResult, JobStatus
from silhouette.stages.finalize import RESULT_ARTIFACT

POLL_SECONDS = 0.2


@dataclass
class PhotoJob:
    photo: Path
    job_id: str
    started: float
    result: JobResult | None = None
    finished: float | None = None
    saved: dict[str, Path] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


def content_type(photo: Path) -> str:
    guessed, _ = mimetypes.guess_type(photo.name)
    return guessed or "application/octet-stream"


def submit(photo: Path, options: JobOptions) -> PhotoJob:
    started = time.monotonic()
    job_id, upload = jobs.create_upload(photo.name, content_type(photo), options)
    if upload is not None:
        response = requests.post(
            upload.url,
            data=upload.fields,
            files={"file": (photo.name, photo.read_bytes(), content_type(photo))},
            timeout=60,
        )
        if response.status_code >= 300:
            raise RuntimeError(f"upload of {photo} refused: {response.status_code} {response.text}")
    return PhotoJob(photo=photo, job_id=job_id, started=started)


def follow(
    pending: Sequence[PhotoJob],
    timeout_seconds: float,
    on_update: Callable[[PhotoJob], None] = lambda job: None,
) -> None:
    """Poll every job until it is terminal or `timeout_seconds` have passed."""
    deadline = time.monotonic() + timeout_seconds
    waiting = list(pending)
    while waiting and time.monotonic() < deadline:
        for job in list(waiting):
            job.result = jobs.get_job(job.job_id)
            if job.result.status.is_terminal:
                job.finished = time.monotonic()
                waiting.remove(job)
            on_update(job)
        if waiting:
            time.sleep(POLL_SECONDS)


def save(job: PhotoJob, out_dir: Path) -> Path:
    """Write `<out>/<stem>/result.json` and download every artifact next to it."""
    folder = out_dir / job.photo.stem
    folder.mkdir(parents=True, exist_ok=True)
    assert job.result is not None
    document = job.result.model_dump(mode="json")
    for name, key in job.result.artifacts.items():
        data = jobs.download(key)
        if name == RESULT_ARTIFACT:
            document = json.loads(data)
            continue
        path = folder / f"{name}{Path(key).suffix}"
        path.write_bytes(data)
        job.saved[name] = path
    result_path = folder / "result.json"
    result_path.write_text(json.dumps(document, indent=2) + "\n")
    job.saved["result"] = result_path
    return result_path


def describe(job: PhotoJob) -> str:
    result = job.result
    if result is None or not result.status.is_terminal:
        stage = f" ({result.stage})" if result and result.stage else ""
        status = result.status.value if result else JobStatus.QUEUED.value
        return f"{status}{stage}"
    detail = result.reason or result.error or ""
    return f"{result.status.value}{': ' + detail if detail else ''}"
