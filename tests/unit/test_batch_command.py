"""The logic of `silhouette batch` without a stack: which files a folder gives, how the batch
is made and its files sent, how it is followed (back-off, rate, ETA), how its results are
extracted, and when the command fails."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

import pytest

from silhouette.client import batch_command
from silhouette.client.api_client import ApiError
from silhouette.client.batch_command import (
    BatchRun,
    BatchState,
    NewBatch,
    Outputs,
    SourceKind,
    Throughput,
    UnsafeArchive,
)
from silhouette.schema import JobOptions

# Folders ---------------------------------------------------------------------------------------


def test_a_folder_gives_its_own_photos_the_service_takes_by_name_but_not_hidden_ones(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.webp", ".hidden.jpg", "notes.txt", "raw.bin", "anim.gif"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.jpg").write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()  # a folder, whatever its name

    assert [p.name for p in batch_command.photos_in(tmp_path)] == ["a.jpg", "b.PNG", "c.webp"]


def test_a_batch_is_a_zip_a_csv_or_a_folder_with_photos(tmp_path):
    archive, rows = tmp_path / "shoot.ZIP", tmp_path / "urls.csv"
    archive.write_bytes(b"PK")
    rows.write_text("id,image_url\n")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")

    assert batch_command.new_batch(archive, JobOptions()).kind == SourceKind.ZIP
    assert batch_command.new_batch(rows, JobOptions()).files == (rows,)
    assert batch_command.new_batch(folder, JobOptions(), 3) == NewBatch(
        SourceKind.PHOTOS, (folder / "a.jpg",), JobOptions(), 3
    )
    (folder / "a.jpg").unlink()
    with pytest.raises(ValueError, match="no image files"):
        batch_command.new_batch(folder, JobOptions())
    with pytest.raises(ValueError, match="not a .zip, a .csv or a folder"):
        batch_command.new_batch(tmp_path / "photo.jpg", JobOptions())


# Submitting -------------------------------------------------------------------------------------


def progress(status: str, done: int = 0, total: int | None = None, **counts: int) -> dict:
    return {
        "batch_id": "b" * 32,
        "status": status,
        "reason": None,
        "total": total,
        "done": done,
        "counts": counts,
    }


class FakeApi:
    """Answers create_batch with a form per file and records what is sent; uploads of the
    files named in `refuse` fail."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.uploaded: dict[str, tuple[str, str]] = {}  # file name -> (form url, content type)
        self.refuse = refuse
        self.polled: list[str] = []

    def create_batch(self, source: str, options: JobOptions, **request: Any) -> dict[str, Any]:
        self.requests.append((source, request))
        created: dict[str, Any] = {"batch": progress("WAITING"), "upload": None}
        if source == "photos":
            created["photos"] = [
                {"job_id": f"j{i}", "filename": p["filename"], "upload": form(p["filename"])}
                for i, p in enumerate(request["photos"])
            ]
        else:
            created["upload"] = form("source")
        return created

    def upload(self, upload: dict[str, Any], file: Path, content_type: str) -> None:
        if file.name in self.refuse:
            raise ApiError(403, "upload_refused", "policy expired")
        self.uploaded[file.name] = (upload["url"], content_type)

    def batch(self, batch_id: str) -> dict[str, Any]:
        self.polled.append(batch_id)
        return progress("COMPLETED")


def form(name: str) -> dict[str, Any]:
    return {"url": f"https://bucket/{name}", "fields": {}, "expires_at": "2030-01-01T00:00:00Z"}


def photo_folder(tmp_path: Path, *names: str) -> NewBatch:
    for size, name in enumerate(names, start=1):
        (tmp_path / name).write_bytes(b"x" * size)
    return batch_command.new_batch(tmp_path, JobOptions(quality="fast"), concurrency=2)


