"""Presigned uploads and downloads are signed with SigV4 (S3 refuses SigV2 for buckets created
after 2020-06-24), and the upload policy fixes the bucket, the key, the content type and the
size, for a short while. The policy checks of the embedded stack accept exactly these forms."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from botocore.config import Config

from silhouette.local.s3_post_policy import Refusal, check_post_upload, check_presigned_url
from silhouette.schema import JobOptions, JobResult, JobStatus
from silhouette.service import jobs, keys
from silhouette.service.records import JobRecord
from silhouette.settings import get_settings

ACCESS_KEY, SECRET_KEY = "unit-tests", "unit-tests-secret"
SECRET_KEYS = {ACCESS_KEY: SECRET_KEY}
CREDENTIAL = re.compile(rf"^{ACCESS_KEY}/\d{{8}}/us-east-1/s3/aws4_request$")
SIGV2_NAMES = {"awsaccesskeyid", "signature"}


@pytest.fixture
def settings(monkeypatch):
    """No service is called: presigning needs credentials only, and records are not saved."""
    monkeypatch.setenv("SILHOUETTE_BUCKET", "photos")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(JobRecord, "save", lambda record, condition=None: None)
    # boto3's default session keeps the credentials it first found: a session of its own here,
    # dropped afterwards, so that neither these tests nor later ones sign with another's keys.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def decoded_policy(fields: dict[str, str]) -> dict:
    return json.loads(base64.b64decode(fields["policy"]))


def test_the_upload_form_is_signed_with_sigv4(settings):
    job, form = jobs.create_upload("acme", "a.png", "image/png", JobOptions())

    fields = form.fields
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert CREDENTIAL.match(fields["x-amz-credential"])
    assert re.fullmatch(r"\d{8}T\d{6}Z", fields["x-amz-date"])
    assert re.fullmatch(r"[0-9a-f]{64}", fields["x-amz-signature"])
    assert not SIGV2_NAMES & {name.lower() for name in fields}
    assert fields["key"] == keys.upload(job.job_id)
    assert urlsplit(form.url).path == "/photos"  # path-style addressing


def test_the_upload_policy_fixes_bucket_key_type_and_size_for_a_short_while(settings):
    before = datetime.now(UTC).replace(microsecond=0)  # the policy's expiry has whole seconds
    job, form = jobs.create_upload("acme", "a.png", "image/png", JobOptions())
    after = datetime.now(UTC)

    policy = decoded_policy(form.fields)
    conditions = policy["conditions"]
    assert {"bucket": "photos"} in conditions
    assert {"key": keys.upload(job.job_id)} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 0, settings.max_upload_bytes] in conditions
    lifetime = timedelta(seconds=settings.upload_url_expiry_seconds)
    expiration = datetime.fromisoformat(policy["expiration"])
    assert before + lifetime <= expiration <= after + lifetime
    assert abs(form.expires_at - expiration) < timedelta(seconds=2)


def test_the_embedded_stack_accepts_the_form_as_s3_would(settings):
    _, form = jobs.create_upload("acme", "a.png", "image/png", JobOptions())

    check_post_upload(form.fields, 1000, "photos", SECRET_KEYS, datetime.now(UTC))
    with pytest.raises(Refusal, match="SignatureDoesNotMatch"):
        check_post_upload(form.fields, 1000, "photos", {ACCESS_KEY: "other"}, datetime.now(UTC))
    with pytest.raises(Refusal, match="Condition failed"):
        check_post_upload(form.fields, 1000, "other-bucket", SECRET_KEYS, datetime.now(UTC))


def download_links(settings) -> dict[str, jobs.DownloadLink]:
    now = datetime.now(UTC)
    job = JobResult(
        job_id="0" * 32,
        tenant="acme",
        status=JobStatus.COMPLETED,
        filename="holiday photo.jpg",
        created_at=now,
        updated_at=now,
        artifacts={"cutout": keys.artifact("0" * 32, "cutout", "png")},
    )
    return jobs.downloads(job)


def test_download_links_are_signed_with_sigv4(settings):
    link = download_links(settings)["cutout"]

    url = urlsplit(link.url)
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert url.path == f"/photos/{keys.artifact('0' * 32, 'cutout', 'png')}"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert CREDENTIAL.match(query["X-Amz-Credential"])
    assert query["X-Amz-Expires"] == str(settings.download_url_expiry_seconds)
    assert query["X-Amz-SignedHeaders"] == "host"
    assert query["response-content-disposition"] == (
        'attachment; filename="holiday_photo-cutout.png"'
    )
    assert not {"AWSAccessKeyId", "Signature"} & query.keys()


def test_the_embedded_stack_accepts_the_download_link_until_it_expires(settings):
    url = urlsplit(download_links(settings)["cutout"].url)
    # What the server reads from a client's GET of the link: path, decoded query, host header.
    query = [
        (unquote(name), unquote(value))
        for name, _, value in (pair.partition("=") for pair in url.query.split("&"))
    ]
    sent = (url.path, query, {"host": url.netloc})

    check_presigned_url("GET", *sent, SECRET_KEYS, datetime.now(UTC))
    lifetime = timedelta(seconds=settings.download_url_expiry_seconds)
    with pytest.raises(Refusal, match="Request has expired"):
        check_presigned_url("GET", *sent, SECRET_KEYS, datetime.now(UTC) + lifetime * 2)
    with pytest.raises(Refusal, match="SignatureDoesNotMatch"):  # signed for GET only
        check_presigned_url("PUT", *sent, SECRET_KEYS, datetime.now(UTC))


# The policy conditions S3 knows, beyond those the upload form uses ---------------------------


def signed_form(conditions: list, fields: dict[str, str]) -> dict[str, str]:
    """A form signed with the unit tests' key pair, as boto3 makes it."""
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4"),
    )
    post = client.generate_presigned_post(
        Bucket="photos", Key="uploads/x", Fields=fields, Conditions=conditions, ExpiresIn=60
    )
    return post["fields"]


def test_starts_with_and_ignored_fields():
    form = signed_form([["starts-with", "$Content-Type", "image/"]], {"Content-Type": "image/gif"})

    check_post_upload({**form, "x-ignore-note": "hi"}, 1, "photos", SECRET_KEYS, datetime.now(UTC))
    with pytest.raises(Refusal, match='"starts-with", "\\$Content-Type", "image/"'):
        check_post_upload(
            {**form, "Content-Type": "text/html"}, 1, "photos", SECRET_KEYS, datetime.now(UTC)
        )


def test_a_file_below_the_length_range_is_too_small():
    form = signed_form([["content-length-range", 10, 20]], {})

    with pytest.raises(Refusal) as refused:
        check_post_upload(form, 9, "photos", SECRET_KEYS, datetime.now(UTC))

    assert (refused.value.status, refused.value.code) == (400, "EntityTooSmall")
