"""The AWS calls the functions really make are the ones tests/integration/aws_calls.py lists,
and each function's role in template.yaml allows them.

Every Lambda worker of the embedded stack records its calls (silhouette.local.aws_calls) while
the service does what it does: a job that completes and one that is rejected, the API's reads,
DELETE, health and OpenAPI routes, a MinIO webhook event, an upload without a job (the starter
erases it), and the sweeper recording a stopped execution FAILED, expiring a job whose photo
never came and erasing jobs whose retention ended."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from silhouette.assets import Manifest
from silhouette.local.aws_calls import CALL_LOG_VARIABLE
from silhouette.local.stack import EmbeddedStack
from silhouette.local.template import ACCOUNT_ID
from silhouette.service import jobs, keys
from silhouette.settings import get_settings
from tests.conftest import ADMIN_KEY, API_KEYS, MINIO_WEBHOOK_TOKEN, ROLE_KEYS, TAILOR_KEY
from tests.e2e.helpers import execution_ended_event, job_execution, webhook_receiver
from tests.e2e.test_api import call, poll_until_finished, post_file, request_upload
from tests.e2e.test_start_paths import minio_event, post_minio_event
from tests.integration import iam
from tests.integration.aws_calls import (
    API_KEY_ID,
    CALLS,
    JOB,
    REGION,
    STACK_NAME,
    TEMPLATE,
)
from tests.integration.iam import AwsCall

pytestmark = pytest.mark.e2e

SWEEPER = "SweeperFunction"
JOB_ID = re.compile(r"\b[0-9a-f]{32}\b")
FUNCTIONS = {
    TEMPLATE.physical_name(logical_id): logical_id
    for logical_id in TEMPLATE.resources("AWS::Serverless::Function")
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, sample: Manifest) -> list[dict[str, Any]]:
    """The calls every function made while the service ran, one dict per call."""
    directory = tmp_path_factory.mktemp("aws-calls")
    call_log = directory / "aws-calls.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CALL_LOG_VARIABLE, str(call_log))  # set before the workers start
        with EmbeddedStack(
            log_path=directory / "lambda.log",
            stack_name=STACK_NAME,
            region=REGION,
            api_keys={**API_KEYS, **ROLE_KEYS},
            parameters={
                "MinioWebhookToken": MINIO_WEBHOOK_TOKEN,
                "FetchFromLoopback": "true",  # the batch webhook below is on 127.0.0.1
                "BatchWebhookLingerSeconds": "1",
            },
        ) as stack:
            _run_the_service(stack, sample.path("astronaut"))
    return [json.loads(line) for line in call_log.read_text().splitlines()]


def _run_the_service(stack: EmbeddedStack, photo: Path) -> None:
    completed = _analyse(stack, photo.read_bytes(), "COMPLETED")
    rejected = _analyse(stack, b"not a photo", "REJECTED")
    _adjust_measurements(stack, _capture(stack, photo.read_bytes()))
    for path in ("/jobs", f"/jobs/{completed}", f"/jobs/{completed}/result", "/health"):
        assert call(stack, "GET", path).status_code == 200, path
    assert call(stack, "GET", "/openapi.json", key=None).status_code == 200
    bucket = stack.outputs["PhotoBucketName"]
    announced_again = post_minio_event(stack, minio_event(bucket, keys.upload(rejected), 11))
    assert announced_again.status_code == 200, announced_again.text
    assert call(stack, "DELETE", f"/jobs/{completed}").status_code == 204
    _upload_without_a_job(stack, bucket)
    _stop_mid_job(stack, photo.read_bytes())
    request_upload(stack)  # and never upload the photo
    now = datetime.now(UTC)
    assert stack.run_scheduled(SWEEPER, now + timedelta(hours=1)) == {"expired": 1}
    retention_ended = now + timedelta(days=get_settings().retention_days + 1)
    erased = stack.run_scheduled(SWEEPER, retention_ended)
    # The rejected, the capture, the stopped and the expired job.
    assert erased.get("erased") == 4, erased
    _run_batches(stack, photo.read_bytes())
    _export_and_erase_the_tenant(stack)


def _run_batches(stack: EmbeddedStack, photo: bytes) -> None:
    """A ZIP batch (a photo and a text file), a CSV batch whose one URL may not be fetched and
    a photos batch, through the API, with their progress and report."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("photo.png", photo)
        zipped.writestr("notes.txt", b"not a photo")
    sources = {
        "zip": (archive.getvalue(), "application/zip"),
        "csv": (b"id,image_url\np1,http://10.0.0.9/photo.jpg\n", "text/csv"),
    }
    fast = {"quality": "fast", "face": False}
    for source, (data, content_type) in sources.items():
        created = call(stack, "POST", "/batches", json={"source": source, "options": fast}).json()
        assert post_file(created["upload"], data, content_type).status_code == 204
        batch_id = created["batch"]["batch_id"]
        _wait_for_batch(stack, batch_id)
        assert call(stack, "GET", f"/batches/{batch_id}/report").status_code == 200
    # A photos batch of one (its arrival starts it), with a webhook: made, called, removed.
    with webhook_receiver() as receiver:
        body = {
            "source": "photos",
            "photos": [{"content_type": "image/png"}],
            "options": fast,
            "webhook_url": receiver.url,
        }
        created = call(stack, "POST", "/batches", json=body).json()
        assert post_file(created["photos"][0]["upload"], photo, "image/png").status_code == 204
        _wait_for_batch(stack, created["batch"]["batch_id"])
        stack.wait_for_executions()  # the webhook's removal, after its (short) linger
        assert len(receiver.requests) == 1