def test_a_folder_declares_each_photo_in_order_and_sends_each_through_its_own_form(tmp_path):
    api, run = FakeApi(), BatchRun()

    batch_command.submit(api, run, photo_folder(tmp_path, "a.jpg", "b.png", "c.webp"))

    [(source, request)] = api.requests
    assert source == "photos" and request["concurrency"] == 2
    assert request["photos"] == [
        {"filename": "a.jpg", "content_type": "image/jpeg", "size": 1},
        {"filename": "b.png", "content_type": "image/png", "size": 2},
        {"filename": "c.webp", "content_type": "image/webp", "size": 3},
    ]
    assert api.uploaded == {
        "a.jpg": ("https://bucket/a.jpg", "image/jpeg"),
        "b.png": ("https://bucket/b.png", "image/png"),
        "c.webp": ("https://bucket/c.webp", "image/webp"),
    }
    assert (run.batch_id, run.uploads_done, run.uploads_total) == ("b" * 32, 3, 3)
    assert run.not_uploaded == []


def test_a_photo_that_cannot_be_sent_is_named_and_the_batch_not_followed(tmp_path):
    api, run = FakeApi(refuse=("b.png",)), BatchRun()

    batch_command.run_batch(
        api, run, photo_folder(tmp_path, "a.jpg", "b.png"), out=tmp_path / "out"
    )

    assert run.uploads_done == 2 and set(api.uploaded) == {"a.jpg"}
    assert run.not_uploaded == ["b.png: policy expired"]
    assert run.starts_without_them_at == "2030-01-01T00:00:00Z"
    assert api.polled == []
    assert batch_command.failures(run) == ["not uploaded: b.png: policy expired"]


def test_a_zip_is_declared_with_its_size_and_sent_as_a_zip(tmp_path):
    archive = tmp_path / "shoot.zip"
    archive.write_bytes(b"PK" * 50)
    api, run = FakeApi(), BatchRun()

    batch_command.submit(api, run, batch_command.new_batch(archive, JobOptions()))

    assert api.requests == [("zip", {"size": 100, "concurrency": None})]
    assert api.uploaded == {"shoot.zip": ("https://bucket/source", "application/zip")}


# Following --------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.time = 100.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


