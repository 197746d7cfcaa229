"""The batch state machine's steps on moto's S3 and DynamoDB (tables as template.yaml declares
them), one call at a time: what a retried step does, what a source refused halfway through
leaves behind, and progress counted from the items' ends."""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from silhouette.errors import TenantBusy
from silhouette.local.template import Template
from silhouette.names import PROJECT_ROOT
from silhouette.schema import JobOptions, JobStatus
from silhouette.service import batches, keys, transfers
from silhouette.service.batch_records import BATCH_RECORDS, TENANT_SLOTS, BatchSource, BatchStatus
from silhouette.service.notifications import MemoryPublisher
from silhouette.service.records import DYNAMODB_RECORDS
from silhouette.settings import get_settings

REGION = "us-east-1"
TENANT = "acme"
BUCKET = "photos"
_stacks = (f"steps-{n}" for n in itertools.count(1))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Fresh tables and bucket; the S3 client the steps are given."""
    name = next(_stacks)
    settings = {"TABLE": f"{name}-jobs", "BATCH_TABLE": f"{name}-batches", "BUCKET": BUCKET}
    for key, value in settings.items():
        monkeypatch.setenv(f"SILHOUETTE_{key}", value)
    monkeypatch.setenv("AWS_REGION", REGION)
    get_settings.cache_clear()
    with mock_aws():
        template = Template(PROJECT_ROOT / "template.yaml", name, REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for logical_id, table in (("JobsTable", "TABLE"), ("BatchesTable", "BATCH_TABLE")):
            properties = template.resolve(template.properties(logical_id))
            wanted = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
            dynamodb.create_table(
                TableName=settings[table], **{k: properties[k] for k in wanted if k in properties}
            )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield s3
    get_settings.cache_clear()


def a_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def uploaded_batch(s3: Any, source: BatchSource, data: bytes) -> str:
    record, _ = batches.create_batch(TENANT, source, JobOptions())
    s3.put_object(Bucket=BUCKET, Key=keys.batch_source(record.batch_id), Body=data)
    return record.batch_id


def items(batch_id: str) -> dict[str, str]:
    return {job.job_id: job.status for job in DYNAMODB_RECORDS.for_batch(batch_id)}


def manifest(s3: Any, batch_id: str) -> list[str]:
    body = s3.get_object(Bucket=BUCKET, Key=keys.batch_manifest(batch_id))["Body"].read()
    return body.decode().split()[1:]


@pytest.fixture
def photos(sample) -> dict[str, bytes]:
    return {
        "a/bus.jpg": sample.path("bus").read_bytes(),
        "a/zidane.jpg": sample.path("zidane").read_bytes(),
        "a/notes.txt": b"not a photo",
        "a/cat.png": sample.path("chelsea").read_bytes(),
    }


def test_expand_run_again_makes_no_second_job_and_no_second_rejection(aws, photos):
    batch_id = uploaded_batch(aws, BatchSource.ZIP, a_zip(photos))
    publisher = MemoryPublisher()

    first = batches.expand(batch_id, aws, publisher=publisher)
    jobs_after_first = items(batch_id)
    again = batches.expand(batch_id, aws, publisher=publisher)

    assert items(batch_id) == jobs_after_first
    assert len(jobs_after_first) == 4
    assert sorted(jobs_after_first.values()) == ["QUEUED"] * 3 + ["REJECTED"]
    assert first.to_run == again.to_run == 3
    assert manifest(aws, batch_id) == [
        job_id for job_id, status in jobs_after_first.items() if status == "QUEUED"
    ]
    assert [event.detail_type for event in publisher.events] == ["Job Rejected"]
    assert BATCH_RECORDS.find(batch_id).total == 4


def test_expand_interrupted_halfway_and_run_again_runs_every_item_once(
    aws, photos, monkeypatch: pytest.MonkeyPatch
):
    batch_id = uploaded_batch(aws, BatchSource.ZIP, a_zip(photos))
    real_put, puts = aws.put_object, []

    def put_then_die(**kwargs: Any) -> Any:
        if len(puts) == 1:  # the Lambda times out while storing the second photo
            raise TimeoutError("task timed out")
        puts.append(kwargs["Key"])
        return real_put(**kwargs)

    monkeypatch.setattr(aws, "put_object", put_then_die)
    with pytest.raises(TimeoutError):
        batches.expand(batch_id, aws, publisher=MemoryPublisher())
    monkeypatch.setattr(aws, "put_object", real_put)

    plan = batches.expand(batch_id, aws, publisher=MemoryPublisher())

    queued = manifest(aws, batch_id)
    assert plan.to_run == len(queued) == 3
    assert len(items(batch_id)) == 4
    for job_id in queued:
        assert aws.list_objects_v2(Bucket=BUCKET, Prefix=keys.upload(job_id))["KeyCount"] == 1


def test_a_source_refused_halfway_rejects_the_items_read_before(
    aws, photos, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SILHOUETTE_MAX_BATCH_ITEMS", "2")
    get_settings.cache_clear()
    batch_id = uploaded_batch(aws, BatchSource.ZIP, a_zip(photos))

    plan = batches.expand(batch_id, aws, publisher=MemoryPublisher())

    record = BATCH_RECORDS.find(batch_id)
    assert (plan.to_run, record.status) == (0, BatchStatus.REJECTED.value)
    assert record.reason == "the batch has more than 2 items"
    jobs = list(DYNAMODB_RECORDS.for_batch(batch_id))
    assert [job.status for job in jobs] == ["REJECTED", "REJECTED"]
    assert all(job.reason.startswith("the batch was rejected: ") for job in jobs)


def test_progress_counts_each_ended_item_once_from_the_batch_record(aws, photos):
    batch_id = uploaded_batch(aws, BatchSource.ZIP, a_zip(photos))
    batches.expand(batch_id, aws, publisher=MemoryPublisher())
    queued = [job for job in DYNAMODB_RECORDS.for_batch(batch_id) if job.status == "QUEUED"]

    batches.reject_item(queued[0], "no person detected", MemoryPublisher())
    batches.reject_item(queued[0], "no person detected", MemoryPublisher())  # a retry
    progress = batches.progress(BATCH_RECORDS.find(batch_id))

    assert (progress.total, progress.done) == (4, 2)
    assert progress.counts == {JobStatus.REJECTED: 2}


def test_a_csv_is_read_as_a_stream_with_its_extra_columns(aws):
    text = "\ufeffid,image_url,sku\r\np1,https://example.com/1.jpg,A-1\r\np2,,B-2\r\n"
    batch_id = uploaded_batch(aws, BatchSource.CSV, text.encode())

    plan = batches.expand(batch_id, aws, publisher=MemoryPublisher())

    jobs = list(DYNAMODB_RECORDS.for_batch(batch_id))
    assert [(job.batch["item"], job.batch["extra"]) for job in jobs] == [
        ("p1", {"sku": "A-1"}),
        ("p2", {"sku": "B-2"}),
    ]
    assert [job.status for job in jobs] == ["QUEUED", "REJECTED"]
    assert plan.to_run == 1


class StepFunctions:
    """Records the executions started, refusing a name twice as Step Functions does."""

    class exceptions:  # noqa: N801 (boto3's spelling)
        class ExecutionAlreadyExists(Exception):
            pass

    def __init__(self) -> None:
        self.started: list[str] = []

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> None:  # noqa: N803
        if name in self.started:
            raise self.exceptions.ExecutionAlreadyExists(name)
        self.started.append(name)


def photo_batch(count: int) -> tuple[str, list[str]]:
    declared = [
        transfers.PhotoDeclaration(content_type="image/jpeg", filename=f"p{n}.jpg")
        for n in range(count)
    ]
    record, uploads = batches.create_photo_batch(TENANT, declared, JobOptions())
    return record.batch_id, [upload.job_id for upload in uploads]


def test_a_photos_batch_starts_once_with_its_last_photo(aws):
    batch_id, job_ids = photo_batch(3)
    stepfunctions = StepFunctions()

    started = []
    for job_id in [job_ids[0], job_ids[1], job_ids[1], job_ids[2], job_ids[2]]:
        started.append(batches.photo_arrived(DYNAMODB_RECORDS.find(job_id), stepfunctions))

    assert started == [False, False, False, True, False]
    assert stepfunctions.started == [batch_id]
    assert BATCH_RECORDS.find(batch_id).status == BatchStatus.RUNNING.value
    assert [job.batch["item"] for job in DYNAMODB_RECORDS.for_batch(batch_id)] == [
        "p0.jpg",
        "p1.jpg",
        "p2.jpg",
    ]


def test_a_photos_batch_whose_photos_stop_coming_runs_with_those_that_came(aws, sample):
    batch_id, job_ids = photo_batch(2)
    aws.put_object(Bucket=BUCKET, Key=keys.upload(job_ids[0]), Body=sample.path("bus").read_bytes())
    stepfunctions = StepFunctions()
    never_uploaded = DYNAMODB_RECORDS.find(job_ids[1])

    swept = batches.look_at_item(never_uploaded, never_uploaded.sweep_at, stepfunctions)
    plan = batches.expand(batch_id, aws, publisher=MemoryPublisher())
    first = batches.prepare_item(job_ids[0], aws, publisher=MemoryPublisher())
    second = batches.prepare_item(job_ids[1], aws, publisher=MemoryPublisher())

    assert (swept, stepfunctions.started, plan.to_run) == ("started", [batch_id], 2)
    assert first.start and first.state.upload_key == keys.upload(job_ids[0])
    assert not second.start
    rejected = DYNAMODB_RECORDS.find(job_ids[1])
    assert (rejected.status, rejected.reason) == ("REJECTED", "the photo was never uploaded")


def test_a_tenant_runs_at_most_its_limit_of_items_across_its_batches(
    aws, sample, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SILHOUETTE_TENANT_CONCURRENCY", "2")
    get_settings.cache_clear()
    bus = sample.path("bus").read_bytes()
    job_ids = []
    for _ in range(2):  # two batches of the same tenant
        batch_id = uploaded_batch(aws, BatchSource.ZIP, a_zip({"a.jpg": bus, "b.jpg": bus}))
        batches.expand(batch_id, aws, publisher=MemoryPublisher())
        job_ids += [job.job_id for job in DYNAMODB_RECORDS.for_batch(batch_id)]

    assert batches.prepare_item(job_ids[0], aws).start
    assert batches.prepare_item(job_ids[2], aws).start
    assert batches.prepare_item(job_ids[0], aws).start  # a retried step keeps its slot
    with pytest.raises(TenantBusy):
        batches.prepare_item(job_ids[1], aws)
    # A job that ends gives its slot back, to any of the tenant's batches.
    batches.reject_item(DYNAMODB_RECORDS.find(job_ids[2]), "no person", MemoryPublisher())
    assert batches.prepare_item(job_ids[1], aws).start
    assert set(TENANT_SLOTS.holders(TENANT)) == {job_ids[0], job_ids[1]}
    with pytest.raises(TenantBusy):
        batches.prepare_item(job_ids[3], aws)


def test_an_item_whose_batch_ended_without_running_it_expires_and_frees_its_slot(aws, sample):
    batch_id = uploaded_batch(
        aws, BatchSource.ZIP, a_zip({"a.jpg": sample.path("bus").read_bytes()})
    )
    batches.expand(batch_id, aws, publisher=MemoryPublisher())
    (job,) = DYNAMODB_RECORDS.for_batch(batch_id)
    batches.prepare_item(job.job_id, aws)  # took a slot; its pipeline then never started
    batches.finish_batch(batch_id, aws, MemoryPublisher(), failure="States.Runtime")

    swept = batches.look_at_item(job, job.sweep_at, StepFunctions())

    assert swept == "expired"
    assert DYNAMODB_RECORDS.find_any(job.job_id).status == JobStatus.EXPIRED.value
    assert TENANT_SLOTS.holders(TENANT) == {}
