"""Submitting, following and reporting photos against a fake API: following lists the jobs a
page of 100 at a time instead of asking for each, and `silhouette analyze` exits non-zero for
photos that failed and 130 on Ctrl-C."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from silhouette.client import cli, photo_jobs
from silhouette.client.api_client import ApiError, ApiUnavailable
from silhouette.schema import JobOptions, JobSummary

RUN_STARTED = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, on_sleep: Callable[[], None] = lambda: None) -> None:
        self.time = 0.0
        self._on_sleep = on_sleep

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.time += seconds
        self._on_sleep()


def summary(job_id: str, created_at: datetime, status: str = "QUEUED", **extra: Any) -> dict:
    return {
        "job_id": job_id,
        "tenant": "t",
        "status": status,
        "created_at": created_at.isoformat(),
        "updated_at": created_at.isoformat(),
        **extra,
    }


class FakeApi:
    """The caller's jobs as the API serves them: GET /jobs pages newest first. `hidden` jobs
    are missing from the list (its index lags) but found by id. Counts every call."""

    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.hidden: set[str] = set()
        self.list_calls = 0
        self.looked_up: list[str] = []

    def add(self, job_id: str, created_at: datetime, status: str = "QUEUED", **extra: Any) -> None:
        self.records[job_id] = summary(job_id, created_at, status, **extra)

    def set_status(self, job_ids: list[str], status: str, **extra: Any) -> None:
        for job_id in job_ids:
            self.records[job_id].update(status=status, **extra)

    def jobs(self, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        self.list_calls += 1
        listed = [r for job_id, r in self.records.items() if job_id not in self.hidden]
        listed.sort(key=lambda record: record["created_at"], reverse=True)
        start = int(cursor or 0)
        more = start + limit < len(listed)
        return {
            "jobs": listed[start : start + limit],
            "next_cursor": str(start + limit) if more else None,
        }

    def job(self, job_id: str) -> dict[str, Any]:
        self.looked_up.append(job_id)
        return self.records[job_id]


def submitted(api: FakeApi, count: int, first: int = 0) -> list[photo_jobs.PhotoJob]:
    """`count` jobs this run submitted, one a second from RUN_STARTED, all QUEUED."""
    jobs = []
    for number in range(first, first + count):
        job_id = f"job-{number:05d}"
        api.add(job_id, RUN_STARTED + timedelta(seconds=number))
        job = photo_jobs.PhotoJob(photo=Path(f"{job_id}.jpg"), request_id=f"r{number}", started=0)
        job.job_id = job_id
        job.status = JobSummary.model_validate(api.records[job_id])
        jobs.append(job)
    return jobs


# Following -----------------------------------------------------------------------------------


def test_a_thousand_jobs_take_one_list_call_per_hundred_running_jobs_per_round():
    api = FakeApi()
    jobs = submitted(api, 1000)
    ids = [job.job_id for job in jobs]
    calls_per_round: list[int] = []
    finishing = [ids[:500], ids[500:]]  # the oldest finish first, as in a queue

    def next_round() -> None:
        calls_per_round.append(api.list_calls - sum(calls_per_round))
        api.set_status(finishing.pop(0), "COMPLETED")

    photo_jobs.follow(api, jobs, timeout_seconds=600, clock=FakeClock(next_round))

    calls_per_round.append(api.list_calls - sum(calls_per_round))
    # Rounds 1 and 2 see 1,000 running jobs; round 3 only the 500 still running then.
    assert calls_per_round == [math.ceil(1000 / 100), 10, math.ceil(500 / 100)]
    assert api.looked_up == []  # never one call per job
    assert all(job.status.status == "COMPLETED" and job.finished for job in jobs)


def test_paging_stops_at_jobs_older_than_the_run():
    api = FakeApi()
    for number in range(300):  # the tenant's earlier jobs
        api.add(f"old-{number}", RUN_STARTED - timedelta(hours=1, seconds=number), "COMPLETED")
    jobs = submitted(api, 50)
    api.hidden.add(jobs[0].job_id)  # not in the list yet

    photo_jobs.follow(api, jobs, timeout_seconds=0.5, clock=FakeClock(), poll_seconds=1)

    assert api.list_calls == 1  # the first page already reaches the older jobs


def test_a_job_missing_from_the_list_is_asked_for_by_id_now_and_then():
    api = FakeApi()
    jobs = submitted(api, 3)
    missing = jobs[1].job_id
    api.hidden.add(missing)
    rounds = 0

    def next_round() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            api.set_status([job.job_id for job in jobs], "COMPLETED")

    photo_jobs.follow(api, jobs, timeout_seconds=600, clock=FakeClock(next_round))

    # Missing in rounds 1 and 2: looked up in round 2; in round 4 once more, found COMPLETED.
    assert api.looked_up == [missing, missing]
    assert all(job.status.status == "COMPLETED" for job in jobs)


def test_following_stops_at_the_timeout_and_unfinished_jobs_fail_the_run():
    api = FakeApi()
    jobs = submitted(api, 2)
    api.set_status([jobs[0].job_id], "PROCESSING", stage="pose")

    photo_jobs.follow(api, jobs, timeout_seconds=10, clock=FakeClock(), poll_seconds=2)

    assert api.list_calls == 5
    assert photo_jobs.failure(jobs[0]) == "did not finish in time (PROCESSING (pose))"
    assert photo_jobs.failure(jobs[1]) == "did not finish in time (QUEUED)"


# Submitting and reporting --------------------------------------------------------------------


class SubmittingApi:
    """Answers POST /uploads from a script: a dict to return or an exception to raise."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.request_ids: list[str] = []
        self.uploaded: list[Path] = []

    def create_upload(self, filename, content_type, options, size=None, request_id=None):
        self.request_ids.append(request_id)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def upload(self, form: dict, photo: Path, content_type: str) -> None:
        self.uploaded.append(photo)


