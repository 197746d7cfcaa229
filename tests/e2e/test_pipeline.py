"""The whole pipeline on the embedded stack: presigned upload -> S3 event -> starter -> the real
statemachine.asl.json executed by moto -> every function's real handler -> DynamoDB, result.json
and the job event."""

from __future__ import annotations

import colorsys
import json

import pytest

from silhouette.errors import PermanentError, TransientError
from silhouette.pipeline import PIPELINE
from silhouette.schema import Face, JobOptions, JobStatus
from silhouette.service import keys
from tests.e2e.helpers import (
    execution_history,
    received_events,
    subscribe_to_job_events,
    upload,
    wait_until_finished,
)

pytestmark = pytest.mark.e2e


def test_photo_completes_with_record_result_json_and_event(stack, sample):
    queue = subscribe_to_job_events(stack)
    job_id = upload(sample.path("bus").read_bytes())

    job = wait_until_finished(stack, job_id)

    assert job.status == JobStatus.COMPLETED
    assert (job.image.width, job.image.height, job.image.format) == (810, 1080, "JPEG")
    # Every model ran: pose, cutout and clothing mask, colours with the overlay, face.
    assert len(job.person.keypoints) == 33 and job.person.person_count >= 2
    assert 1 <= len(job.colors) <= 5 and abs(sum(c.fraction for c in job.colors) - 1) < 0.01
    assert job.face.status == "ok" and job.face.sex.value in ("male", "unknown")
    # The result says how sure it is, from the same figures it reports.
    assert job.quality.person_confidence == job.person.confidence
    assert job.quality.framing == job.person.framing == "full_body"
    assert job.quality.reliable == (not job.quality.notes)
    assert set(job.artifacts) == {
        "image",
        "person_mask",
        "cutout",
        "clothing_mask",
        "overlay",
        "face_crop",
        "result",
    }
    assert set(job.models) == {
        "pose_landmarker",
        "selfie_segmenter",
        "face_detector",
        "isnet",
        "age",
        "gender",
    }
    # The DynamoDB item itself, read without the project's model.
    item = stack.client("dynamodb").get_item(
        TableName=stack.outputs["JobsTableName"], Key={"job_id": {"S": job_id}}
    )["Item"]
    assert item["status"]["S"] == "COMPLETED"
    assert item["image"]["M"]["width"]["N"] == "810"
    # result.json in the bucket is the record.
    body = (
        stack.client("s3")
        .get_object(Bucket=stack.outputs["PhotoBucketName"], Key=keys.result(job_id))["Body"]
        .read()
    )
    document = json.loads(body)
    assert document == job.model_dump(mode="json")
    # The working image exists and is a PNG of the photo's size.
    working = (
        stack.client("s3")
        .get_object(Bucket=stack.outputs["PhotoBucketName"], Key=job.artifacts["image"])["Body"]
        .read()
    )
    assert working.startswith(b"\x89PNG")
    # Timings come from the stages the state machine really ran.
    history = execution_history(stack, job_id)
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]
    # An optional stage's Choice is entered whether or not the job wants the stage.
    expected = [
        state
        for spec in PIPELINE
        for state in (
            *([f"{spec.title}Wanted"] if spec.option else []),
            *((spec.title, f"{spec.title}Outcome") if spec.wanted(JobOptions()) else ()),
        )
    ]
    assert entered[: len(expected)] == expected
    assert entered[-1] == "RecordCompleted"
    stages = [spec.stage.value for spec in PIPELINE if spec.wanted(JobOptions())]
    assert set(job.timings_ms) == {*stages, "total"}
    assert job.timings_ms["total"] >= sum(job.timings_ms[s] for s in stages)
    # Exactly one partner event, describing this job.
    events = received_events(stack, queue)
    assert [(e["detail-type"], e["detail"]["job_id"]) for e in events] == [
        ("Job Completed", job_id)
    ]
    assert events[0]["source"] == "silhouette.job"
    assert events[0]["detail"]["result_key"] == keys.result(job_id)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty file"), (b"just some text, not a photo\n", "not an image")],
    ids=["zero-byte", "text"],
)
def test_unusable_upload_ends_rejected_with_reason_and_event(stack, data, reason):
    queue = subscribe_to_job_events(stack)
    job_id = upload(data)

    job = wait_until_finished(stack, job_id)

    assert job.status == JobStatus.REJECTED
    assert job.reason.startswith(reason)
    assert job.image is None
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in execution_history(stack, job_id)
        if "stateEnteredEventDetails" in e
    ]
    assert "Pose" not in entered and entered[-1] == "RecordRejected"
    events = received_events(stack, queue)
    assert [(e["detail-type"], e["detail"]["reason"]) for e in events] == [
        ("Job Rejected", job.reason)
    ]


