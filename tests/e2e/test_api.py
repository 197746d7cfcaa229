"""The public HTTP API as a client with nothing but an API key and an HTTP library (curl would do
the same) uses it on the embedded stack: through the local API gateway, the API function, the
presigned POST and the real pipeline."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from silhouette.pipeline import PIPELINE
from silhouette.schema import JobOptions
from silhouette.service import keys, records
from tests.conftest import API_KEYS
from tests.e2e.helpers import FINISHED, job_execution
from tests.e2e.test_start_paths import announce_uploads, minio_event, post_minio_event

pytestmark = pytest.mark.e2e

KEY_A, KEY_B = API_KEYS


def call(stack, method: str, path: str, key: str | None = KEY_A, **kwargs) -> requests.Response:
    headers = {"x-api-key": key} if key else {}
    return requests.request(method, f"{stack.api_url}{path}", headers=headers, timeout=30, **kwargs)


def request_upload(stack, key: str = KEY_A, **fields) -> dict:
    body = {"content_type": "image/jpeg", "filename": "zidane.jpg", **fields}
    response = call(stack, "POST", "/uploads", key, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def post_file(form: dict, data: bytes, content_type: str = "image/jpeg") -> requests.Response:
    return requests.post(
        form["url"],
        data=form["fields"],
        files={"file": ("photo", data, content_type)},
        timeout=30,
    )


def poll_until_finished(stack, job_id: str, key: str = KEY_A, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = call(stack, "GET", f"/jobs/{job_id}", key).json()
        if status["status"] in FINISHED:
            stack.wait_for_executions()
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished after {timeout}s")


def job_objects(stack, job_id: str) -> list[str]:
    s3 = stack.client("s3")
    return [
        item["Key"]
        for prefix in keys.job_prefixes(job_id)
        for item in s3.list_objects_v2(Bucket=stack.outputs["PhotoBucketName"], Prefix=prefix).get(
            "Contents", []
        )
    ]


def test_upload_poll_fetch_results_and_delete_with_only_a_key(stack, sample):
    created = request_upload(stack, options={"face": False})
    job_id = created["job"]["job_id"]
    assert created["job"]["status"] == "QUEUED" and created["job"]["options"]["face"] is False
    form = created["upload"]
    assert form["max_bytes"] == 20 * 1024 * 1024
    assert form["fields"]["key"] == keys.upload(job_id)

    assert post_file(form, sample.path("zidane").read_bytes()).status_code == 204
    status = poll_until_finished(stack, job_id)

    assert status["status"] == "COMPLETED"
    assert set(status) >= {"job_id", "status", "stage", "created_at", "updated_at"}
    assert "person" not in status  # polling stays small; the analysis is in /result
    result = call(stack, "GET", f"/jobs/{job_id}/result").json()
    assert len(result["person"]["keypoints"]) == 33 and result["colors"]
    assert result["face"]["status"] == "off"
    assert set(result["downloads"]) == set(result["artifacts"])
    cutout = result["downloads"]["cutout"]
    assert cutout["filename"] == "zidane-cutout.png"
    download = requests.get(cutout["url"], timeout=30)
    assert download.content.startswith(b"\x89PNG")
    assert download.headers["Content-Disposition"] == 'attachment; filename="zidane-cutout.png"'
    overlay = requests.get(result["downloads"]["overlay"]["url"], timeout=30)
    assert overlay.content.startswith(b"\xff\xd8")

    deleted = call(stack, "DELETE", f"/jobs/{job_id}")

    assert deleted.status_code == 204 and deleted.content == b""
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/result"):
        gone = call(stack, "GET", path)
        assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    assert call(stack, "DELETE", f"/jobs/{job_id}").status_code == 404
    assert job_objects(stack, job_id) == []
    assert records.DYNAMODB_RECORDS.find(job_id) is None
    # Links handed out earlier no longer serve the photo's artifacts.
    assert requests.get(cutout["url"], timeout=30).status_code in (403, 404)


def test_another_tenant_can_neither_read_list_nor_delete_a_job(stack, sample):
    job_id = request_upload(stack, KEY_A)["job"]["job_id"]
    other = request_upload(stack, KEY_B)["job"]["job_id"]

    for method, path in (
        ("GET", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}/result"),
        ("DELETE", f"/jobs/{job_id}"),
    ):
        response = call(stack, method, path, KEY_B)
        assert response.status_code == 404, (method, path)
        # Exactly what a job that never existed gives: no hint that the id is taken.
        assert response.json()["message"] == f"no job {job_id!r}"
    listed_by_b = [job["job_id"] for job in call(stack, "GET", "/jobs", KEY_B).json()["jobs"]]
    assert listed_by_b == [other]
    assert call(stack, "GET", f"/jobs/{job_id}", KEY_A).json()["status"] == "QUEUED"
    assert records.DYNAMODB_RECORDS.find(job_id).tenant == "tenant-a"


def test_requests_without_a_valid_key_are_refused_as_json(stack):
    for key in (None, "not-a-key-of-this-stack-at-all"):
        for method, path in (("POST", "/uploads"), ("GET", "/jobs"), ("GET", "/jobs/abc")):
            response = call(stack, method, path, key)
            assert response.status_code == 403
            assert response.json()["error"] == "forbidden"
    # Health and the API description are public.
    assert call(stack, "GET", "/health", None).status_code == 200
    assert call(stack, "GET", "/openapi.json", None).json()["info"]["title"] == "Silhouette"
    missing = call(stack, "GET", "/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content_type": "text/plain"}, "content_type"),
        ({"filename": "a.jpg"}, "content_type"),
        ({"content_type": "image/png", "options": {"quality": "best"}}, "options.quality"),
        ({"content_type": "image/png", "size": -1}, "size"),
        ({"content_type": "image/png", "colour": "red"}, "colour"),
        ({"content_type": "image/png", "size": True}, "size"),
        ({"content_type": "image/png", "size": "12"}, "size"),
        ({"content_type": "image/png", "size": 1.5}, "size"),
        ({"content_type": "image/png", "options": {"face": "yes"}}, "options.face"),
        ({"content_type": "image/png", "options": {"face": 1}}, "options.face"),
    ],
)
def test_invalid_upload_requests_get_400_naming_the_field(stack, body, field):
    response = call(stack, "POST", "/uploads", json=body)

    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "invalid_request" and error["field"] == field
    assert "Traceback" not in response.text


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe{\x00", b"[]"])
def test_a_body_that_is_not_a_json_object_gets_400(stack, body):
    response = call(stack, "POST", "/uploads", data=body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_oversized_uploads_are_refused_before_and_after_the_upload(stack):
    too_big = call(stack, "POST", "/uploads", json={"content_type": "image/png", "size": 21 << 20})
    assert too_big.status_code == 413
    assert too_big.json() == {
        "error": "too_large",
        "message": "22020096 bytes is more than the 20971520 bytes an upload may have",
        "field": "size",
    }
    created = request_upload(stack)
    form, job_id = created["upload"], created["job"]["job_id"]
    # S3 enforces the POST policy: this key only, this content type, at most max_bytes, soon.
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    assert {"key": keys.upload(job_id)} in policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in policy["conditions"]
    assert ["content-length-range", 0, form["max_bytes"]] in policy["conditions"]
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(minutes=5)
    # The embedded stack checks the policy as S3 does: nothing is stored, no job starts.
    refused = post_file(form, b"\xff" * (form["max_bytes"] + 1))
    assert refused.status_code == 400
    assert "<Code>EntityTooLarge</Code>" in refused.text
    bucket = stack.outputs["PhotoBucketName"]
    assert (
        stack.client("s3").list_objects_v2(Bucket=bucket, Prefix=keys.upload(job_id))["KeyCount"]
        == 0
    )
    assert call(stack, "GET", f"/jobs/{job_id}").json()["status"] == "QUEUED"


def test_result_of_an_unfinished_job_is_409(stack):
    job_id = request_upload(stack)["job"]["job_id"]

    response = call(stack, "GET", f"/jobs/{job_id}/result")

    assert response.status_code == 409
    assert response.json()["error"] == "not_finished"


def test_a_job_being_analysed_can_be_deleted_once_it_has_finished(stack, sample):
    created = request_upload(stack)
    job_id = created["job"]["job_id"]
    assert post_file(created["upload"], sample.path("bus").read_bytes()).status_code == 204
    deadline = time.monotonic() + 60
    while call(stack, "GET", f"/jobs/{job_id}").json()["status"] != "PROCESSING":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    busy = call(stack, "DELETE", f"/jobs/{job_id}")

    assert busy.status_code == 409 and busy.json()["error"] == "busy"
    assert records.DYNAMODB_RECORDS.find(job_id) is not None
    assert poll_until_finished(stack, job_id)["status"] == "COMPLETED"
    assert call(stack, "DELETE", f"/jobs/{job_id}").status_code == 204
    assert job_objects(stack, job_id) == []


def test_an_upload_arriving_after_its_job_was_deleted_is_erased_and_not_analysed(stack, sample):
    created = request_upload(stack)
    job_id = created["job"]["job_id"]
    assert call(stack, "DELETE", f"/jobs/{job_id}").status_code == 204

    assert post_file(created["upload"], sample.path("zidane").read_bytes()).status_code == 204
    stack.wait_for_executions()

    assert job_objects(stack, job_id) == []
    machine = stack.outputs["PipelineStateMachineArn"]
    assert (
        stack.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []
    )


def test_jobs_are_listed_newest_first_in_pages(stack):
    created = [request_upload(stack)["job"]["job_id"] for _ in range(3)]

    first = call(stack, "GET", "/jobs", params={"limit": 2}).json()
    second = call(stack, "GET", "/jobs", params={"limit": 2, "cursor": first["next_cursor"]})

    listed = [job["job_id"] for job in first["jobs"] + second.json()["jobs"]]
    assert listed == created[::-1]
    assert second.json().get("next_cursor") is None
    # Job ids are 128 random bits: nothing to enumerate.
    assert all(len(job_id) == 32 and int(job_id, 16) for job_id in created)
    forged = call(stack, "GET", "/jobs", params={"cursor": "eyJ0ZW5hbnQiOiB7IlMiOiAieCJ9fQ=="})
    assert forged.status_code == 400 and forged.json()["field"] == "cursor"


def test_health_reports_every_dependency(stack):
    healthy = call(stack, "GET", "/health", None)
    assert healthy.status_code == 200
    report = healthy.json()
    assert report["status"] == "ok"
    assert {name: dep["status"] for name, dep in report["dependencies"].items()} == {
        "storage": "ok",
        "table": "ok",
        "state_machine": "ok",
    }

    stack.client("dynamodb").delete_table(TableName=stack.outputs["JobsTableName"])
    degraded = call(stack, "GET", "/health", None)

    assert degraded.status_code == 503
    dependencies = degraded.json()["dependencies"]
    assert dependencies["table"] == {
        "status": "error",
        "latency_ms": dependencies["table"]["latency_ms"],
        "error": "ResourceNotFoundException",
    }
    assert dependencies["storage"]["status"] == "ok"


def test_a_key_beyond_its_usage_plan_rate_gets_429(stack, monkeypatch):
    # The usage plan in template.yaml allows a burst of 20 at 10 requests per second. With the
    # gateway's clock stopped nothing refills, so exactly the burst gets through.
    monkeypatch.setattr(stack.gateway, "clock", lambda: 0.0)
    stack.gateway.forget_throttles()
    statuses = [call(stack, "GET", "/jobs").status_code for _ in range(25)]

    assert statuses == [200] * 20 + [429] * 5
    assert call(stack, "GET", "/jobs").json()["error"] == "throttled"
    # Another tenant's key has its own allowance.
    assert call(stack, "GET", "/jobs", KEY_B).status_code == 200


def log_lines_since(stack, offset: int) -> list[dict]:
    """The functions' log lines written after `offset` bytes of the log (no metrics, no
    platform reports)."""
    with stack.runtime.log_path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode()
    parsed = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in parsed if "level" in line]


@pytest.mark.parametrize("start_path", ["eventbridge", "minio-webhook"])
def test_the_request_id_of_an_upload_request_follows_its_job_through_every_stage(
    stack, sample, start_path
):
    request_id = "client-7:upload.1_a"
    log_offset = stack.runtime.log_path.stat().st_size
    photo = sample.path("zidane").read_bytes()

    created = requests.post(
        f"{stack.api_url}/uploads",
        headers={"x-api-key": KEY_A, "X-Request-ID": request_id},
        json={"content_type": "image/jpeg", "filename": "zidane.jpg"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert created.headers["X-Request-ID"] == request_id
    job_id = created.json()["job"]["job_id"]
    assert records.DYNAMODB_RECORDS.find(job_id).request_id == request_id
    if start_path == "minio-webhook":
        announce_uploads(stack, s3_notification=False, eventbridge=False)
    assert post_file(created.json()["upload"], photo).status_code == 204
    if start_path == "minio-webhook":
        event = minio_event(stack.outputs["PhotoBucketName"], keys.upload(job_id), len(photo))
        webhook = post_minio_event(stack, event)
        assert webhook.status_code == 200, webhook.text
        assert webhook.headers["X-Request-ID"] != request_id  # the webhook request's own
    assert poll_until_finished(stack, job_id)["status"] == "COMPLETED"

    execution = job_execution(stack, job_id)
    started = stack.client("stepfunctions").describe_execution(executionArn=execution)
    assert json.loads(started["input"])["request_id"] == request_id
    logs = log_lines_since(stack, log_offset)
    tagged = [line for line in logs if line.get("request_id") == request_id]
    [job_created] = [line for line in tagged if line["message"] == "job created"]
    [job_started] = [line for line in tagged if line["message"] == "job started"]
    assert job_created["job_id"] == job_started["job_id"] == job_id
    job_lines = [line for line in logs if line.get("correlation_id") == job_id]
    stage_lines = [line for line in job_lines if "stage" in line]
    analysed = {spec.stage.value for spec in PIPELINE if spec.wanted(JobOptions())}
    assert {line["stage"] for line in stage_lines} == analysed
    assert all(line.get("request_id") == request_id for line in stage_lines), stage_lines
    # Nothing but the job and the request that created it is tagged with this request id.
    assert all(
        line.get("correlation_id") == job_id or line in (job_created, job_started)
        for line in tagged
    )
