"""The starter understands every object-created event format it can receive."""

from __future__ import annotations

import pytest

from silhouette.errors import PermanentError
from silhouette.service import keys
from silhouette.service.starter import start_job
from silhouette.service.uploads import uploaded_objects
from silhouette.settings import get_settings

JOB = "0123456789abcdef0123456789abcdef"


def s3_record(key: str, event_name: str = "ObjectCreated:Post", source: str = "aws:s3") -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": source,
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:00:00.000Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "c",
            "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"},
            "object": {"key": key, "size": 1234, "eTag": "abc", "sequencer": "1"},
        },
    }


def test_s3_notification_records_with_url_encoded_keys():
    event = {"Records": [s3_record(f"uploads/{JOB}/original"), s3_record("uploads/a+b%2Fc")]}
    objects = uploaded_objects(event)
    assert [(o.bucket, o.key, o.size) for o in objects] == [
        ("photos", f"uploads/{JOB}/original", 1234),
        ("photos", "uploads/a b/c", 1234),
    ]


def test_minio_webhook_records_use_the_s3_format():
    event = {
        "EventName": "s3:ObjectCreated:Put",
        "Records": [s3_record(f"uploads/{JOB}/original", "s3:ObjectCreated:Put", "minio:s3")],
    }
    assert [o.key for o in uploaded_objects(event)] == [f"uploads/{JOB}/original"]


def test_non_creation_records_are_ignored():
    event = {"Records": [s3_record(f"uploads/{JOB}/original", "ObjectRemoved:Delete")]}
    assert uploaded_objects(event) == []


def test_eventbridge_object_created_event():
    event = {
        "version": "0",
        "id": "1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "1",
        "time": "2026-11-21T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "bucket": {"name": "photos"},
            "object": {"key": f"uploads/{JOB}/original", "size": 9},
        },
    }
    [created] = uploaded_objects(event)
    assert (created.bucket, created.key, created.size) == ("photos", f"uploads/{JOB}/original", 9)


def test_other_events_are_refused():
    with pytest.raises(PermanentError):
        uploaded_objects({"detail-type": "Object Deleted", "detail": {}})


@pytest.mark.parametrize(
    "key", ["results/x/result.json", f"uploads/{JOB}/../../etc", f"uploads/{JOB[:-1]}/original"]
)
def test_objects_outside_the_upload_scheme_start_nothing(key, monkeypatch):
    monkeypatch.setenv("SILHOUETTE_BUCKET", "photos")
    get_settings.cache_clear()

    class NoStepFunctions:
        def start_execution(self, **kwargs):
            raise AssertionError("must not start")

    [upload] = uploaded_objects({"Records": [s3_record(key)]})
    assert keys.job_id_from_upload(key) is None
    assert start_job(upload, NoStepFunctions(), s3=None) is False
    get_settings.cache_clear()
