"""A tenant's data exported as one ZIP and erased, on moto's S3 and DynamoDB (tables as
template.yaml declares them, the `tenant-batches` index included) with real objects."""

from __future__ import annotations

import io
import itertools
import json
import os
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from silhouette.local.template import Template
from silhouette.names import PROJECT_ROOT
from silhouette.schema import BatchItem, JobOptions, JobStatus, Role, View
from silhouette.service import audit, keys, tenant_requests
from silhouette.service import tenant_data as tenant_data_module
from silhouette.service.batch_records import BATCH_RECORDS, TENANT_SLOTS, BatchSource, BatchStatus
from silhouette.service.records import DYNAMODB_RECORDS, new_job_id
from silhouette.service.storage import s3_client
from silhouette.service.tenant_data import erase_tenant, export_tenant
from silhouette.service.tenant_requests import TenantTask
from silhouette.service.tenants import Caller
from silhouette.settings import get_settings

REGION = "us-east-1"
BUCKET = "photos"
TENANT, OTHER = "acme", "globex"
_stacks = (f"tenant-data-{n}" for n in itertools.count(1))
VERSIONS = {"versions": [{"version": 1, "values": {"waist": 81.5}, "source": "tape measure"}]}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Fresh tables (from template.yaml) and bucket; the S3 client."""
    name = next(_stacks)
    settings = {
        "TABLE": f"{name}-jobs",
        "BATCH_TABLE": f"{name}-batches",
        "AUDIT_TABLE": f"{name}-audit",
        "BUCKET": BUCKET,
    }
    for key, value in settings.items():
        monkeypatch.setenv(f"SILHOUETTE_{key}", value)
    monkeypatch.setenv("AWS_REGION", REGION)
    get_settings.cache_clear()
    with mock_aws():
        template = Template(PROJECT_ROOT / "template.yaml", name, REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        tables = (
            ("JobsTable", "TABLE"),
            ("BatchesTable", "BATCH_TABLE"),
            ("AuditTable", "AUDIT_TABLE"),
        )
        for logical_id, table in tables:
            properties = template.resolve(template.properties(logical_id))
            wanted = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
            dynamodb.create_table(
                TableName=settings[table], **{k: properties[k] for k in wanted if k in properties}
            )
        s3 = s3_client(region=REGION)  # as deployed: path-style, SigV4 links
        s3.create_bucket(Bucket=BUCKET)
        yield s3
    get_settings.cache_clear()


def put(s3: Any, key: str, data: bytes, content_type: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type)


def stored(s3: Any) -> dict[str, bytes]:
    """Every object in the bucket, by key."""
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listed
    }


def later() -> datetime:
    return datetime.now(UTC) + timedelta(days=30)


def completed_with_versions(s3: Any, tenant: str) -> str:
    job_id = DYNAMODB_RECORDS.create_queued(new_job_id(), tenant, "a.jpg", JobOptions()).job_id
    result = keys.result(job_id)
    put(s3, result, b'{"status": "COMPLETED"}', "application/json")
    fields = {"artifacts": {"result": result}, "measurement_versions": VERSIONS}
    assert DYNAMODB_RECORDS.finish(job_id, JobStatus.COMPLETED, fields, later())
    return job_id


def capture_with_images(s3: Any, tenant: str) -> str:
    """A completed capture whose photos were kept: uploads, working images, artifacts."""
    job_id = DYNAMODB_RECORDS.create_queued(
        new_job_id(), tenant, "me.jpg", JobOptions(), views={View.FRONT: "me.jpg", View.SIDE: None}
    ).job_id
    put(s3, keys.upload(job_id, View.FRONT), os.urandom(3 * 1024 * 1024), "image/jpeg")
    put(s3, keys.upload(job_id, View.SIDE), os.urandom(5000), "image/png")
    put(s3, keys.working_image(job_id, "image"), os.urandom(7000), "image/png")
    artifacts = {
        "cutout": keys.artifact(job_id, "cutout", "png"),
        "overlay": keys.artifact(job_id, "overlay", "jpg"),
    }
    for key in artifacts.values():
        put(s3, key, os.urandom(4000), "image/png")
    put(s3, keys.result(job_id), json.dumps({"job_id": job_id}).encode(), "application/json")
    fields = {"artifacts": {**artifacts, "result": keys.result(job_id)}}
    assert DYNAMODB_RECORDS.finish(job_id, JobStatus.COMPLETED, fields, later())
    return job_id


def queued(tenant: str) -> str:
    return DYNAMODB_RECORDS.create_queued(new_job_id(), tenant, None, JobOptions()).job_id


def batch_with_outputs(s3: Any, tenant: str) -> tuple[str, str]:
    """A finished ZIP batch with its source, item list, report and results, and its one item
    (a job of the tenant holding a slot)."""
    batch_id = new_job_id()
    webhook = ("https://hooks.example.com/x", "secret-token")
    BATCH_RECORDS.create(batch_id, tenant, BatchSource.ZIP, JobOptions(), 4, webhook=webhook)
    put(s3, keys.batch_source(batch_id), os.urandom(9000), "application/zip")
    put(s3, keys.batch_manifest(batch_id), b"job_id\nx\n", "text/csv")
    put(s3, keys.batch_report(batch_id), b"item,status\na.jpg,COMPLETED\n", "text/csv")
    put(s3, keys.batch_results(batch_id), os.urandom(6000), "application/zip")
    item = BatchItem(batch_id=batch_id, index=0, item="a.jpg", source="a.jpg")
    job_id = DYNAMODB_RECORDS.create_queued(
        new_job_id(), tenant, "a.jpg", JobOptions(), batch=item
    ).job_id
    put(s3, keys.upload(job_id), os.urandom(2000), "image/jpeg")
    assert TENANT_SLOTS.take(tenant, job_id, 5)
    report, results = keys.batch_report(batch_id), keys.batch_results(batch_id)
    assert BATCH_RECORDS.finish(
        batch_id, BatchStatus.COMPLETED, None, {"QUEUED": 1}, report, results
    )
    return batch_id, job_id


def download(s3: Any, tenant: str, export_id: str) -> zipfile.ZipFile:
    """The exported ZIP, read with boto3 from where the export put it."""
    body = s3.get_object(Bucket=BUCKET, Key=keys.tenant_export(tenant, export_id))["Body"]
    return zipfile.ZipFile(io.BytesIO(body.read()))


def records_of(table_setting: str, tenant: str) -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = getattr(get_settings(), table_setting)
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return [
        item
        for item in items
        if item.get("tenant") == {"S": tenant} or item.get("batch_id") == {"S": f"tenant:{tenant}"}
    ]


def test_export_holds_every_record_and_object_of_the_tenant_and_nothing_else(aws):
    with_versions = completed_with_versions(aws, TENANT)
    capture = capture_with_images(aws, TENANT)
    waiting = queued(TENANT)
    batch_id, item = batch_with_outputs(aws, TENANT)
    others = [capture_with_images(aws, OTHER), completed_with_versions(aws, OTHER)]
    other_batch, other_item = batch_with_outputs(aws, OTHER)
    before = stored(aws)

    export = export_tenant(TENANT, "e1", aws)

    archive = download(aws, TENANT, "e1")
    names = archive.namelist()
    assert archive.testzip() is None
    assert (export.jobs, export.batches, export.files) == (4, 1, len(names))
    exported = [key for key in stored(aws) if key.startswith(keys.EXPORT_PREFIX)]
    assert len(exported) == 1
    assert export.bytes == len(aws.get_object(Bucket=BUCKET, Key=exported[0])["Body"].read())
    # Every stored object of the tenant, byte for byte, under the documented names.
    expected: dict[str, str] = {}
    for job_id in (with_versions, capture, waiting, item):
        for prefix in keys.job_prefixes(job_id):
            for key in before:
                if key.startswith(prefix):
                    expected[f"jobs/{job_id}/{prefix.split('/')[0]}/{key[len(prefix) :]}"] = key
    expected[f"batches/{batch_id}/source"] = keys.batch_source(batch_id)
    for key in before:
        if key.startswith(keys.batch_prefix(batch_id)):
            expected[key] = key  # batches/<batch_id>/<name> as in the bucket
    assert len(expected) == 12
    assert f"jobs/{capture}/uploads/front" in expected
    assert f"jobs/{capture}/working/image.png" in expected
    assert f"jobs/{capture}/artifacts/cutout.png" in expected
    for name, key in expected.items():
        assert archive.read(name) == before[key], name
    # The records, as clients see them.
    for job_id in (with_versions, capture, waiting, item):
        result = json.loads(archive.read(f"jobs/{job_id}/result.json"))
        record = DYNAMODB_RECORDS.find(job_id)
        assert record is not None
        assert result == record.to_result().model_dump(mode="json")
        assert result["tenant"] == TENANT
    assert json.loads(archive.read(f"jobs/{waiting}/result.json"))["status"] == "QUEUED"
    assert not any(name.startswith(f"jobs/{waiting}/") for name in names if "result" not in name)
    versions = [name for name in names if name.endswith("measurement_versions.json")]
    assert versions == [f"jobs/{with_versions}/measurement_versions.json"]
    assert json.loads(archive.read(versions[0])) == VERSIONS
    batch = json.loads(archive.read(f"batches/{batch_id}/batch.json"))
    assert batch["batch_id"] == batch_id and batch["tenant"] == TENANT
    assert batch["status"] == "COMPLETED" and batch["webhook_url"].startswith("https://")
    assert "webhook_token" not in batch
    readme = archive.read("README.txt").decode()
    assert "4 job(s) and 1 batch(es)" in readme and datetime.now(UTC).strftime("%Y-%m-%d") in readme
    # Exactly that, and nothing of the other tenant.
    extra = {f"jobs/{job_id}/result.json" for job_id in (with_versions, capture, waiting, item)}
    extra |= {versions[0], f"batches/{batch_id}/batch.json", "README.txt"}
    assert sorted(names) == sorted({*expected, *extra})
    for foreign in (*others, other_item, other_batch):
        assert not any(foreign in name for name in names)
    # Photos stored as they are, documents deflated.
    compression = {info.filename: info.compress_type for info in archive.infolist()}
    assert compression[f"jobs/{capture}/uploads/front"] == zipfile.ZIP_STORED
    assert compression[f"batches/{batch_id}/results.zip"] == zipfile.ZIP_STORED
    assert compression[f"jobs/{capture}/result.json"] == zipfile.ZIP_DEFLATED
    assert compression[f"batches/{batch_id}/report.csv"] == zipfile.ZIP_DEFLATED


def test_export_of_a_tenant_without_data_is_a_readme(aws):
    capture_with_images(aws, OTHER)

    export = export_tenant(TENANT, "e1", aws)

    assert (export.jobs, export.batches, export.files) == (0, 0, 1)
    assert download(aws, TENANT, "e1").namelist() == ["README.txt"]


def test_erase_leaves_nothing_of_the_tenant_and_everything_of_the_others(aws):
    mine = [completed_with_versions(aws, TENANT), capture_with_images(aws, TENANT), queued(TENANT)]
    batch_id, item = batch_with_outputs(aws, TENANT)
    capture_with_images(aws, OTHER)
    completed_with_versions(aws, OTHER)
    other_batch, _ = batch_with_outputs(aws, OTHER)
    export_tenant(TENANT, "e1", aws)
    export_tenant(OTHER, "e2", aws)
    before = stored(aws)
    owned = [*mine, item, batch_id]
    mine_stored = {
        key
        for key in before
        if any(name in key for name in owned) or key.startswith(keys.tenant_exports_prefix(TENANT))
    }
    others_before = {key: data for key, data in before.items() if key not in mine_stored}
    other_jobs = records_of("table", OTHER)
    other_batches = records_of("batch_table", OTHER)
    assert len(mine_stored) == 13 and len(records_of("batch_table", TENANT)) == 2

    erasure = erase_tenant(TENANT, aws)

    assert (erasure.jobs, erasure.batches, erasure.objects) == (4, 1, len(mine_stored))
    assert stored(aws) == others_before
    assert records_of("table", TENANT) == []
    assert records_of("batch_table", TENANT) == []  # the batch and the slots item
    assert TENANT_SLOTS.holders(TENANT) == {}
    assert records_of("table", OTHER) == other_jobs and len(other_jobs) == 3
    assert records_of("batch_table", OTHER) == other_batches and len(other_batches) == 2
    assert BATCH_RECORDS.find(other_batch) is not None

    again = erase_tenant(TENANT, aws)

    assert (again.jobs, again.batches, again.objects) == (0, 0, 0)
    assert stored(aws) == others_before


def test_erase_takes_a_job_being_analysed(aws):
    job_id = capture_with_images(aws, OTHER)  # the other tenant's, to compare with
    running = queued(TENANT)
    put(aws, keys.upload(running), os.urandom(3000), "image/jpeg")
    put(aws, keys.working_image(running, "image"), os.urandom(3000), "image/png")
    assert DYNAMODB_RECORDS.mark_processing(running, "ingest")

    erasure = erase_tenant(TENANT, aws)

    assert (erasure.jobs, erasure.batches, erasure.objects) == (1, 0, 2)
    assert DYNAMODB_RECORDS.find_any(running) is None
    assert not any(running in key for key in stored(aws))
    assert DYNAMODB_RECORDS.find(job_id) is not None


def test_export_and_erase_go_through_every_page_of_jobs(aws):
    jobs = [queued(TENANT) for _ in range(205)]  # three pages of the tenant's list
    for job_id in jobs[::50]:
        put(aws, keys.upload(job_id), b"photo", "image/jpeg")

    export = export_tenant(TENANT, "e1", aws)

    names = download(aws, TENANT, "e1").namelist()
    assert export.jobs == 205
    assert {f"jobs/{job_id}/result.json" for job_id in jobs} <= set(names)
    assert {f"jobs/{job_id}/uploads/original" for job_id in jobs[::50]} <= set(names)

    erasure = erase_tenant(TENANT, aws)

    assert (erasure.jobs, erasure.objects) == (205, 5 + 1)  # and the export
    assert records_of("table", TENANT) == []
    assert stored(aws) == {}


# Requests: the export's progress and the tenant-data function's runs -------------------------

ADMIN = Caller(TENANT, Role.ADMIN, "key-id", "acme-admin")


@pytest.fixture
def invoked(monkeypatch: pytest.MonkeyPatch) -> list[TenantTask]:
    """The tasks the API hands the tenant-data function (instead of invoking it)."""
    tasks: list[TenantTask] = []
    monkeypatch.setattr(tenant_requests, "_invoke", tasks.append)
    return tasks


def test_an_export_is_started_once_then_answered_from_its_state(aws, invoked):
    completed_with_versions(aws, TENANT)

    started = tenant_requests.export_status(ADMIN, fresh=False, request_id="r1")
    again = tenant_requests.export_status(ADMIN, fresh=False, request_id="r2")

    assert started.status == again.status == "RUNNING" and started.download is None
    assert [task.export_id for task in invoked] == [started.export_id]  # asked once
    assert tenant_requests.run(invoked[0])["status"] == "READY"
    ready = tenant_requests.export_status(ADMIN, fresh=False, request_id="r3")
    assert ready.status == "READY" and ready.jobs == 1 and ready.download is not None
    assert download(aws, TENANT, ready.export_id).testzip() is None
    # A retried invocation of a finished export does nothing.
    assert tenant_requests.run(invoked[0]) == {"status": "skipped"}
    fresh = tenant_requests.export_status(ADMIN, fresh=True, request_id="r4")
    assert fresh.status == "RUNNING" and fresh.export_id != ready.export_id


def test_a_failed_or_abandoned_export_is_started_again(aws, invoked, monkeypatch):
    started = tenant_requests.export_status(ADMIN, fresh=False, request_id=None)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch, pytest.raises(OSError):
        patch.setattr(tenant_data_module, "export_tenant", broken)
        tenant_requests.run(invoked[0])
    failed = json.loads(stored(aws)[keys.tenant_export_state(TENANT)])
    assert failed["status"] == "FAILED" and failed["error"] == "OSError: disk full"
    retried = tenant_requests.export_status(ADMIN, fresh=False, request_id=None)
    assert retried.status == "RUNNING" and retried.export_id != started.export_id

    # One RUNNING for longer than the function may run died with it.
    abandoned = retried.model_copy(
        update={"started_at": datetime.now(UTC) - tenant_requests.EXPORT_GIVEN_UP_AFTER * 1.1}
    )
    put(aws, keys.tenant_export_state(TENANT), abandoned.model_dump_json().encode(), "x/json")
    restarted = tenant_requests.export_status(ADMIN, fresh=False, request_id=None)
    assert restarted.export_id not in (started.export_id, retried.export_id)
    assert len(invoked) == 3


def test_an_erasure_is_audited_when_asked_for_and_when_done(aws, invoked):
    completed_with_versions(aws, TENANT)

    assert tenant_requests.start_erasure(ADMIN, "r1").status == "ERASING"
    tenant_requests.run(invoked[0])

    entries = audit.entries(TENANT, 10, None).entries
    assert [(e.action, e.detail["status"], e.key) for e in entries] == [
        ("erase", "requested", "acme-admin"),
        ("erase", "done", "acme-admin"),
    ]
    assert entries[1].detail["jobs"] == 1 and not stored(aws)
