"""Analyse local photo files through the public API: request an upload per photo, upload it
with the presigned POST, follow the jobs to their end and save each result and its artifacts.

Following scales with the number of photos: each round lists the caller's jobs a page of 100
at a time (newest first) instead of asking for every job, and the client paces the calls."""

from __future__ import annotations

import json
import mimetypes
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from silhouette.client.api_client import SYSTEM_CLOCK, ApiClient, ApiError, ApiUnavailable, Clock
from silhouette.names import RESULT_ARTIFACT
from silhouette.schema import JobOptions, JobStatus, JobSummary

POLL_SECONDS = 1.5  # between rounds; each round is one list call per 100 jobs still running
PAGE_SIZE = 100  # the most GET /jobs returns at once
# The list is read from an index that may lag a new job by a moment: a job missing from it
# this many rounds in a row is asked for by id, a few per round so that the calls stay few.
MISSED_ROUNDS_BEFORE_LOOKUP = 2
LOOKUPS_PER_ROUND = 5
# The API's answers about the photo itself (its type, its size): like REJECTED, a verdict.
PHOTO_REFUSALS = frozenset({400, 413})


class JobSource(Protocol):
    """What following needs of the API (an `ApiClient`, or a fake in tests)."""

    def jobs(self, limit: int = PAGE_SIZE, cursor: str | None = None) -> dict[str, Any]: ...

    def job(self, job_id: str) -> dict[str, Any]: ...


@dataclass
class PhotoJob:
    photo: Path
    request_id: str  # X-Request-ID of its POST /uploads: finds the job's logs
    started: float
    job_id: str | None = None
    refused: str | None = None  # the API would not take the photo (its type or size)
    not_submitted: str | None = None  # the photo could not be submitted (API unreachable...)
    status: JobSummary | None = None
    result: dict[str, Any] | None = None  # result.json, once saved
    not_saved: str | None = None  # why the result or an artifact could not be downloaded
    finished: float | None = None
    saved: dict[str, Path] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def terminal(self) -> bool:
        return self.status is not None and self.status.status.is_terminal

    @property
    def done(self) -> bool:
        return self.refused is not None or self.not_submitted is not None or self.terminal

    @property
    def state(self) -> str:
        """One word for progress counts: a job status, `refused` or `not submitted`."""
        if self.not_submitted is not None:
            return "not submitted"
        if self.refused is not None:
            return "refused"
        return (self.status.status if self.status else JobStatus.QUEUED).value


def content_type(photo: Path) -> str:
    guessed, _ = mimetypes.guess_type(photo.name)
    return guessed or "application/octet-stream"


# Submitting ----------------------------------------------------------------------------------


def submit(api: ApiClient, job: PhotoJob, options: JobOptions) -> None:
    """Create the photo's job (tagged with the job's request id) and upload the photo."""
    created = api.create_upload(
        job.photo.name,
        content_type(job.photo),
        options,
        size=job.photo.stat().st_size,
        request_id=job.request_id,
    )
    job.status = JobSummary.model_validate(created["job"])
    job.job_id = job.status.job_id
    api.upload(created["upload"], job.photo, content_type(job.photo))


def submit_all(api: ApiClient, photos: Iterable[Path], options: JobOptions) -> Iterator[PhotoJob]:
    """Submit the photos one by one, yielding each job as it is submitted or refused. Once the
    API has stayed unavailable through the client's retries, the remaining photos are not
    tried: each would only wait as long again."""
    unavailable = False
    for photo in photos:
        job = PhotoJob(photo=photo, request_id=uuid.uuid4().hex, started=time.monotonic())
        if unavailable:
            _give_up(job, not_submitted="not tried: the API was unavailable")
            yield job
            continue
        try:
            submit(api, job, options)
        except ApiUnavailable as error:
            unavailable = True
            _give_up(job, not_submitted=error.message)
        except ApiError as error:
            if error.status in PHOTO_REFUSALS:
                _give_up(job, refused=error.message)
            else:
                _give_up(job, not_submitted=error.message)
        yield job


def _give_up(job: PhotoJob, refused: str | None = None, not_submitted: str | None = None) -> None:
    job.refused, job.not_submitted = refused, not_submitted
    job.finished = time.monotonic()


# Following -----------------------------------------------------------------------------------


