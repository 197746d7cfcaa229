"""The embedded stack authorizes presigned requests as S3 does (moto alone would store or serve
anything): an upload form is honoured only as its signed policy allows, before it expires, and
a download link only for its object, before it expires. A refused upload stores nothing and
starts nothing."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

import boto3
import pytest
import requests
from botocore.config import Config

from silhouette.schema import JobOptions, JobResult, JobStatus
from silhouette.service import jobs, keys, transfers
from silhouette.settings import get_settings
from tests.e2e.helpers import TENANT, wait_until_finished

PHOTO = b"not really a photo"  # ingest rejects it at once: enough to see the job start
OTHER_PHOTO = b"another job's photo"


def create_upload(monkeypatch: pytest.MonkeyPatch | None = None, **settings) -> jobs.UploadForm:
    """A job's upload form, made with `settings` overridden (e.g. a smaller size limit)."""
    if monkeypatch is not None:
        changed = get_settings().model_copy(update=settings)
        for module in (jobs, transfers):  # the job's limits, the form's expiry
            monkeypatch.setattr(module, "get_settings", lambda: changed)
    return jobs.create_upload(TENANT, "photo.jpg", "image/jpeg", JobOptions())


def post(form: jobs.UploadForm, fields: dict[str, str], data: bytes = PHOTO) -> requests.Response:
    """As a browser posts the form: its fields, then the file."""
    return requests.post(
        form.url, data=fields, files={"file": ("photo.jpg", data, "image/jpeg")}, timeout=30
    )


def refusal(response: requests.Response, status: int, code: str) -> str:
    """The message of S3's XML error, after checking its status and code."""
    assert response.status_code == status, response.text
    error = ElementTree.fromstring(response.content)
    assert error.findtext("Code") == code, response.text
    return error.findtext("Message") or ""


def uploads(stack) -> dict[str, bytes]:
    s3, bucket = stack.client("s3"), stack.outputs["PhotoBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=keys.UPLOAD_PREFIX).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed
    }


def executions(stack) -> list[dict]:
    machine = stack.outputs["PipelineStateMachineArn"]
    return stack.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]


def assert_nothing_stored_or_started(stack) -> None:
    stack.wait_for_executions()
    assert uploads(stack) == {}
    assert executions(stack) == []


def with_policy(fields: dict[str, str], change) -> dict[str, str]:
    """The form with its policy document changed by `change` (and its signature kept)."""
    policy = json.loads(base64.b64decode(fields["policy"]))
    change(policy)
    return {**fields, "policy": base64.b64encode(json.dumps(policy).encode()).decode()}


# Uploads -------------------------------------------------------------------------------------


def test_a_valid_form_uploads_and_starts_the_job(stack):
    job, form = create_upload()

    assert post(form, form.fields).status_code == 204

    assert uploads(stack) == {keys.upload(job.job_id): PHOTO}
    assert wait_until_finished(stack, job.job_id).status == JobStatus.REJECTED  # it ran


def test_a_form_whose_key_names_another_jobs_upload_is_refused(stack):
    _, form = create_upload()
    other, other_form = create_upload()
    assert post(other_form, other_form.fields, OTHER_PHOTO).status_code == 204
    stack.wait_for_executions()

    tampered = {**form.fields, "key": keys.upload(other.job_id)}
    message = refusal(post(form, tampered, b"overwritten"), 403, "AccessDenied")

    assert message == (
        "Invalid according to Policy: Policy Condition failed: "
        f'["eq", "$key", "{form.fields["key"]}"]'
    )
    assert uploads(stack) == {keys.upload(other.job_id): OTHER_PHOTO}


def test_a_content_type_other_than_the_signed_one_is_refused(stack):
    _, form = create_upload()

    response = post(form, {**form.fields, "Content-Type": "text/html"})

    message = refusal(response, 403, "AccessDenied")
    assert message.endswith('["eq", "$Content-Type", "image/jpeg"]')
    assert_nothing_stored_or_started(stack)


def test_a_file_over_the_size_limit_is_refused(stack, monkeypatch):
    _, form = create_upload(monkeypatch, max_upload_bytes=len(PHOTO) - 1)

    response = post(form, form.fields)

    refusal(response, 400, "EntityTooLarge")
    error = ElementTree.fromstring(response.content)
    assert error.findtext("MaxSizeAllowed") == str(len(PHOTO) - 1)
    assert_nothing_stored_or_started(stack)


