"""A job's life through the service functions, on the in-memory ports (MemoryJobRecords,
MemoryStore, MemoryPublisher) and without moto or any AWS call: every status change allowed or
refused, duplicate and late writers, a finalize retried after its event was refused, a job
deleted while its stage ran, forged list cursors and the names downloads are saved under."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.endpoint
import pytest

from silhouette.errors import PermanentError, TransientError
from silhouette.names import PROJECT_ROOT
from silhouette.schema import (
    FinalizeRequest,
    JobOptions,
    JobStatus,
    PipelineState,
    Stage,
    StageResult,
    TaskError,
)
from silhouette.service import jobs, keys, sweeper
from silhouette.service.cursors import InvalidCursor
from silhouette.service.finalize import finalize
from silhouette.service.handlers import run_stage
from silhouette.service.jobs import JobNotFound
from silhouette.service.notifications import JobEvent, MemoryPublisher
from silhouette.service.records import UPLOAD_EVENT_GRACE, MemoryJobRecords, new_job_id
from silhouette.service.storage import ArtifactStore, MemoryStore
from silhouette.settings import get_settings

TENANT = "acme"
FINISHED = (JobStatus.COMPLETED, JobStatus.REJECTED, JobStatus.FAILED)
TERMINAL = (*FINISHED, JobStatus.EXPIRED)


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything here runs on the fakes: a request to AWS, or to a moto server, fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a lifecycle test sent a request to AWS")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", refuse)


@pytest.fixture
def job_records() -> MemoryJobRecords:
    return MemoryJobRecords()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


def new_job(job_records: MemoryJobRecords, tenant: str = TENANT) -> str:
    """A QUEUED job, as POST /uploads creates it."""
    return job_records.create_queued(new_job_id(), tenant, "photo.jpg", JobOptions()).job_id


def pipeline_state(job_id: str, **fields: Any) -> PipelineState:
    return PipelineState(
        job_id=job_id,
        bucket="photos",
        upload_key=keys.upload(job_id),
        received_at=datetime.now(UTC),
        **fields,
    )


def writing_stage(state: PipelineState, store: ArtifactStore) -> StageResult:
    key = keys.artifact(state.job_id, "mask", "png")
    store.put(key, b"mask", "image/png")
    return StageResult(artifacts={"mask": key})


def finalize_request(job_id: str, terminal: JobStatus) -> FinalizeRequest:
    """What the state machine passes finalize for an execution that ended `terminal`."""
    key = keys.artifact(job_id, "mask", "png")
    stages = {
        JobStatus.COMPLETED: {Stage.INGEST: StageResult(artifacts={"mask": key})},
        JobStatus.REJECTED: {
            Stage.INGEST: StageResult(outcome="rejected", reason="no person detected")
        },
        JobStatus.FAILED: {},
    }[terminal]
    error = TaskError(Error="PermanentError", Cause="model crashed")
    state = pipeline_state(
        job_id, stages=stages, error=error if terminal == JobStatus.FAILED else None
    )
    return FinalizeRequest(terminal=terminal, job=state)


def processing_job(job_records: MemoryJobRecords, store: MemoryStore) -> str:
    job_id = new_job(job_records)
    run_stage(Stage.INGEST, pipeline_state(job_id), writing_stage, store, job_records)
    return job_id


def terminal_job(
    status: JobStatus,
    job_records: MemoryJobRecords,
    store: MemoryStore,
    publisher: MemoryPublisher,
) -> str:
    """A job that ended `status` the way the service ends jobs so."""
    if status == JobStatus.EXPIRED:
        job_id = new_job(job_records)
        assert job_records.expire(job_id, erase_at=datetime.now(UTC) + timedelta(days=30))
        return job_id
    job_id = processing_job(job_records, store)
    finalize(finalize_request(job_id, status), store, publisher, job_records)
    return job_id


def status_of(job_records: MemoryJobRecords, job_id: str) -> str:
    record = job_records.find(job_id)
    assert record is not None
    return record.status


# Status changes ------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", FINISHED)
def test_a_job_is_queued_then_processing_then_finished(job_records, store, publisher, outcome):
    job_id = new_job(job_records)
    assert jobs.get_job(TENANT, job_id, job_records).status == JobStatus.QUEUED
    seen: list[tuple[str, str | None]] = []

    def watched_stage(state: PipelineState, store: ArtifactStore) -> StageResult:
        job = jobs.get_job(TENANT, state.job_id, job_records)
        seen.append((job.status, job.stage))
        return writing_stage(state, store)

    for stage in (Stage.INGEST, Stage.POSE):
        run_stage(stage, pipeline_state(job_id), watched_stage, store, job_records)
    written = finalize(finalize_request(job_id, outcome), store, publisher, job_records)

    assert seen == [("PROCESSING", "ingest"), ("PROCESSING", "pose")]
    assert written == {"job_id": job_id, "status": outcome.value, "written": True}
    job = jobs.get_job(TENANT, job_id, job_records)
    assert (job.status, job.stage) == (outcome, None)
    assert json.loads(store.get(keys.result(job_id)))["status"] == outcome
    [event] = publisher.events
    assert (event.detail["job_id"], event.detail["status"]) == (job_id, outcome)
    assert job_records.find(job_id).notified_at is not None


class NoExecutions:
    """Step Functions as the sweeper finds it for a job whose photo never came."""

    class exceptions:  # as boto3 clients name it
        class ExecutionDoesNotExist(Exception):
            pass

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        raise self.exceptions.ExecutionDoesNotExist(executionArn)


class EmptyBucket:
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        return {}


def test_a_queued_job_whose_photo_never_came_expires_when_the_sweeper_comes(job_records, publisher):
    job_id = new_job(job_records)
    form_expires = datetime.now(UTC) + timedelta(seconds=get_settings().upload_url_expiry_seconds)

    def sweep(now: datetime) -> dict[str, int]:
        return sweeper.sweep(now, NoExecutions(), EmptyBucket(), None, job_records, publisher)

    assert sweep(form_expires) == {}  # its upload event may still be on its way
    assert sweep(form_expires + UPLOAD_EVENT_GRACE + timedelta(minutes=1)) == {"expired": 1}

    job = jobs.get_job(TENANT, job_id, job_records)
    assert job.status == JobStatus.EXPIRED
    assert job.reason == "the photo was not uploaded before the upload form expired"
    assert publisher.events == []  # partners hear of analysed jobs only


@pytest.mark.parametrize("status", TERMINAL)
def test_nothing_moves_a_job_out_of_a_terminal_status(job_records, store, publisher, status):
    job_id = terminal_job(status, job_records, store, publisher)
    record, result_json = dict(job_records.items[job_id]), store.objects.get(keys.result(job_id))
    events = list(publisher.events)
    now = datetime.now(UTC)

    assert not job_records.mark_processing(job_id, Stage.POSE.value)
    assert not job_records.expire(job_id, now)
    for other in set(FINISHED) - {status}:
        assert not job_records.finish(job_id, other, {}, erase_at=now)
        assert finalize(finalize_request(job_id, other), store, publisher, job_records) == {
            "job_id": job_id,
            "status": status.value,
            "written": False,
        }

    assert job_records.items[job_id] == record
    assert store.objects.get(keys.result(job_id)) == result_json
    assert publisher.events == events


@pytest.mark.parametrize("status", TERMINAL)
def test_a_stage_starting_late_after_the_job_ended_is_refused(
    job_records, store, publisher, status
):
    job_id = terminal_job(status, job_records, store, publisher)
    ran: list[str] = []

    def late_stage(state: PipelineState, store: ArtifactStore) -> StageResult:
        ran.append(state.job_id)
        return StageResult()

    with pytest.raises(PermanentError, match="already finished"):
        run_stage(Stage.POSE, pipeline_state(job_id), late_stage, store, job_records)

    assert ran == []
    assert status_of(job_records, job_id) == status


# Duplicate and retried finalize --------------------------------------------------------------


@pytest.mark.parametrize("again", FINISHED)
def test_a_finalize_after_the_event_was_sent_writes_and_sends_nothing(
    job_records, store, publisher, again
):
    job_id = processing_job(job_records, store)
    finalize(finalize_request(job_id, JobStatus.COMPLETED), store, publisher, job_records)
    record, result_json = dict(job_records.items[job_id]), store.get(keys.result(job_id))

    repeated = finalize(finalize_request(job_id, again), store, publisher, job_records)

    assert repeated == {"job_id": job_id, "status": "COMPLETED", "written": False}
    assert [event.detail_type for event in publisher.events] == ["Job Completed"]
    assert job_records.items[job_id] == record
    assert store.get(keys.result(job_id)) == result_json


def test_finalize_retried_after_the_event_was_refused_sends_it_then(job_records, store):
    job_id = processing_job(job_records, store)
    publisher = MemoryPublisher(failures=1)
    request = finalize_request(job_id, JobStatus.COMPLETED)

    with pytest.raises(TransientError):  # the state machine retries finalize on this
        finalize(request, store, publisher, job_records)
    recorded = job_records.find(job_id)
    assert (recorded.status, recorded.notified_at) == ("COMPLETED", None)
    assert publisher.events == []

    assert finalize(request, store, publisher, job_records)["written"] is True
    [event] = publisher.events
    assert (event.detail_type, event.detail["job_id"]) == ("Job Completed", job_id)
    assert job_records.find(job_id).notified_at is not None
    assert finalize(request, store, publisher, job_records)["written"] is False
    assert len(publisher.events) == 1


def test_an_outcome_recorded_but_never_announced_is_announced_by_the_failure_path(
    job_records, store
):
    """Finalize recorded COMPLETED, then could not send the event however often it was
    retried; the state machine went on to RecordFailure. The job stays COMPLETED and its
    event, not a FAILED one, goes out then."""
    job_id = processing_job(job_records, store)
    publisher = MemoryPublisher(failures=1)
    with pytest.raises(TransientError):
        finalize(finalize_request(job_id, JobStatus.COMPLETED), store, publisher, job_records)

    answer = finalize(finalize_request(job_id, JobStatus.FAILED), store, publisher, job_records)

    assert answer == {"job_id": job_id, "status": "COMPLETED", "written": False}
    [event] = publisher.events
    assert (event.detail_type, event.detail["status"]) == ("Job Completed", "COMPLETED")
    recorded = job_records.find(job_id)
    assert recorded.status == "COMPLETED" and recorded.notified_at is not None


class FinalizeMeanwhile:
    """A publisher that, before sending its first event, lets another finalize run to the end."""

    def __init__(self, other: Callable[[], object], publisher: MemoryPublisher) -> None:
        self.other: Callable[[], object] | None = other
        self.publisher = publisher

    def publish(self, event: JobEvent) -> None:
        if self.other is not None:
            self.other, other = None, self.other
            other()
        self.publisher.publish(event)


def test_two_finalizes_overlapping_before_the_event_both_send_it(job_records, store, publisher):
    """Events are at least once: partners dedupe by job id (both events say the same)."""
    job_id = processing_job(job_records, store)
    request = finalize_request(job_id, JobStatus.COMPLETED)
    duplicate = FinalizeMeanwhile(
        lambda: finalize(request, store, publisher, job_records), publisher
    )

    assert finalize(request, store, duplicate, job_records)["written"] is True

    assert [(e.detail["job_id"], e.detail["status"]) for e in publisher.events] == [
        (job_id, "COMPLETED"),
        (job_id, "COMPLETED"),
    ]
    assert job_records.find(job_id).notified_at is not None


# Deletion while a stage runs -----------------------------------------------------------------


def test_a_job_deleted_while_its_stage_ran_keeps_nothing_the_stage_wrote(job_records, store):
    other_job = processing_job(job_records, store)
    job_id = new_job(job_records)

    def stage_outlived_by_its_job(state: PipelineState, store: ArtifactStore) -> StageResult:
        result = writing_stage(state, store)
        # The execution was stopped meanwhile and the user erased the job.
        assert job_records.delete(state.job_id, even_processing=True)
        return result

    with pytest.raises(PermanentError, match="deleted while pose ran"):
        run_stage(Stage.POSE, pipeline_state(job_id), stage_outlived_by_its_job, store, job_records)

    assert [key for key in store.objects if job_id in key] == []
    assert list(store.objects) == [keys.artifact(other_job, "mask", "png")]
    assert job_records.find_any(job_id) is None


def test_a_job_erased_while_it_finished_keeps_no_result(job_records, store, publisher):
    job_id = processing_job(job_records, store)

    class ErasedAsItFinishes(MemoryJobRecords):
        def finish(self, job_id: str, *args: Any, **kwargs: Any) -> bool:
            assert self.delete(job_id, even_processing=True)  # the tenant's erasure, meanwhile
            return super().finish(job_id, *args, **kwargs)

    racing = ErasedAsItFinishes()
    racing.items = job_records.items
    written = finalize(finalize_request(job_id, JobStatus.COMPLETED), store, publisher, racing)

    assert written["written"] is False and publisher.events == []
    assert keys.result(job_id) not in store.objects


# Listing -------------------------------------------------------------------------------------


def encoded(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


def test_a_tenant_pages_through_its_own_jobs_newest_first(job_records):
    created = [new_job(job_records) for _ in range(3)]
    theirs = new_job(job_records, tenant="globex")

    first, cursor = jobs.list_jobs(TENANT, 2, None, job_records)
    rest, end = jobs.list_jobs(TENANT, 2, cursor, job_records)

    assert [job.job_id for job in first + rest] == created[::-1]
    assert end is None
    with pytest.raises(JobNotFound):
        jobs.get_job(TENANT, theirs, job_records)


def another_tenants_cursor(job_records: MemoryJobRecords) -> str:
    for _ in range(2):
        new_job(job_records, tenant="globex")
    _, cursor = jobs.list_jobs("globex", 1, None, job_records)
    assert cursor is not None
    return cursor


def own_cursor_naming(tenant: str) -> Callable[[MemoryJobRecords], str]:
    """The tenant's own cursor, edited to name `tenant`."""

    def forge(job_records: MemoryJobRecords) -> str:
        for _ in range(2):
            new_job(job_records)
        _, cursor = jobs.list_jobs(TENANT, 1, None, job_records)
        key = json.loads(base64.urlsafe_b64decode(cursor))
        return encoded({**key, "tenant": {"S": tenant}})

    return forge


