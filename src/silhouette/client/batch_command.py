"""The logic of `silhouette batch`: make a batch of a ZIP, a CSV of photo URLs or a folder of
photos through the public API, follow it to its end, and save its report and results.

A ZIP or CSV is uploaded as the batch's source; a folder's photos are uploaded one by one (a
few at a time) and the batch starts once all have arrived. Following polls the batch with a
growing interval, as each poll costs the API (and an embedded stack's CPU) a little."""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PureWindowsPath
from typing import Any, Protocol

from silhouette.client.api_client import SYSTEM_CLOCK, ApiClient, ApiError, Clock
from silhouette.client.photo_jobs import content_type
from silhouette.names import PHOTO_CONTENT_TYPES
from silhouette.schema import JobOptions, JobStatus

UPLOAD_THREADS = 4
FIRST_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 5.0
POLL_GROWTH = 1.5
RATE_WINDOW_SECONDS = 120.0  # the rate is the recent one: items get faster once models are warm
BATCH_ENDED = frozenset({"COMPLETED", "REJECTED", "FAILED"})
# Item statuses that fail the command: the API gave no answer about the photo.
ITEM_FAILURES = (JobStatus.FAILED, JobStatus.EXPIRED)
ITEM_UNFINISHED = (JobStatus.QUEUED, JobStatus.PROCESSING)


class SourceKind(StrEnum):
    """What the batch is made of; the value is the API's `source`."""

    ZIP = "zip"
    CSV = "csv"
    PHOTOS = "photos"


# The content type each source's upload form requires (not guessed: platforms disagree on .zip).
SOURCE_CONTENT_TYPES = {SourceKind.ZIP: "application/zip", SourceKind.CSV: "text/csv"}


class UnsafeArchive(Exception):
    pass


