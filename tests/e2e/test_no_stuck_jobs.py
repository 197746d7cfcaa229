"""Every path out of the state machine ends the job: finalize failing, an execution timing out
or being stopped, an upload that never arrives or whose event is lost; and every job is
erased when its retention ends. The sweeper runs as its schedule would, at a chosen time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import requests

from silhouette.errors import PermanentError, TransientError
from silhouette.local.stack import EmbeddedStack
from silhouette.schema import JobOptions, JobStatus
from silhouette.service import jobs, keys, records, sweeper
from silhouette.settings import get_settings
from tests.e2e.helpers import (
    TENANT,
    execution_ended_event,
    execution_history,
    job_execution,
    received_events,
    subscribe_to_job_events,
    upload,
    wait_until_finished,
)

SWEEPER = "SweeperFunction"


def sweep(stack: EmbeddedStack, after: timedelta) -> dict[str, int]:
    """Run the sweeper as its schedule would, `after` from now."""
    return stack.run_scheduled(SWEEPER, datetime.now(UTC) + after)


def wait_for_status(job_id: str, status: JobStatus, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (current := jobs.get_job(TENANT, job_id).status) != status:
        assert not current.is_terminal, f"job ended {current} before reaching {status}"
        assert time.monotonic() < deadline, f"job still {current} after {timeout}s"
        time.sleep(0.05)


def execution_status(stack: EmbeddedStack, job_id: str) -> str | None:
    """The job's execution status; None until the upload event has started it."""
    sfn = stack.client("stepfunctions")
    try:
        return sfn.describe_execution(executionArn=job_execution(stack, job_id))["status"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return None


def wait_for_execution_end(stack: EmbeddedStack, job_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while (status := execution_status(stack, job_id)) in (None, "RUNNING"):
        assert time.monotonic() < deadline, f"execution {status or 'not started'}"
        time.sleep(0.1)
    return status


@contextmanager
def execution_timeout(stack: EmbeddedStack, seconds: int) -> Iterator[None]:
    """The state machine's execution-wide TimeoutSeconds lowered, as if a job ran that long."""
    sfn = stack.client("stepfunctions")
    arn = stack.outputs["PipelineStateMachineArn"]
    original = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    sfn.update_state_machine(
        stateMachineArn=arn,
        definition=json.dumps({**json.loads(original), "TimeoutSeconds": seconds}),
    )
    try:
        yield
    finally:
        sfn.update_state_machine(stateMachineArn=arn, definition=original)


def stored_objects(stack: EmbeddedStack, job_id: str) -> list[str]:
    bucket, s3 = get_settings().bucket, stack.client("s3")
    return [
        item["Key"]
        for prefix in keys.job_prefixes(job_id)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    ]


def assert_erasable(job_id: str) -> None:
    """The user can erase the job: DELETE succeeds and nothing of it is left."""
    jobs.delete_job(TENANT, job_id)
    assert records.DYNAMODB_RECORDS.find(job_id) is None


@pytest.mark.parametrize(
    ("fault", "times"),
    [(PermanentError("finalize is broken"), 2), (TransientError("table throttled"), 10)],
    ids=["permanent-twice", "transient-ten-times"],
)
def test_finalize_failing_twice_still_ends_the_job_failed(stack, sample, fault, times):
    stack.runtime.inject_fault(stack.function_name("FinalizeFunction"), fault, times=times)
    job_id = upload(sample.path("zidane").read_bytes())

    job = wait_until_finished(stack, job_id, timeout=240)

    assert job.status == JobStatus.FAILED
    assert job.error == f"finalize: {type(fault).__name__}: the outcome could not be recorded"
    assert job.stage is None
    assert [e["type"] for e in execution_history(stack, job_id)][-1] == "ExecutionFailed"
    assert_erasable(job_id)


def test_a_rejection_that_cannot_be_recorded_fails_and_keeps_its_reason(stack, sample):
    queue = subscribe_to_job_events(stack)
    stack.runtime.inject_fault(
        stack.function_name("FinalizeFunction"), PermanentError("result bucket refused")
    )
    job_id = upload(sample.path("chelsea").read_bytes(), content_type="image/png")

    job = wait_until_finished(stack, job_id)

    assert job.status == JobStatus.FAILED
    assert job.error == "finalize: PermanentError: result bucket refused"
    assert job.reason == "no person detected"
    events = received_events(stack, queue)
    assert [(e["detail-type"], e["detail"]["error"]) for e in events] == [
        ("Job Failed", "finalize: PermanentError: result bucket refused")
    ]


def test_an_execution_that_times_out_is_recorded_failed_by_the_sweeper(stack, sample):
    queue = subscribe_to_job_events(stack)
    stack.runtime.inject_delay(stack.function_name("PoseFunction"), seconds=6)
    with execution_timeout(stack, seconds=3):
        job_id = upload(sample.path("bus").read_bytes())
        assert wait_for_execution_end(stack, job_id) == "TIMED_OUT"
    stuck = jobs.get_job(TENANT, job_id)
    assert not stuck.status.is_terminal

    assert sweep(stack, after=timedelta(minutes=1)) == {}  # not due yet: stages may be slow
    assert sweep(stack, after=records.STAGE_CHECK_AFTER + timedelta(minutes=1)) == {"failed": 1}

    job = jobs.get_job(TENANT, job_id)
    assert job.status == JobStatus.FAILED
    # A job that timed out before its first stage began failed waiting for it.
    assert job.error == (
        f"{stuck.stage or 'ingest'}: States.Timeout: the job did not finish in the time allowed"
    )
    assert [e["detail"]["status"] for e in received_events(stack, queue)] == ["FAILED"]
    assert_erasable(job_id)


def stopped_mid_run(stack: EmbeddedStack, photo: bytes) -> str:
    """A job whose execution was stopped while a stage ran (the stage runs on)."""
    job_id = upload(photo)
    wait_for_status(job_id, JobStatus.PROCESSING)
    stack.client("stepfunctions").stop_execution(executionArn=job_execution(stack, job_id))
    assert wait_for_execution_end(stack, job_id) == "ABORTED"
    return job_id


def test_a_stopped_execution_is_settled_by_its_status_change_event(stack, sample):
    job_id = stopped_mid_run(stack, sample.path("bus").read_bytes())
    stage = jobs.get_job(TENANT, job_id).stage
    event = execution_ended_event(job_execution(stack, job_id), job_id, stack.region, "ABORTED")

    answer = stack.client("lambda").invoke(
        FunctionName=stack.function_name(SWEEPER), Payload=json.dumps(event)
    )

    assert json.loads(answer["Payload"].read()) == {"failed": 1}
    job = jobs.get_job(TENANT, job_id)
    assert (job.status, job.error) == (
        JobStatus.FAILED,
        f"{stage}: States.Aborted: the job's execution was stopped",
    )
    stack.wait_for_executions()


def test_deleting_a_job_whose_execution_was_stopped_erases_all_of_it(stack, sample):
    job_id = stopped_mid_run(stack, sample.path("bus").read_bytes())

    assert_erasable(job_id)  # the stage it was in is still running

    assert stack.runtime.wait_until_idle(120)
    assert stored_objects(stack, job_id) == []


def test_an_upload_that_never_arrives_expires(stack):
    job, _ = jobs.create_upload(TENANT, "never.jpg", "image/jpeg", JobOptions())
    form_expires = timedelta(seconds=get_settings().upload_url_expiry_seconds)

    assert sweep(stack, after=form_expires) == {}  # events may still be on their way
    due = form_expires + records.UPLOAD_EVENT_GRACE
    assert sweep(stack, after=due + timedelta(minutes=1)) == {"expired": 1}

    expired = jobs.get_job(TENANT, job.job_id)
    assert expired.status == JobStatus.EXPIRED
    assert expired.reason == "the photo was not uploaded before the upload form expired"
    assert_erasable(job.job_id)


def test_an_upload_whose_event_was_lost_is_started_by_the_sweeper(stack, sample):
    bucket = get_settings().bucket
    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    job, post = jobs.create_upload(TENANT, "lost.jpg", "image/jpeg", JobOptions())
    response = requests.post(
        post.url,
        data=post.fields,
        files={"file": ("lost.jpg", sample.path("zidane").read_bytes(), "image/jpeg")},
        timeout=30,
    )
    assert response.status_code == 204
    assert jobs.get_job(TENANT, job.job_id).status == JobStatus.QUEUED

    due = timedelta(seconds=get_settings().upload_url_expiry_seconds) + records.UPLOAD_EVENT_GRACE
    assert sweep(stack, after=due + timedelta(minutes=1)) == {"started": 1}

    assert wait_until_finished(stack, job.job_id, timeout=180).status == JobStatus.COMPLETED


def test_a_job_is_erased_with_its_objects_when_its_retention_ends(stack, sample):
    job_id = upload(sample.path("zidane").read_bytes())
    job = wait_until_finished(stack, job_id)
    assert job.status == JobStatus.COMPLETED
    assert len(stored_objects(stack, job_id)) >= 5
    retention = timedelta(days=get_settings().retention_days)

    assert sweep(stack, after=retention - timedelta(hours=1)) == {}
    assert sweep(stack, after=retention + timedelta(minutes=1)) == {"erased": 1}

    assert records.DYNAMODB_RECORDS.find_any(job_id) is None
    assert stored_objects(stack, job_id) == []


def test_records_carry_the_ttl_attribute_the_table_expires_them_by(stack):
    job, _ = jobs.create_upload(TENANT, "ttl.jpg", "image/jpeg", JobOptions())
    table = get_settings().table

    ttl = stack.client("dynamodb").describe_time_to_live(TableName=table)
    record = records.DYNAMODB_RECORDS.find(job.job_id)

    assert ttl["TimeToLiveDescription"] == {
        "AttributeName": "expires_at",
        "TimeToLiveStatus": "ENABLED",
    }
    lifetime = record.expires_at - record.created_at  # TTL keeps whole seconds
    assert abs(lifetime - timedelta(days=get_settings().retention_days)) < timedelta(seconds=1)


def test_a_sweep_short_of_time_leaves_the_rest_for_the_next_run(stack):
    created = [
        jobs.create_upload(TENANT, f"never-{n}.jpg", "image/jpeg", JobOptions())[0]
        for n in range(2)
    ]
    later = datetime.now(UTC) + timedelta(hours=1)
    sfn, s3 = stack.client("stepfunctions"), stack.client("s3")

    assert sweeper.sweep(later, sfn, s3, seconds_left=lambda: 5.0) == {}
    assert {jobs.get_job(TENANT, job.job_id).status for job in created} == {JobStatus.QUEUED}
    assert sweeper.sweep(later, sfn, s3, seconds_left=lambda: 300.0) == {"expired": 2}