def photos(tmp_path: Path, count: int) -> list[Path]:
    paths = [tmp_path / f"p{number}.jpg" for number in range(count)]
    for path in paths:
        path.write_bytes(b"\xff\xd8")
    return paths


def created(job_id: str) -> dict[str, Any]:
    return {"job": summary(job_id, RUN_STARTED), "upload": {"url": "u", "fields": {}}}


def test_each_submission_has_its_own_request_id_and_refusals_are_recorded(tmp_path):
    api = SubmittingApi(
        created("j0"), ApiError(400, "invalid_request", "content_type: no"), created("j2")
    )

    jobs = list(photo_jobs.submit_all(api, photos(tmp_path, 3), JobOptions()))

    assert [job.job_id for job in jobs] == ["j0", None, "j2"]
    assert [job.request_id for job in jobs] == api.request_ids
    assert len(set(api.request_ids)) == 3 and all(len(rid) == 32 for rid in api.request_ids)
    assert jobs[1].refused == "content_type: no" and photo_jobs.failure(jobs[1]) is None
    assert api.uploaded == [jobs[0].photo, jobs[2].photo]


def test_once_the_api_is_unavailable_the_other_photos_are_not_tried(tmp_path):
    api = SubmittingApi(created("j0"), ApiUnavailable(0, "unavailable", "POST /uploads: down"))

    jobs = list(photo_jobs.submit_all(api, photos(tmp_path, 4), JobOptions()))

    assert len(api.request_ids) == 2
    assert [photo_jobs.failure(job) for job in jobs[1:]] == [
        "not submitted: POST /uploads: down",
        "not submitted: not tried: the API was unavailable",
        "not submitted: not tried: the API was unavailable",
    ]


def test_only_failed_unfinished_or_unsubmitted_photos_fail_the_run():
    api = FakeApi()
    done, failed, rejected = submitted(api, 3)
    api.set_status([done.job_id], "COMPLETED")
    api.set_status([failed.job_id], "FAILED", error="pose: RuntimeError: model missing")
    api.set_status([rejected.job_id], "REJECTED", reason="no person")
    photo_jobs.follow(api, [done, failed, rejected], timeout_seconds=10, clock=FakeClock())

    assert photo_jobs.failure(done) is None and photo_jobs.failure(rejected) is None
    assert photo_jobs.failure(failed) == "FAILED: pose: RuntimeError: model missing"


# The command ---------------------------------------------------------------------------------


class CommandApi(FakeApi):
    """The whole API `silhouette analyze` uses; each photo's job ends as its name says."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        super().__init__()
        self.interrupt_at = interrupt_at

    def create_upload(self, filename, content_type, options, size=None, request_id=None):
        if len(self.records) == self.interrupt_at:
            raise KeyboardInterrupt
        job_id = f"job-{len(self.records)}"
        self.add(job_id, RUN_STARTED + timedelta(seconds=len(self.records)))
        final = filename.removesuffix(".jpg").rstrip("0123456789").upper()
        queued = dict(self.records[job_id])
        self.set_status([job_id], final, error="pose: boom" if final == "FAILED" else None)
        return {"job": queued, "upload": {"url": "u", "fields": {}}}

    def upload(self, form: dict, photo: Path, content_type: str) -> None:
        pass

    def result(self, job_id: str) -> dict[str, Any]:
        return {**self.records[job_id], "downloads": {}}


@pytest.fixture
def command_api(monkeypatch) -> Iterator[Callable[..., dict]]:
    """Runs the CLI against a CommandApi instead of a stack; tells whether the target's `with`
    was left."""
    target: dict[str, Any] = {}

    def use(interrupt_at: int | None = None) -> dict:
        @contextmanager
        def api_target(api_url, api_key, log_path):
            try:
                yield CommandApi(interrupt_at), "fake API"
            finally:
                target["left"] = True

        monkeypatch.setattr(cli, "api_target", api_target)
        return target

    yield use


def analyze(tmp_path: Path, *names: str):
    paths = []
    for name in names:
        paths.append(tmp_path / name)
        paths[-1].write_bytes(b"\xff\xd8")
    args = ["analyze", *map(str, paths), "--out", str(tmp_path / "out"), "--api-url", "http://x"]
    return CliRunner().invoke(cli.main, [*args, "--api-key", "k"])


def test_analyze_exits_0_when_every_photo_is_completed_or_rejected(tmp_path, command_api):
    command_api()

    run = analyze(tmp_path, "completed.jpg", "rejected.jpg")

    assert run.exit_code == 0, run.output
    assert "completed.jpg: COMPLETED [" in run.output
    assert (tmp_path / "out" / "rejected" / "result.json").exists()


def test_analyze_names_the_failed_photos_with_their_request_ids_and_exits_1(tmp_path, command_api):
    command_api()

    run = analyze(tmp_path, "completed.jpg", "failed.jpg")

    assert run.exit_code == 1
    assert "1 of 2 photo(s) failed:" in run.output
    assert "failed.jpg: FAILED: pose: boom (request " in run.output
    assert ", job job-1)" in run.output


def test_ctrl_c_leaves_the_stack_and_exits_130_without_a_traceback(tmp_path, command_api):
    target = command_api(interrupt_at=1)

    run = analyze(tmp_path, "completed.jpg", "completed2.jpg", "completed3.jpg")

    assert run.exit_code == 130
    assert target["left"]
    assert "interrupted after submitting 1 of 3 photo(s)" in run.output
    assert "Traceback" not in run.output