def _wait_for_batch(stack: EmbeddedStack, batch_id: str) -> None:
    deadline = time.monotonic() + 120
    while call(stack, "GET", f"/batches/{batch_id}").json()["status"] != "COMPLETED":
        assert time.monotonic() < deadline, f"batch {batch_id} did not complete"
        time.sleep(0.5)


def _analyse(stack: EmbeddedStack, photo: bytes, outcome: str) -> str:
    created = request_upload(stack, content_type="image/png", filename="photo.png")
    assert post_file(created["upload"], photo, "image/png").status_code == 204
    job_id = created["job"]["job_id"]
    # Every function starts cold here, model stages included.
    assert poll_until_finished(stack, job_id, timeout=600)["status"] == outcome
    return job_id


def _capture(stack: EmbeddedStack, photo: bytes) -> str:
    """A capture of every view (the same photo each time), measured from a stated height."""
    views = {view: {"content_type": "image/png"} for view in ("front", "side", "portrait", "card")}
    body = {"views": views, "options": {"height_cm": 170}}
    created = call(stack, "POST", "/uploads", json=body).json()
    for form in created["views"].values():
        assert post_file(form, photo, "image/png").status_code == 204
    job_id = created["job"]["job_id"]
    assert poll_until_finished(stack, job_id, timeout=600)["status"] == "COMPLETED"
    return job_id


def _adjust_measurements(stack: EmbeddedStack, job_id: str) -> None:
    """An adjustment, a tailor's approval, the history and the sheets of the adjusted version."""
    path = f"/jobs/{job_id}/measurements"
    adjustment = {"values": {"hip_width": 35.0}, "source": "tape measure"}
    assert call(stack, "PATCH", path, json=adjustment).status_code == 200
    approval = call(stack, "POST", f"{path}/approval", key=TAILOR_KEY, json={"version": 1})
    assert approval.status_code == 200, approval.text
    for read in (f"{path}/history", f"{path}.csv", f"{path}.pdf"):
        assert call(stack, "GET", read).status_code == 200, read


def _export_and_erase_the_tenant(stack: EmbeddedStack) -> None:
    """An admin reads the audit log, exports the tenant's data and erases it."""
    assert call(stack, "GET", "/tenant/audit", key=ADMIN_KEY).status_code == 200
    deadline = time.monotonic() + 120
    while call(stack, "GET", "/tenant/export", key=ADMIN_KEY).status_code != 200:
        assert time.monotonic() < deadline, "the export never finished"
        time.sleep(0.5)
    assert call(stack, "DELETE", "/tenant/data", key=ADMIN_KEY).status_code == 202
    assert stack.runtime.wait_until_idle(120)
    assert call(stack, "GET", "/jobs").json()["jobs"] == []  # erased


def _stop_mid_job(stack: EmbeddedStack, photo: bytes) -> None:
    """An execution stopped while a stage runs: the sweeper, told by the execution's status
    change event, records the job FAILED through finalize."""
    created = request_upload(stack, content_type="image/png", filename="photo.png")
    assert post_file(created["upload"], photo, "image/png").status_code == 204
    job_id = created["job"]["job_id"]
    deadline = time.monotonic() + 120
    while call(stack, "GET", f"/jobs/{job_id}").json()["status"] != "PROCESSING":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    execution = job_execution(stack, job_id)
    stack.client("stepfunctions").stop_execution(executionArn=execution)
    # The stage runs on after the stop; the sweeper runs one at a time (reserved concurrency).
    assert stack.runtime.wait_until_idle(120)
    stack.wait_for_executions()
    ended = execution_ended_event(execution, job_id, REGION, "ABORTED")
    answer = stack.client("lambda").invoke(
        FunctionName=stack.function_name(SWEEPER), Payload=json.dumps(ended)
    )
    assert json.loads(answer["Payload"].read()) == {"failed": 1}
    stack.wait_for_executions()


def _upload_without_a_job(stack: EmbeddedStack, bucket: str) -> None:
    s3, key = stack.client("s3"), keys.upload(jobs.new_job_id())
    s3.put_object(Bucket=bucket, Key=key, Body=b"a photo nobody asked for")
    stack.wait_for_executions()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key), "not erased"


# Recorded calls as IAM authorises them ----------------------------------------------------