def test_photo_without_a_person_is_rejected_by_pose(stack, sample):
    job_id = upload(sample.path("chelsea").read_bytes(), "image/png", "chelsea.png")

    job = wait_until_finished(stack, job_id)

    assert (job.status, job.reason) == (JobStatus.REJECTED, "no person detected")
    assert job.image is not None and job.person is None
    assert set(job.timings_ms) == {"ingest", "pose", "total"}


def test_face_analysis_can_be_switched_off_per_job(stack, sample):
    job_id = upload(sample.path("zidane").read_bytes(), options=JobOptions(face=False))

    job = wait_until_finished(stack, job_id)

    assert job.status == JobStatus.COMPLETED and job.options.face is False
    assert job.face == Face(status="off", reason="face analysis was switched off for this job")
    assert "face" not in job.timings_ms and "face_crop" not in job.artifacts
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in execution_history(stack, job_id)
        if "stateEnteredEventDetails" in e
    ]
    assert "FaceWanted" in entered and "Face" not in entered


def test_clothing_colours_of_a_real_garment(stack, sample):
    job_id = upload(sample.path("astronaut").read_bytes(), "image/png", "astronaut.png")

    job = wait_until_finished(stack, job_id)

    # The orange spacesuit is most of the clothing: a red-orange hue, clearly saturated.
    top = job.colors[0]
    hue, saturation, _ = colorsys.rgb_to_hsv(*(channel / 255 for channel in top.rgb))
    assert top.fraction > 0.4
    assert 0.0 <= hue * 360 <= 30 and saturation > 0.5, top
    assert job.face.sex.value in ("female", "unknown")


def test_duplicate_object_created_events_start_one_execution(stack, sample):
    job_id = upload(sample.path("zidane").read_bytes())
    job = wait_until_finished(stack, job_id)
    finished_at = job.updated_at
    starter = stack.function_name("UploadStarterFunction")
    event = {
        "version": "0",
        "id": "dup",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-21T10:00:00Z",
        "region": stack.region,
        "resources": [],
        "detail": {
            "bucket": {"name": stack.outputs["PhotoBucketName"]},
            "object": {"key": keys.upload(job_id), "size": 50427},
        },
    }

    responses = [
        json.loads(
            stack.client("lambda")
            .invoke(FunctionName=starter, Payload=json.dumps(event))["Payload"]
            .read()
        )
        for _ in range(3)
    ]

    assert responses == [{"started": 0, "skipped": 1}] * 3
    executions = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["PipelineStateMachineArn"]
    )["executions"]
    assert [e["name"] for e in executions] == [job_id]
    assert wait_until_finished(stack, job_id).updated_at == finished_at


def test_transient_error_is_retried_and_the_job_completes(stack, sample):
    stack.runtime.inject_fault(
        stack.function_name("PoseFunction"), TransientError("throttled"), times=2
    )
    job_id = upload(sample.path("zidane").read_bytes())

    job = wait_until_finished(stack, job_id)

    assert job.status == JobStatus.COMPLETED
    history = execution_history(stack, job_id)
    failures = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert [
        json.loads(f["lambdaFunctionFailedEventDetails"]["cause"])["errorMessage"] for f in failures
    ] == ["throttled", "throttled"]


@pytest.mark.parametrize(
    ("function", "error", "expected"),
    [
        (
            "ColorsFunction",
            PermanentError("mask artifact missing"),
            "colors: PermanentError: mask artifact missing",
        ),
        ("SegmentFunction", KeyError("bug"), "segment: KeyError: 'bug'"),
    ],
    ids=["permanent", "unexpected"],
)
def test_permanent_error_ends_failed_with_the_error_and_is_not_retried(
    stack, sample, function, error, expected
):
    queue = subscribe_to_job_events(stack)
    stack.runtime.inject_fault(stack.function_name(function), error)
    job_id = upload(sample.path("zidane").read_bytes())

    job = wait_until_finished(stack, job_id)

    assert job.status == JobStatus.FAILED
    assert job.error == expected
    assert job.stage is None
    history = execution_history(stack, job_id)
    assert sum(e["type"] == "LambdaFunctionFailed" for e in history) == 1
    assert history[-1]["type"] == "ExecutionFailed"
    events = received_events(stack, queue)
    assert [(e["detail-type"], e["detail"]["error"]) for e in events] == [("Job Failed", expected)]


def test_functions_log_json_with_job_id_and_publish_stage_durations(stack, sample):
    job_id = upload(sample.path("zidane").read_bytes())
    wait_until_finished(stack, job_id)

    lines = [
        json.loads(line)
        for line in stack.runtime.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    logs = [line for line in lines if line.get("correlation_id") == job_id]
    wanted = [spec for spec in PIPELINE if spec.wanted(JobOptions())]
    assert {line["function_name"] for line in logs} >= {
        stack.function_name(f) for f in (*(spec.function for spec in wanted), "FinalizeFunction")
    }
    durations = {
        line["stage"]
        for line in lines
        if "StageDuration" in line
        and line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Silhouette"
    }
    assert {spec.stage.value for spec in wanted} <= durations