def test_an_expired_form_is_refused(stack, monkeypatch):
    _, form = create_upload(monkeypatch, upload_url_expiry_seconds=-60)  # expired a minute ago

    response = post(form, form.fields)

    assert refusal(response, 403, "AccessDenied") == "Invalid according to Policy: Policy expired."
    assert_nothing_stored_or_started(stack)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda fields: {**fields, "x-amz-signature": "0" * 64}, id="signature"),
        pytest.param(  # a client widening its own size limit
            lambda fields: with_policy(
                fields, lambda policy: policy["conditions"].append(["content-length-range", 0, 1])
            ),
            id="policy",
        ),
    ],
)
def test_a_form_whose_signature_does_not_match_is_refused(stack, forge):
    _, form = create_upload()

    refusal(post(form, forge(form.fields)), 403, "SignatureDoesNotMatch")

    assert_nothing_stored_or_started(stack)


def test_a_field_no_condition_covers_is_refused(stack):
    _, form = create_upload()

    response = post(form, {**form.fields, "acl": "public-read"})

    assert refusal(response, 403, "AccessDenied") == (
        "Invalid according to Policy: Extra input fields: acl"
    )
    assert_nothing_stored_or_started(stack)


def test_a_sigv2_form_is_refused(stack):
    sigv2 = boto3.client(
        "s3", endpoint_url=stack.endpoint_url, config=Config(signature_version="s3")
    )
    key = keys.upload("0" * 32)
    form = sigv2.generate_presigned_post(Bucket=get_settings().bucket, Key=key)

    response = requests.post(
        form["url"], data=form["fields"], files={"file": ("photo.jpg", PHOTO)}, timeout=30
    )

    refusal(response, 400, "InvalidRequest")
    assert_nothing_stored_or_started(stack)


# Downloads -----------------------------------------------------------------------------------


def download_url(stack, monkeypatch: pytest.MonkeyPatch | None = None, **settings) -> str:
    """A presigned GET of a stored artifact, made with `settings` overridden."""
    if monkeypatch is not None:
        changed = get_settings().model_copy(update=settings)
        monkeypatch.setattr(transfers, "get_settings", lambda: changed)
    key = keys.artifact("0" * 32, "cutout", "png")
    stack.client("s3").put_object(Bucket=get_settings().bucket, Key=key, Body=b"cutout")
    now = datetime.now(UTC)
    job = JobResult(
        job_id="0" * 32,
        tenant=TENANT,
        status=JobStatus.COMPLETED,
        created_at=now,
        updated_at=now,
        artifacts={"cutout": key},
    )
    return jobs.downloads(job)["cutout"].url


def test_a_download_link_serves_its_object(stack):
    response = requests.get(download_url(stack), timeout=30)

    assert response.status_code == 200 and response.content == b"cutout"
    assert response.headers["Content-Disposition"].startswith("attachment;")


def test_an_expired_download_link_is_refused(stack, monkeypatch):
    url = download_url(stack, monkeypatch, download_url_expiry_seconds=1)
    time.sleep(2)  # X-Amz-Date has whole seconds

    message = refusal(requests.get(url, timeout=30), 403, "AccessDenied")

    assert message == "Request has expired"


def test_a_download_link_opens_only_its_own_object(stack):
    url = urlsplit(download_url(stack))
    stack.client("s3").put_object(Bucket=get_settings().bucket, Key="results/x", Body=b"secret")
    other_object = url._replace(path=f"/{get_settings().bucket}/results/x")

    response = requests.get(urlunsplit(other_object), timeout=30)

    refusal(response, 403, "SignatureDoesNotMatch")


def test_a_sigv2_download_link_is_refused(stack):
    sigv2 = boto3.client(
        "s3", endpoint_url=stack.endpoint_url, config=Config(signature_version="s3")
    )
    url = sigv2.generate_presigned_url(
        "get_object", Params={"Bucket": get_settings().bucket, "Key": "results/x"}
    )

    refusal(requests.get(url, timeout=30), 400, "InvalidRequest")
