"""X-Request-ID: the API returns it on every answer and tags the request's log lines with it;
the job it creates carries it through the starter and every stage, and no other invocation's
lines ever get it, however many run at once in one process."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from silhouette.schema import JobOptions, PipelineState, Role, Stage, StageResult
from silhouette.service import api, keys
from silhouette.service.handlers import stage_handler
from silhouette.service.observability import log_keys, logger
from silhouette.service.records import DynamoJobRecords, JobRecord, MemoryJobRecords
from silhouette.service.starter import start_job
from silhouette.service.tenants import Caller
from silhouette.service.uploads import uploaded_objects
from silhouette.settings import get_settings
from tests.unit.api_function import LambdaContext, call_api, logged

JOB = "0123456789abcdef0123456789abcdef"
GENERATED = re.compile(r"[0-9a-f]{32}")


# The API -------------------------------------------------------------------------------------


@pytest.fixture
def settings(monkeypatch):
    monkeypatch.setenv("SILHOUETTE_BUCKET", "photos")
    monkeypatch.setenv("SILHOUETTE_STATE_MACHINE_ARN", "arn:aws:states:::stateMachine:pipeline")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "unit-tests")  # presigning needs credentials, not a service
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def saved_records(settings, monkeypatch) -> list[JobRecord]:
    """POST /uploads in-process: the tenant lookup and the DynamoDB write are the only AWS
    calls it makes; here they resolve to `acme` and collect the records."""
    saved: list[JobRecord] = []
    caller = Caller("acme", Role.USER, "key-id", "acme")
    monkeypatch.setattr(api, "caller_of_key", lambda key_id: caller)
    monkeypatch.setattr(JobRecord, "save", lambda record, condition=None: saved.append(record))
    return saved


def post_upload(headers: dict[str, str] | None = None):
    return call_api("POST", "/uploads", {"content_type": "image/png"}, headers, api_key_id="key-id")


@pytest.mark.parametrize("request_id", ["a", "client-7:upload.1_b", "X" * 128, "0" * 36])
def test_a_well_formed_request_id_is_returned_logged_and_recorded_with_the_job(
    saved_records, request_id
):
    answer = post_upload({"X-Request-ID": request_id})

    assert answer.status == 201, answer.body
    assert answer.request_id == request_id
    [record] = saved_records
    assert record.job_id == answer.json["job"]["job_id"]
    assert record.request_id == request_id
    assert [line["message"] for line in answer.logs] == ["job created"]
    assert answer.logs[0]["job_id"] == record.job_id
    assert answer.logs[0]["request_id"] == request_id
    # API Gateway's id stays the correlation id, as before.
    assert answer.logs[0]["correlation_id"] == answer.gateway_request_id


def test_a_request_without_an_id_gets_a_new_one_used_throughout(saved_records):
    first, second = post_upload(), post_upload()

    assert GENERATED.fullmatch(first.request_id) and GENERATED.fullmatch(second.request_id)
    assert first.request_id != second.request_id
    assert [record.request_id for record in saved_records] == [
        first.request_id,
        second.request_id,
    ]
    assert first.logs[0]["request_id"] == first.request_id


def test_the_header_name_is_case_insensitive():
    answer = call_api("GET", "/openapi.json", headers={"x-request-id": "lower-case-1"})
    assert answer.request_id == "lower-case-1"


@pytest.mark.parametrize(
    "malformed", ["", "a b", "X" * 129, "id\n", "id\r\nSet-Cookie: x=1", "naïve", "a/b", "{id}"]
)
def test_a_malformed_request_id_is_replaced_by_a_new_one(saved_records, malformed):
    answer = post_upload({"X-Request-ID": malformed})

    assert GENERATED.fullmatch(answer.request_id)
    assert saved_records[0].request_id == answer.logs[0]["request_id"] == answer.request_id


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/openapi.json", None, 200),
        ("POST", "/uploads", {"content_type": "text/plain"}, 400),  # validation error
        ("POST", "/uploads", {"content_type": "image/png", "size": True}, 400),
        ("GET", "/jobs", None, 403),  # no API key id: refused by the function itself
        ("GET", "/no-such-endpoint", None, 404),
        ("POST", "/webhooks/minio", {}, 401),
    ],
)
def test_every_answer_carries_the_request_id(method, path, body, status):
    answer = call_api(method, path, body, headers={"X-Request-ID": "req-42"})

    assert answer.status == status, answer.body
    assert answer.request_id == "req-42"


def test_no_request_id_is_left_in_the_logger_after_an_answer(saved_records):
    post_upload({"X-Request-ID": "gone-after"})

    with logged() as after:
        logger.info("between invocations")

    assert "request_id" not in after[0]
    assert "request_id" not in logger.get_current_keys()
    assert "request_id" not in logger.thread_safe_get_current_keys()


def test_request_ids_of_concurrent_invocations_stay_with_their_own_thread():
    inside, logged_outside = threading.Event(), threading.Event()
    lines: dict[str, list[dict[str, Any]]] = {}

    def invocation() -> None:
        with logged() as lines["invocation"], log_keys(request_id="mine"):
            inside.set()
            logged_outside.wait(5)
            logger.info("in the invocation")

    worker = threading.Thread(target=invocation)
    worker.start()
    assert inside.wait(5)
    with logged() as lines["other"]:
        logger.info("elsewhere, at the same time")
    logged_outside.set()
    worker.join(5)

    assert lines["invocation"][0]["request_id"] == "mine"
    assert "request_id" not in lines["other"][0]


def test_log_keys_restore_the_keys_of_the_enclosing_block():
    with logged() as lines, log_keys(request_id="outer", stage="pose"):
        with log_keys(request_id="inner"):
            logger.info("inner")
        with log_keys(request_id=None):
            logger.info("hidden")
        logger.info("outer")

    assert [(line.get("request_id"), line["stage"]) for line in lines] == [
        ("inner", "pose"),
        (None, "pose"),
        ("outer", "pose"),
    ]


# The starter ---------------------------------------------------------------------------------


class RecordingStepFunctions:
    def __init__(self) -> None:
        self.inputs: list[PipelineState] = []

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        self.inputs.append(PipelineState.model_validate_json(input))
        return {"executionArn": f"{stateMachineArn}:{name}"}


def queued_record(request_id: str | None) -> JobRecord:
    return JobRecord(
        job_id=JOB,
        tenant="acme",
        status="QUEUED",
        options={"face": False, "quality": "fast"},
        request_id=request_id,
    )


def s3_upload_event() -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Post",
                "eventTime": "2026-11-21T10:00:00.000Z",
                "s3": {
                    "bucket": {"name": "photos"},
                    "object": {"key": keys.upload(JOB), "size": 1234},
                },
            }
        ]
    }


def test_the_starter_puts_the_jobs_request_id_into_the_state_and_its_log_lines(settings):
    job_records = MemoryJobRecords([queued_record("created-by-post-7")])
    stepfunctions = RecordingStepFunctions()
    [upload] = uploaded_objects(s3_upload_event())

    # As through the MinIO webhook: announced by another API request with its own id.
    with logged() as lines, log_keys(request_id="webhook-request"):
        assert start_job(upload, stepfunctions, s3=None, job_records=job_records)
        logger.info("webhook answered")

    [state] = stepfunctions.inputs
    assert state.request_id == "created-by-post-7"
    assert state.options == JobOptions(face=False, quality="fast")
    assert [(line["message"], line["request_id"]) for line in lines] == [
        ("job started", "created-by-post-7"),
        ("webhook answered", "webhook-request"),
    ]


def test_a_job_created_before_request_ids_starts_without_one(settings):
    job_records = MemoryJobRecords([queued_record(None)])
    stepfunctions = RecordingStepFunctions()
    [upload] = uploaded_objects(s3_upload_event())

    with logged() as lines, log_keys(request_id="webhook-request"):
        assert start_job(upload, stepfunctions, s3=None, job_records=job_records)

    assert stepfunctions.inputs[0].request_id is None
    assert "request_id" not in lines[0]  # not the announcing request's: it made no job


# The stages ----------------------------------------------------------------------------------


def pipeline_state(**fields: Any) -> dict[str, Any]:
    """The execution's input as the starter writes it and Step Functions passes it on."""
    return {
        "job_id": JOB,
        "bucket": "photos",
        "upload_key": keys.upload(JOB),
        "upload_size": 1234,
        "received_at": datetime(2026, 11, 21, 10, 0, tzinfo=UTC).isoformat(),
        "options": {"face": True, "quality": "quality"},
        "stages": {},
        **fields,
    }