def photos_in(folder: Path) -> list[Path]:
    """The folder's own photos of the kinds the service takes (not its subfolders'), by name;
    hidden files are skipped."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith(".")
        and content_type(path) in PHOTO_CONTENT_TYPES
    )


@dataclass(frozen=True)
class BatchState:
    """What the client reads of GET /batches/{id}."""

    batch_id: str
    status: str
    reason: str | None
    total: int | None  # None until the source has been read
    done: int
    counts: dict[str, int]

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> BatchState:
        return cls(
            batch_id=body["batch_id"],
            status=body["status"],
            reason=body.get("reason"),
            total=body.get("total"),
            done=body["done"],
            counts=dict(body.get("counts") or {}),
        )

    @property
    def ended(self) -> bool:
        return self.status in BATCH_ENDED


class Throughput:
    """Items per minute over the last RATE_WINDOW_SECONDS of polls, and the ETA it implies."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()  # (seconds, items done)

    def add(self, now: float, done: int) -> None:
        self._samples.append((now, done))
        # Keep one sample from before the window, so that the rate covers all of it.
        while len(self._samples) > 2 and self._samples[1][0] <= now - RATE_WINDOW_SECONDS:
            self._samples.popleft()

    def per_minute(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (first_time, first_done), (last_time, last_done) = self._samples[0], self._samples[-1]
        if last_time <= first_time:
            return None
        return (last_done - first_done) / (last_time - first_time) * 60

    def eta_seconds(self, remaining: int) -> float | None:
        """None while nothing has finished within the window."""
        rate = self.per_minute()
        return remaining / rate * 60 if rate else None


@dataclass
class Outputs:
    """Where the batch's files went, or why they are not there."""

    report: Path | None = None
    results: Path | None = None
    extracted: int = 0  # files of the results ZIP, extracted next to it
    not_saved: str | None = None


@dataclass
class BatchRun:
    """One run of the command, as it goes: what the progress display and the summary show."""

    batch_id: str | None = None
    state: BatchState | None = None
    uploads_total: int = 0
    uploads_done: int = 0
    not_uploaded: list[str] = field(default_factory=list)  # "<file>: <why>"
    # When a photos batch that waits for photos that could not be sent starts without them.
    starts_without_them_at: str | None = None
    throughput: Throughput = field(default_factory=Throughput)
    outputs: Outputs | None = None

    def update(self, state: BatchState, now: float) -> None:
        self.batch_id, self.state = state.batch_id, state
        if state.status == "RUNNING":  # waiting for its source says nothing of the rate
            self.throughput.add(now, state.done)


@dataclass(frozen=True)
class NewBatch:
    """A batch to make: its kind and the files to upload (the ZIP or CSV, or the photos)."""

    kind: SourceKind
    files: tuple[Path, ...]
    options: JobOptions
    concurrency: int | None = None


def new_batch(path: Path, options: JobOptions, concurrency: int | None = None) -> NewBatch:
    """The batch of a .zip, a .csv or a folder's photos; ValueError for anything else."""
    if path.is_dir():
        photos = photos_in(path)
        if not photos:
            raise ValueError(f"no image files in {path}")
        return NewBatch(SourceKind.PHOTOS, tuple(photos), options, concurrency)
    for kind in (SourceKind.ZIP, SourceKind.CSV):
        if path.suffix.lower() == f".{kind.value}":
            return NewBatch(kind, (path,), options, concurrency)
    raise ValueError(f"{path} is not a .zip, a .csv or a folder")


class BatchPolls(Protocol):
    """What following needs of the API (an `ApiClient`, or a fake in tests)."""

    def batch(self, batch_id: str) -> dict[str, Any]: ...


def run_batch(
    api: ApiClient,
    run: BatchRun,
    new: NewBatch | None,
    out: Path | None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Make the batch (unless `run` names one made before), follow it to its end and save
    its outputs into `out` (default: ./batch-<first 8 of its id>). Stops after uploading when
    a file could not be sent: the batch would wait for it."""
    if new is not None:
        submit(api, run, new)
        if run.not_uploaded:
            return
    final = watch(api, run, clock)
    run.outputs = save_outputs(api, final, out or default_out(final.batch_id))


def default_out(batch_id: str) -> Path:
    return Path(f"batch-{batch_id[:8]}")


# Submitting -----------------------------------------------------------------------------------


def submit(api: ApiClient, run: BatchRun, new: NewBatch) -> None:
    """Create the batch and upload its files: the source, or the photos UPLOAD_THREADS at a
    time (on Ctrl-C the photos not yet started are not sent)."""
    run.uploads_total = len(new.files)
    if new.kind == SourceKind.PHOTOS:
        declared = [
            {
                "filename": photo.name,
                "content_type": content_type(photo),
                "size": photo.stat().st_size,
            }
            for photo in new.files
        ]
        created = api.create_batch(
            new.kind.value, new.options, concurrency=new.concurrency, photos=declared
        )
        forms = [photo["upload"] for photo in created["photos"]]
        if len(forms) != len(new.files):
            raise ApiError(
                0, "bad_answer", f"{len(forms)} upload forms for {len(new.files)} photos"
            )
        file_types = [content_type(photo) for photo in new.files]
    else:
        (source,) = new.files
        created = api.create_batch(
            new.kind.value, new.options, size=source.stat().st_size, concurrency=new.concurrency
        )
        forms, file_types = [created["upload"]], [SOURCE_CONTENT_TYPES[new.kind]]
    run.state = BatchState.from_api(created["batch"])
    run.batch_id = run.state.batch_id
    executor = ThreadPoolExecutor(max_workers=UPLOAD_THREADS)
    try:
        uploads = [
            executor.submit(_upload, api, form, file, file_type)
            for file, form, file_type in zip(new.files, forms, file_types, strict=True)
        ]
        for upload in as_completed(uploads):
            run.uploads_done += 1
            if (problem := upload.result()) is not None:
                run.not_uploaded.append(problem)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    if run.not_uploaded and new.kind == SourceKind.PHOTOS:
        # The service starts a photos batch with the photos that arrived once its forms expire.
        run.starts_without_them_at = forms[0]["expires_at"]


def _upload(api: ApiClient, form: dict[str, Any], file: Path, file_type: str) -> str | None:
    """Send one file; why it could not be sent, if it could not."""
    try:
        api.upload(form, file, file_type)
    except ApiError as error:
        return f"{file.name}: {error.message}"
    return None


# Following ------------------------------------------------------------------------------------


def watch(api: BatchPolls, run: BatchRun, clock: Clock = SYSTEM_CLOCK) -> BatchState:
    """Poll the batch until it has ended: at once, then ever less often (up to every
    MAX_POLL_SECONDS)."""
    assert run.batch_id is not None
    delay = FIRST_POLL_SECONDS
    while True:
        state = BatchState.from_api(api.batch(run.batch_id))
        run.update(state, clock.now())
        if state.ended:
            return state
        clock.sleep(delay)
        delay = min(delay * POLL_GROWTH, MAX_POLL_SECONDS)


# Saving ---------------------------------------------------------------------------------------


def save_outputs(api: ApiClient, final: BatchState, out: Path) -> Outputs:
    """Download the report CSV and the results ZIP into `out` and extract the ZIP there. A
    batch without items has none (the server writes them only for items)."""
    if not final.total:
        return Outputs()
    try:
        links = api.batch_report(final.batch_id)
        out.mkdir(parents=True, exist_ok=True)
        # Only the name of what the server calls them, so that nothing lands outside `out`.
        report = out / Path(links["report"]["filename"]).name
        api.download_to(links["report"]["url"], report)
        results = out / Path(links["results"]["filename"]).name
        api.download_to(links["results"]["url"], results)
    except ApiError as error:
        return Outputs(not_saved=error.message)
    try:
        extracted = extract_safely(results, out)
    except (UnsafeArchive, zipfile.BadZipFile) as error:
        return Outputs(report=report, results=results, not_saved=f"{results.name}: {error}")
    return Outputs(report=report, results=results, extracted=len(extracted))


def extract_safely(archive: Path, into: Path) -> list[Path]:
    """Extract every file of the ZIP under `into`; UnsafeArchive, before anything is written,
    if an entry's path is absolute or climbs out of `into`. The files written."""
    root = into.resolve()
    with zipfile.ZipFile(archive) as zipped:
        files = [entry for entry in zipped.infolist() if not entry.is_dir()]
        targets = [root.joinpath(*_safe_parts(entry.filename)) for entry in files]
        for entry, target in zip(files, targets, strict=True):
            if not target.resolve().is_relative_to(root):  # through a symlink already there
                raise UnsafeArchive(f"{entry.filename!r} would land outside {into}")
        for entry, target in zip(files, targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(entry) as source, target.open("wb") as destination:
                shutil.copyfileobj(source, destination)
    return targets


def _safe_parts(name: str) -> tuple[str, ...]:
    # Read as Windows would too: a backslash separates and "C:" is a drive.
    path = PureWindowsPath(name)
    if not path.parts or path.drive or path.root or ".." in path.parts:
        raise UnsafeArchive(f"unsafe path {name!r} in the archive")
    return path.parts


def failed_items(report: Path) -> list[dict[str, str]]:
    """The report's rows of items that failed the command (FAILED, EXPIRED)."""
    with report.open(newline="", encoding="utf-8") as file:
        return [row for row in csv.DictReader(file) if row.get("status") in ITEM_FAILURES]


# Exit code ------------------------------------------------------------------------------------


def failures(run: BatchRun) -> list[str]:
    """Why the run fails, as `analyze` judges its photos: every item must have an answer
    (COMPLETED, or REJECTED with a reason) and its outputs must be saved. Empty when it
    succeeded."""
    if run.not_uploaded:
        return [f"not uploaded: {why}" for why in run.not_uploaded]
    state = run.state
    assert state is not None
    reasons = []
    if state.status != "COMPLETED":
        reasons.append(f"the batch is {state.status}: {state.reason or 'no reason recorded'}")
    for status in (*ITEM_FAILURES, *ITEM_UNFINISHED):
        if count := state.counts.get(status, 0):
            reasons.append(f"{count} item(s) {status.value}")
    if run.outputs is not None and run.outputs.not_saved is not None:
        reasons.append(f"outputs not saved: {run.outputs.not_saved}")
    return reasons