def _as_iam(recorded_call: dict[str, Any]) -> list[AwsCall]:
    """The requests IAM authorises for one recorded call, with job ids and API key ids
    replaced by the table's examples."""
    service, operation = recorded_call["service"], recorded_call["operation"]
    params = recorded_call["params"]
    convert = _CONVERTERS.get(service)
    # A service no function should call: listed nowhere, so the tests name it.
    calls = convert(operation, params) if convert else [AwsCall(f"{service}:{operation}", "?")]
    return [
        AwsCall(call.action, _example(call.resource), call.s3_prefix and _example(call.s3_prefix))
        for call in calls
    ]


def _example(text: str) -> str:
    return re.sub(r"/apikeys/[^/]+$", f"/apikeys/{API_KEY_ID}", JOB_ID.sub(JOB, text))


def _s3(operation: str, params: dict[str, Any]) -> list[AwsCall]:
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    if operation == "HeadBucket":
        return [AwsCall("s3:ListBucket", bucket)]
    if operation in ("ListObjects", "ListObjectsV2"):
        return [AwsCall("s3:ListBucket", bucket, params.get("Prefix"))]
    if operation == "DeleteObjects":
        return [AwsCall("s3:DeleteObject", f"{bucket}/{key}") for key in params["Keys"]]
    if operation == "HeadObject":
        # Authorised as GetObject; a missing key answers 404 (not 403) only with ListBucket.
        return [
            AwsCall("s3:GetObject", f"{bucket}/{params['Key']}"),
            AwsCall("s3:ListBucket", bucket),
        ]
    return [AwsCall(f"s3:{operation}", f"{bucket}/{params['Key']}")]


def _dynamodb(operation: str, params: dict[str, Any]) -> list[AwsCall]:
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{params['TableName']}"
    index = params.get("IndexName")
    return [AwsCall(f"dynamodb:{operation}", f"{table}/index/{index}" if index else table)]


def _states(operation: str, params: dict[str, Any]) -> list[AwsCall]:
    arn = params.get("executionArn") or params["stateMachineArn"]
    return [AwsCall(f"states:{operation}", arn)]


def _events(operation: str, params: dict[str, Any]) -> list[AwsCall]:
    events = f"arn:aws:events:{REGION}:{ACCOUNT_ID}"
    action = f"events:{operation}"
    if operation == "PutEvents":
        return [
            AwsCall(action, bus if bus.startswith("arn:") else f"{events}:event-bus/{bus}")
            for bus in params["EventBusNames"]
        ]
    if "Connection" in operation:
        return [AwsCall(action, f"{events}:connection/{params['Name']}")]
    if "ApiDestination" in operation:
        return [AwsCall(action, f"{events}:api-destination/{params['Name']}")]
    # A rule's calls (PutRule, PutTargets, RemoveTargets, DeleteRule), on its bus; a target's
    # role is passed to EventBridge.
    rule = f"{events}:rule/{params['EventBusName']}/{params.get('Rule') or params['Name']}"
    roles = [target["RoleArn"] for target in params.get("Targets", []) if "RoleArn" in target]
    return [AwsCall(action, rule), *(AwsCall("iam:PassRole", role) for role in roles)]


def _apigateway(operation: str, params: dict[str, Any]) -> list[AwsCall]:
    # API Gateway's management API is authorised by HTTP method and path.
    assert operation == "GetApiKey", operation
    return [AwsCall("apigateway:GET", f"arn:aws:apigateway:{REGION}::/apikeys/{params['apiKey']}")]


def _lambda(operation: str, params: dict[str, Any]) -> list[AwsCall]:
    name = params["FunctionName"]
    arn = (
        name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    )
    return [
        AwsCall("lambda:InvokeFunction" if operation == "Invoke" else f"lambda:{operation}", arn)
    ]


_CONVERTERS = {
    "s3": _s3,
    "dynamodb": _dynamodb,
    "states": _states,
    "events": _events,
    "apigateway": _apigateway,
    "lambda": _lambda,
}


def _by_function(recorded: list[dict[str, Any]]) -> dict[str, set[AwsCall]]:
    calls: dict[str, set[AwsCall]] = {}
    for line in recorded:
        logical_id = FUNCTIONS[line["function"]]
        calls.setdefault(logical_id, set()).update(_as_iam(line))
    return calls


# Tests ------------------------------------------------------------------------------------


def test_every_function_made_calls_and_each_was_recorded(recorded):
    silent = sorted(set(FUNCTIONS.values()) - set(_by_function(recorded)))

    assert not silent, f"no calls recorded for {silent}"


def test_every_call_is_listed_in_the_table(recorded):
    unlisted = {
        logical_id: sorted(calls - set(CALLS.get(logical_id, [])), key=str)
        for logical_id, calls in _by_function(recorded).items()
    }

    assert not any(unlisted.values()), f"add to tests/integration/aws_calls.py: {unlisted}"


def test_every_call_is_allowed_by_the_function_s_role(recorded):
    roles = iam.roles(TEMPLATE)
    refused = {
        logical_id: sorted((c for c in calls if not roles[logical_id].allows(c)), key=str)
        for logical_id, calls in _by_function(recorded).items()
    }

    assert not any(refused.values()), f"template.yaml's roles refuse {refused}"