def logging_stage(state: PipelineState, store: Any) -> StageResult:
    logger.info("working")
    return StageResult()


@pytest.fixture
def processing(monkeypatch):
    """The job's record as a stage sees it: there, and open."""
    monkeypatch.setattr(DynamoJobRecords, "mark_processing", lambda self, job_id, stage: True)
    monkeypatch.setattr(
        DynamoJobRecords, "find", lambda self, job_id: queued_record("created-by-post-7")
    )


def test_every_log_line_of_a_stage_carries_the_jobs_request_id(processing):
    handler = stage_handler(Stage.POSE, logging_stage)

    with logged() as lines:
        handler(pipeline_state(request_id="created-by-post-7"), LambdaContext())
        logger.info("after the invocation")

    *stage_lines, after = lines
    assert [line["message"] for line in stage_lines] == ["working", "stage finished"]
    for line in stage_lines:
        assert line["request_id"] == "created-by-post-7"
        assert (line["correlation_id"], line["stage"]) == (JOB, "pose")
    assert not {"request_id", "correlation_id", "stage"} & set(after)


def test_the_state_of_an_execution_started_before_request_ids_still_parses(processing):
    handler = stage_handler(Stage.INGEST, logging_stage)

    with logged() as lines:
        result = handler(pipeline_state(), LambdaContext())

    assert result["outcome"] == "continue"
    assert all("request_id" not in line and line["stage"] == "ingest" for line in lines)


def test_the_request_id_is_not_part_of_the_job_clients_see():
    assert "request_id" not in queued_record("created-by-post-7").to_result().model_dump()


def test_an_old_record_without_a_request_id_still_loads():
    stored = queued_record("x").serialize()
    del stored["request_id"]

    record = JobRecord.from_raw_data(stored)

    assert record.request_id is None
    assert record.to_result().options == JobOptions(face=False, quality="fast")