class Polls:
    def __init__(self, answers: list[dict]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def batch(self, batch_id: str) -> dict:
        self.asked.append(batch_id)
        return self.answers[len(self.asked) - 1]


def test_watching_polls_ever_less_often_up_to_a_cap_until_the_batch_ends():
    answers = [progress("WAITING")] + [progress("RUNNING", n, 9) for n in range(8)]
    answers.append(progress("COMPLETED", 9, 9, COMPLETED=8, REJECTED=1))
    polls, clock, run = Polls(answers), FakeClock(), BatchRun(batch_id="b" * 32)

    final = batch_command.watch(polls, run, clock)

    assert final.status == "COMPLETED" and final.counts == {"COMPLETED": 8, "REJECTED": 1}
    assert run.state == final
    assert len(polls.asked) == len(answers)
    assert clock.sleeps == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_the_rate_counts_only_running_polls():
    run = BatchRun()
    run.update(BatchState.from_api(progress("WAITING")), now=0)
    run.update(BatchState.from_api(progress("RUNNING", 0, 10)), now=300)
    run.update(BatchState.from_api(progress("RUNNING", 4, 10)), now=330)

    assert run.throughput.per_minute() == pytest.approx(8.0)  # not 4 items in 330 s


def test_the_rate_is_items_per_minute_and_the_eta_what_remains_at_that_rate():
    throughput = Throughput()
    assert throughput.per_minute() is None  # nothing to compare yet
    throughput.add(0, 0)
    throughput.add(30, 0)
    assert throughput.per_minute() == 0 and throughput.eta_seconds(10) is None
    throughput.add(60, 10)

    assert throughput.per_minute() == pytest.approx(10.0)
    assert throughput.eta_seconds(25) == pytest.approx(150.0)


def test_the_rate_follows_the_recent_pace():
    throughput = Throughput()
    for minute in range(10):  # slow while the models load: 1 item a minute...
        throughput.add(minute * 60, minute)
    for second in range(10, 130, 10):  # ...then 1 item every 10 s
        throughput.add(540 + second, 9 + second // 10)

    assert throughput.per_minute() == pytest.approx(6.0, rel=0.1)


# Saving -----------------------------------------------------------------------------------------


def archive_of(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_extracting_writes_every_file_under_its_folder(tmp_path):
    out = tmp_path / "out"
    archive = archive_of(
        tmp_path / "results.zip",
        {"0001-a/result.json": b"{}", "0001-a/cutout.png": b"\x89PNG", "report.csv": b"item\n"},
    )

    written = batch_command.extract_safely(archive, out)

    assert len(written) == 3
    assert (out / "0001-a" / "cutout.png").read_bytes() == b"\x89PNG"
    assert (out / "report.csv").read_text() == "item\n"


@pytest.mark.parametrize(
    "name",
    ["../escape.txt", "a/../../escape.txt", "/tmp/escape.txt", "C:/escape.txt", "a\\..\\..\\e"],
)
def test_extracting_refuses_an_archive_with_a_path_out_of_the_folder_and_writes_nothing(
    tmp_path, name
):
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    archive = archive_of(tmp_path / "results.zip", {"0001-a/result.json": b"{}", name: b"x"})

    with pytest.raises(UnsafeArchive):
        batch_command.extract_safely(archive, out)

    assert list(out.iterdir()) == []
    assert not list(tmp_path.rglob("escape.txt"))


def test_extracting_refuses_to_write_through_a_symlink_out_of_the_folder(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "0001-a").symlink_to(elsewhere)
    archive = archive_of(tmp_path / "results.zip", {"0001-a/result.json": b"{}"})

    with pytest.raises(UnsafeArchive):
        batch_command.extract_safely(archive, out)

    assert list(elsewhere.iterdir()) == []


def test_the_failed_items_are_read_from_the_report(tmp_path):
    report = tmp_path / "report.csv"
    with report.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["item", "job_id", "status", "reason"])
        writer.writerows(
            [
                ["a.jpg", "j1", "COMPLETED", ""],
                ["b.jpg", "j2", "FAILED", "segment: out of memory"],
                ["c.jpg", "j3", "REJECTED", "no person detected"],
                ["d.jpg", "j4", "EXPIRED", "never uploaded"],
            ]
        )

    assert [row["item"] for row in batch_command.failed_items(report)] == ["b.jpg", "d.jpg"]


# Exit code --------------------------------------------------------------------------------------


def ended(
    status: str, reason: str | None = None, outputs: Outputs | None = None, **counts: int
) -> BatchRun:
    state = BatchState("b" * 32, status, reason, total=3, done=sum(counts.values()), counts=counts)
    return BatchRun(batch_id=state.batch_id, state=state, outputs=outputs or Outputs())


def test_a_batch_whose_items_all_have_an_answer_succeeds():
    assert batch_command.failures(ended("COMPLETED", COMPLETED=2, REJECTED=1)) == []


@pytest.mark.parametrize(
    ("run", "reason"),
    [
        (ended("COMPLETED", COMPLETED=2, FAILED=1), "1 item(s) FAILED"),
        (ended("COMPLETED", COMPLETED=2, EXPIRED=1), "1 item(s) EXPIRED"),
        (ended("COMPLETED", COMPLETED=2, QUEUED=1), "1 item(s) QUEUED"),
        (ended("REJECTED", "not a valid ZIP archive"), "the batch is REJECTED: not a valid ZIP"),
        (ended("FAILED", "States.Timeout", COMPLETED=3), "the batch is FAILED: States.Timeout"),
        (
            ended("COMPLETED", outputs=Outputs(not_saved="403 expired"), COMPLETED=3),
            "outputs not saved: 403 expired",
        ),
    ],
)
def test_a_batch_fails_the_command_when_an_item_or_the_batch_has_no_answer(run, reason):
    [failure] = batch_command.failures(run)

    assert failure.startswith(reason)
