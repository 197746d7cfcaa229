"""The job event's detail, as finalize builds it, against schemas/job-event.v1.json: the contract
partners code against. Details are built from records assembled the way finalize assembles them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import ValidationError

from silhouette.schema import (
    FinalizeRequest,
    ImageFacts,
    JobOptions,
    JobResult,
    JobStatus,
    PipelineState,
    Stage,
    StageResult,
    TaskError,
)
from silhouette.service import keys
from silhouette.service.finalize import record_fields
from silhouette.service.notifications import DETAIL_SCHEMA_PATH, DETAIL_TYPES, job_event_detail

JOB = "0123456789abcdef0123456789abcdef"
RECEIVED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
IMAGE = {"width": 810, "height": 1080, "format": "JPEG"}
PERSON = {
    "keypoints": [],
    "framing": "full_body",
    "bbox": {"x": 40, "y": 60, "width": 500, "height": 990},
    "confidence": 0.9,
    "evidence": {"agreement": 0.9, "face": 0.8, "torso": 1.0, "presence": 1.0},
    "person_count": 1,
}


def _ran(stage: Stage, *artifacts: str, **facts: object) -> tuple[Stage, StageResult]:
    return stage, StageResult(
        artifacts={name: keys.artifact(JOB, name, "png") for name in artifacts},
        facts=facts,
        duration_ms=120,
    )


def _finished(
    terminal: JobStatus, stages: list[tuple[Stage, StageResult]], error: TaskError | None = None
) -> JobResult:
    """The terminal record finalize would write for an execution that ran `stages`."""
    state = PipelineState(
        job_id=JOB,
        bucket="photos",
        upload_key=keys.upload(JOB),
        received_at=RECEIVED,
        options=JobOptions(),
        stages=dict(stages),
        error=error,
    )
    return JobResult.model_validate(
        {
            "job_id": JOB,
            "tenant": "acme",
            "status": terminal,
            "created_at": RECEIVED,
            "updated_at": RECEIVED + timedelta(seconds=8),
            **record_fields(FinalizeRequest(terminal=terminal, job=state)),
        }
    )


COMPLETED = _finished(
    JobStatus.COMPLETED,
    [
        _ran(Stage.INGEST, "image", image=IMAGE),
        _ran(Stage.POSE, "person_mask", person=PERSON),
        _ran(Stage.SEGMENT, "cutout", "clothing_mask"),
        _ran(Stage.COLORS, colors=[]),
        _ran(Stage.FACE, "face_crop", face={"status": "unknown"}),
        _ran(Stage.OVERLAY, "overlay"),
    ],
)
REJECTED_BY_INGEST = _finished(
    JobStatus.REJECTED,
    [(Stage.INGEST, StageResult(outcome="rejected", reason="empty file: 0 bytes"))],
)
REJECTED_BY_POSE = _finished(
    JobStatus.REJECTED,
    [
        _ran(Stage.INGEST, "image", image=IMAGE),
        (Stage.POSE, StageResult(outcome="rejected", reason="no person detected")),
    ],
)
FAILED = _finished(
    JobStatus.FAILED,
    [_ran(Stage.INGEST, "image", image=IMAGE)],
    TaskError(Error="TransientError", Cause='{"errorMessage": "throttled"}'),
)


def _detail(result: JobResult) -> dict:
    """A copy, so a test may change it without changing the shared records."""
    return copy.deepcopy(job_event_detail(result, keys.result(result.job_id)))


@pytest.mark.parametrize(
    "result",
    [COMPLETED, REJECTED_BY_INGEST, REJECTED_BY_POSE, FAILED],
    ids=["completed", "rejected-by-ingest", "rejected-by-pose", "failed"],
)
def test_details_of_every_terminal_status_match_the_schema(job_event_validator, result):
    detail = _detail(result)

    job_event_validator.validate(detail)
    assert detail["tenant"] == "acme" and detail["status"] == result.status.value


def test_the_schema_file_lists_exactly_the_fields_of_the_detail():
    schema = json.loads(DETAIL_SCHEMA_PATH.read_text())

    assert set(schema["required"]) == set(schema["properties"]) == set(_detail(COMPLETED))
    assert schema["additionalProperties"] is False


def test_the_schema_file_agrees_with_the_result_model():
    """The event carries fields of the job's result: the schema partners code against says of
    them what the model (and so the API's OpenAPI document) says."""
    schema = json.loads(DETAIL_SCHEMA_PATH.read_text())["properties"]
    image = ImageFacts.model_json_schema()

    assert set(schema) - {"schema_version", "result_key"} <= set(JobResult.model_fields)
    assert set(schema["image"]["properties"]) == set(image["properties"])
    assert set(schema["image"]["required"]) == set(image["required"])
    assert set(schema["status"]["enum"]) == {status.value for status in DETAIL_TYPES}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d.pop("tenant"), "'tenant' is a required property"),
        (lambda d: d.update(status="PROCESSING"), "'PROCESSING' is not one of"),
        (lambda d: d.update(schema_version="2"), "'1' was expected"),
        (lambda d: d.update(person={}), "Additional properties are not allowed"),
        (lambda d: d["image"].update(width="810"), "'810' is not of type 'integer'"),
        (lambda d: d["timings_ms"].update(pose=1.5), "1.5 is not of type 'integer'"),
        (lambda d: d.update(reason="no person detected"), "is not of type 'null'"),
    ],
    ids=["missing", "non-terminal", "version", "extra-field", "image", "timing", "reason"],
)
def test_details_that_break_the_contract_are_refused(job_event_validator, change, complaint):
    detail = _detail(COMPLETED)
    change(detail)

    with pytest.raises(ValidationError) as refused:
        job_event_validator.validate(detail)
    assert complaint in str(refused.value)


def test_a_rejection_needs_its_reason_and_a_failure_its_error(job_event_validator):
    rejected, failed = _detail(REJECTED_BY_POSE), _detail(FAILED)
    rejected["reason"], failed["error"] = None, None

    for detail in (rejected, failed):
        with pytest.raises(ValidationError, match="None is not of type 'string'"):
            job_event_validator.validate(detail)