def follow(
    api: JobSource,
    jobs: Sequence[PhotoJob],
    timeout_seconds: float,
    clock: Clock = SYSTEM_CLOCK,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Update the jobs' status until every one is terminal or `timeout_seconds` have passed."""
    deadline = clock.now() + timeout_seconds
    running = {job.job_id: job for job in jobs if job.job_id is not None and not job.done}
    missed = dict.fromkeys(running, 0)  # rounds in a row each job was missing from the list
    while running and clock.now() < deadline:
        listed = _listed(api, running)
        for job_id, job in running.items():
            if job_id in listed:
                missed[job_id] = 0
                _update(job, listed[job_id])
            else:
                missed[job_id] += 1
        for job_id in _overdue(missed, running):
            missed[job_id] = 0
            _update(running[job_id], JobSummary.model_validate(api.job(job_id)))
        running = {job_id: job for job_id, job in running.items() if not job.done}
        if running:
            clock.sleep(poll_seconds)


def _listed(api: JobSource, running: Mapping[str, PhotoJob]) -> dict[str, JobSummary]:
    """The summaries of the running jobs that GET /jobs shows. Pages newest first until every
    running job was seen, the list ends, or a page reaches jobs older than the oldest of them."""
    oldest = min(job.status.created_at for job in running.values() if job.status)
    found: dict[str, JobSummary] = {}
    cursor: str | None = None
    while True:
        page = api.jobs(limit=PAGE_SIZE, cursor=cursor)
        summaries = [JobSummary.model_validate(item) for item in page["jobs"]]
        found.update((s.job_id, s) for s in summaries if s.job_id in running)
        cursor = page.get("next_cursor")
        if (
            len(found) == len(running)
            or cursor is None
            or not summaries
            or summaries[-1].created_at < oldest
        ):
            return found


def _overdue(missed: Mapping[str, int], running: Mapping[str, PhotoJob]) -> list[str]:
    """The running jobs to ask for by id this round: those missing from the list longest."""
    candidates = [job_id for job_id in running if missed[job_id] >= MISSED_ROUNDS_BEFORE_LOOKUP]
    return sorted(candidates, key=lambda job_id: -missed[job_id])[:LOOKUPS_PER_ROUND]


def _update(job: PhotoJob, summary: JobSummary) -> None:
    job.status = summary
    if job.terminal and job.finished is None:
        job.finished = time.monotonic()


# Results -------------------------------------------------------------------------------------


def save(api: ApiClient, job: PhotoJob, out_dir: Path) -> None:
    """Write `<out>/<stem>/result.json` and download every artifact next to it. A failed
    download is recorded on the job (`not_saved`) rather than raised."""
    assert job.job_id is not None
    folder = out_dir / job.photo.stem
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = api.result(job.job_id)
        document = {name: value for name, value in result.items() if name != "downloads"}
        for name, link in result["downloads"].items():
            data = api.download(link["url"])
            if name == RESULT_ARTIFACT:
                document = json.loads(data)
                continue
            path = folder / f"{name}{Path(link['filename']).suffix}"
            path.write_bytes(data)
            job.saved[name] = path
    except ApiError as error:
        job.not_saved = error.message
        return
    result_path = folder / "result.json"
    result_path.write_text(json.dumps(document, indent=2) + "\n")
    job.saved["result"] = result_path
    job.result = document


# Reporting -----------------------------------------------------------------------------------


def describe(job: PhotoJob) -> str:
    if job.not_submitted is not None:
        return f"not submitted: {job.not_submitted}"
    if job.refused is not None:
        return f"refused: {job.refused}"
    status = job.status
    if status is None or not status.status.is_terminal:
        stage = f" ({status.stage})" if status and status.stage else ""
        return f"{status.status.value if status else JobStatus.QUEUED.value}{stage}"
    detail = status.reason or status.error or ""
    described = f"{status.status.value}{': ' + detail if detail else ''}"
    return f"{described} (not saved: {job.not_saved})" if job.not_saved else described


def failure(job: PhotoJob) -> str | None:
    """Why this photo fails the run; None when the API gave an answer about it: COMPLETED,
    REJECTED, or refused as no photo it takes."""
    if job.not_submitted is not None:
        return f"not submitted: {job.not_submitted}"
    if job.refused is not None:
        return None
    if job.status is None or not job.status.status.is_terminal:
        return f"did not finish in time ({describe(job)})"
    if job.status.status == JobStatus.FAILED:
        return f"FAILED: {job.status.error or 'no error recorded'}"
    if job.status.status == JobStatus.EXPIRED:  # the upload this run made never arrived
        return f"EXPIRED: {job.status.reason}"
    if job.not_saved is not None:
        return f"result not saved: {job.not_saved}"
    return None
