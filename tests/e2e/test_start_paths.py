"""Every way an upload can announce itself starts the same state machine, once per upload:
the S3 notification to the starter function, S3 -> EventBridge "Object Created", and MinIO's
webhook (S3-format records, shared token) on the API."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import requests

from silhouette.service import keys
from tests.conftest import MINIO_WEBHOOK_TOKEN
from tests.e2e.helpers import received_events, subscribe_to_job_events, upload, wait_until_finished

pytestmark = pytest.mark.e2e


def minio_event(bucket: str, key: str, size: int) -> dict:
    """A MinIO bucket notification as its webhook target posts it (keys URL-encoded)."""
    encoded = quote(key, safe="")
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "eventName": "s3:ObjectCreated:Put",
                "userIdentity": {"principalId": "minioadmin"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "17A1B2C3D4E5F607"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "Config",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "minioadmin"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": encoded,
                        "size": size,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                        "contentType": "image/jpeg",
                        "userMetadata": {"content-type": "image/jpeg"},
                        "sequencer": "17A1B2C3D4E5F607",
                    },
                },
                "source": {"host": "127.0.0.1", "port": "", "userAgent": "MinIO (linux; amd64)"},
            }
        ],
    }


def post_minio_event(stack, event: dict, token: str | None = MINIO_WEBHOOK_TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{stack.api_url}/webhooks/minio", json=event, headers=headers, timeout=30)


def executions(stack) -> list[dict]:
    machine = stack.outputs["PipelineStateMachineArn"]
    return stack.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]


def announce_uploads(stack, s3_notification: bool, eventbridge: bool) -> None:
    """Set which AWS notifications the bucket sends for uploads: S3 -> starter Lambda, S3 ->
    EventBridge (the template's wiring), both, or none (like a MinIO bucket with a webhook)."""
    configuration: dict = {"EventBridgeConfiguration": {}} if eventbridge else {}
    if s3_notification:
        starter = stack.client("lambda").get_function(
            FunctionName=stack.function_name("UploadStarterFunction")
        )["Configuration"]["FunctionArn"]
        configuration["LambdaFunctionConfigurations"] = [
            {
                "LambdaFunctionArn": starter,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
            }
        ]
    stack.client("s3").put_bucket_notification_configuration(
        Bucket=stack.outputs["PhotoBucketName"], NotificationConfiguration=configuration
    )


def test_one_execution_and_one_event_however_often_the_upload_is_announced(stack, sample):
    announce_uploads(stack, s3_notification=True, eventbridge=True)
    queue = subscribe_to_job_events(stack)
    photo = sample.path("zidane").read_bytes()

    job_id = upload(photo)  # announced by S3 -> Lambda and S3 -> EventBridge
    for _ in range(2):  # and twice more by a MinIO webhook
        event = minio_event(stack.outputs["PhotoBucketName"], keys.upload(job_id), len(photo))
        response = post_minio_event(stack, event)
        assert response.status_code == 200, response.text
    job = wait_until_finished(stack, job_id)

    assert job.status == "COMPLETED"
    assert [execution["name"] for execution in executions(stack)] == [job_id]
    events = []
    while batch := received_events(stack, queue):
        events += batch
    assert [event["detail"]["job_id"] for event in events] == [job_id]


@pytest.mark.parametrize("path", ["s3-notification", "eventbridge", "minio-webhook"])
def test_each_start_path_alone_starts_the_pipeline(stack, sample, path):
    bucket = stack.outputs["PhotoBucketName"]
    announce_uploads(stack, path == "s3-notification", path == "eventbridge")
    photo = sample.path("zidane").read_bytes()

    job_id = upload(photo)
    if path == "minio-webhook":
        stack.wait_for_executions()
        assert executions(stack) == []  # nothing else announced the upload
        response = post_minio_event(stack, minio_event(bucket, keys.upload(job_id), len(photo)))
        assert response.status_code == 200 and response.json() == {"started": 1, "skipped": 0}

    assert wait_until_finished(stack, job_id).status == "COMPLETED"
    assert [execution["name"] for execution in executions(stack)] == [job_id]


@pytest.mark.parametrize("token", [None, "wrong-token", f"{MINIO_WEBHOOK_TOKEN}x"])
def test_the_minio_webhook_refuses_events_without_the_shared_token(stack, sample, token):
    bucket = stack.outputs["PhotoBucketName"]
    announce_uploads(stack, s3_notification=False, eventbridge=False)
    job_id = upload(sample.path("zidane").read_bytes())

    response = post_minio_event(stack, minio_event(bucket, keys.upload(job_id), 1), token)

    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    stack.wait_for_executions()
    assert executions(stack) == []


def test_the_minio_webhook_ignores_other_buckets_and_refuses_other_payloads(stack):
    job_id = "0123456789abcdef0123456789abcdef"
    foreign = post_minio_event(stack, minio_event("someone-elses-bucket", keys.upload(job_id), 1))
    assert foreign.status_code == 200 and foreign.json() == {"started": 0, "skipped": 1}

    garbage = post_minio_event(stack, {"hello": "world"})
    assert garbage.status_code == 400 and garbage.json()["error"] == "invalid_request"
    assert executions(stack) == []