@pytest.mark.parametrize(
    "forge",
    [
        lambda job_records: "not a cursor",
        lambda job_records: encoded(["acme"]),
        lambda job_records: encoded({"tenant": {"S": TENANT}}),
        lambda job_records: encoded(
            {"job_id": {"S": "x"}, "tenant": {"S": TENANT}, "created_at": {"N": "1"}}
        ),
        another_tenants_cursor,
        own_cursor_naming("globex"),
    ],
    ids=["garbage", "not-a-key", "tenant-only", "wrong-type", "other-tenant", "edited-tenant"],
)
def test_a_forged_cursor_is_refused(job_records, forge):
    cursor = forge(job_records)

    with pytest.raises(InvalidCursor):
        jobs.list_jobs(TENANT, 2, cursor, job_records)


# Download names ------------------------------------------------------------------------------


class Presigner:
    """Presigns without AWS, keeping the parameters of each link."""

    def __init__(self) -> None:
        self.params: list[dict[str, str]] = []

    def generate_presigned_url(self, operation: str, Params: dict[str, str], ExpiresIn: int) -> str:
        self.params.append(Params)
        return f"https://photos.example/{Params['Key']}"


@pytest.mark.parametrize(
    ("uploaded_as", "saved_as"),
    [
        ("beach day.jpg", "beach_day-mask.png"),
        ("../../etc/passwd", "passwd-mask.png"),
        ("C:\\Users\\me\\beach.jpg", "beach-mask.png"),
        ('a"; filename=evil.exe.jpg', "a_filename_evil.exe-mask.png"),
        ("line\r\nbreak.png", "line_break-mask.png"),
        ("Ünïcödé.png", "n_c_d-mask.png"),
        ("照片.jpg", "{job}-mask.png"),  # nothing left: named after the job
        ("....", "{job}-mask.png"),
        (None, "{job}-mask.png"),
        ("x" * 100 + ".jpg", "x" * 64 + "-mask.png"),
    ],
)
def test_downloads_are_saved_under_a_safe_name_from_the_upload(job_records, uploaded_as, saved_as):
    job_id = new_job(job_records)
    result = jobs.get_job(TENANT, job_id, job_records).model_copy(
        update={
            "filename": uploaded_as,
            "artifacts": {"mask": keys.artifact(job_id, "mask", "png")},
        }
    )
    presigner = Presigner()

    links = jobs.downloads(result, presigner)

    expected = saved_as.format(job=job_id[:8])
    assert links["mask"].filename == expected
    [params] = presigner.params
    assert params["ResponseContentDisposition"] == f'attachment; filename="{expected}"'


def test_these_tests_load_no_moto():
    """Importing this module, and with it every module it tests, leaves moto unloaded (checked
    in a fresh interpreter: other test modules of a run may have loaded it already)."""
    code = "import sys, tests.unit.test_lifecycle; print('moto' in sys.modules)"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    assert run.stdout.split()[-1] == "False"
