"""The hostile corpus (tests/hostile_files.py) through the public HTTP API, as a client with an
API key sends it: every file submitted at once on the embedded stack, then each job polled until
it ends. Every file gets its expected answer, none FAILS, none is left unfinished, and the stack
still serves and analyses a normal photo afterwards."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from silhouette.assets import Manifest
from silhouette.client.api_client import ApiClient, ApiError
from silhouette.schema import JobOptions
from silhouette.settings import get_settings
from tests.conftest import API_KEYS
from tests.e2e.helpers import FINISHED
from tests.hostile_files import HostileFile, Outcome, hostile_files

pytestmark = pytest.mark.e2e

API_KEY = next(iter(API_KEYS))
# Generous: most files are rejected in well under a second, the few real photos take a cutout
# each (seconds on 2 cores); the jobs' own timeouts decide long before this.
ALL_FINISHED_WITHIN_SECONDS = 600
POLL_INTERVAL_SECONDS = 1.0


@dataclass
class Submission:
    case: HostileFile
    job_id: str | None = None
    refused_at: Outcome | None = None  # REFUSED_AT_REQUEST or REFUSED_AT_UPLOAD
    refusal: str = ""  # the refusing answer: "<status> <error>: <message>"
    last_status: dict[str, Any] | None = None  # the job as GET /jobs/{id} last showed it

    def answer(self) -> str:
        """What the client was told, in one line."""
        if self.refused_at:
            return f"{self.refused_at}: {self.refusal}"
        if self.last_status is None:
            return "never answered"
        job = self.last_status
        if job["status"] not in FINISHED:
            return f"still {job['status']} (stage {job.get('stage')}) when time ran out"
        return f"{job['status']}: {job.get('reason') or job.get('error') or ''}"

    def matches(self) -> bool:
        case, job = self.case, self.last_status or {}
        status, reason = job.get("status"), job.get("reason") or ""
        match case.outcome:
            case Outcome.REFUSED_AT_REQUEST:
                return self.refused_at is case.outcome and case.reason in self.refusal
            case Outcome.REFUSED_AT_UPLOAD:  # storage refuses it, as the POST policy says
                return self.refused_at is case.outcome and "EntityTooLarge" in self.refusal
            case Outcome.COMPLETED:
                return self.refused_at is None and status == "COMPLETED"
            case Outcome.REJECTED:
                return self.refused_at is None and status == "REJECTED" and case.reason in reason
        return False


def submit(client: ApiClient, case: HostileFile, folder: Path) -> Submission:
    """POST /uploads, then the presigned POST of the file, as a client would."""
    try:
        created = client.create_upload(case.filename, case.content_type, JobOptions())
    except ApiError as refusal:
        return Submission(case, refused_at=Outcome.REFUSED_AT_REQUEST, refusal=str(refusal))
    job_id = created["job"]["job_id"]
    upload = folder / case.filename
    upload.write_bytes(case.data)
    try:
        client.upload(created["upload"], upload, case.content_type)
    except ApiError as refusal:
        return Submission(case, job_id, Outcome.REFUSED_AT_UPLOAD, str(refusal))
    return Submission(case, job_id)


def poll_until_all_finished(client: ApiClient, submissions: list[Submission]) -> None:
    """GET /jobs/{id} for every uploaded job until each has ended or time is up."""
    pending = [s for s in submissions if s.job_id and s.refused_at is None]
    deadline = time.monotonic() + ALL_FINISHED_WITHIN_SECONDS
    while pending and time.monotonic() < deadline:
        for submission in pending:
            submission.last_status = client.job(submission.job_id)
        pending = [s for s in pending if s.last_status["status"] not in FINISHED]
        if pending:
            time.sleep(POLL_INTERVAL_SECONDS)


def a_normal_photo(sample: Manifest) -> HostileFile:
    data = sample.path("zidane").read_bytes()
    return HostileFile("zidane", data, "image/jpeg", Outcome.COMPLETED)


def test_every_hostile_file_gets_a_clear_answer_and_the_stack_survives(
    stack, sample, tmp_path, capsys
):
    corpus = hostile_files(sample, get_settings())
    client = ApiClient(stack.api_url, API_KEY)

    started = time.monotonic()
    submissions = [submit(client, case, tmp_path) for case in corpus]
    submitted = time.monotonic() - started
    poll_until_all_finished(client, submissions)
    finished = time.monotonic() - started
    stack.wait_for_executions()

    mismatches = [
        f"{s.case.name}: expected {s.case.outcome} {s.case.reason!r}, got {s.answer()!r}"
        for s in submissions
        if not s.matches()
    ]
    assert not mismatches, f"{len(mismatches)} of {len(corpus)} files:\n" + "\n".join(mismatches)
    answers = Counter(s.answer().split(":")[0] for s in submissions)
    with capsys.disabled():  # the figures, in every run's output
        print(
            f"\n{len(corpus)} hostile files submitted in {submitted:.1f}s, all answered after "
            f"{finished:.1f}s: {', '.join(f'{n} {answer}' for answer, n in answers.items())}"
        )

    health = requests.get(f"{stack.api_url}/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    normal = submit(client, a_normal_photo(sample), tmp_path)
    poll_until_all_finished(client, [normal])
    assert normal.last_status["status"] == "COMPLETED", normal.answer()
