"""The `JobRecords` contract, held against both adapters: the DynamoDB table (on moto, created from
template.yaml) and the in-memory fake the unit tests use, so the fake cannot drift from the
table's conditions."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from silhouette.local.template import Template
from silhouette.names import PROJECT_ROOT
from silhouette.schema import BatchItem, JobOptions, JobStatus
from silhouette.service.records import (
    STAGE_CHECK_AFTER,
    UPLOAD_EVENT_GRACE,
    DynamoJobRecords,
    JobIdTaken,
    JobRecord,
    JobRecords,
    MemoryJobRecords,
    is_page_key,
)
from silhouette.settings import get_settings

TENANT = "acme"
FINISHED = (JobStatus.COMPLETED, JobStatus.REJECTED, JobStatus.FAILED)
REGION = "us-east-1"
_job_ids = (f"{n:032x}" for n in itertools.count(1))
_table_names = (f"jobs-{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def moto_template() -> Iterator[Template]:
    with mock_aws():
        yield Template(PROJECT_ROOT / "template.yaml", "contract", REGION)


def create_jobs_table(template: Template, name: str) -> None:
    """The table as template.yaml declares it (keys and indexes)."""
    properties = template.resolve(template.properties("JobsTable"))
    wanted = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name, **{key: properties[key] for key in wanted}
    )


@pytest.fixture(params=["memory", "dynamodb"])
def job_records(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> JobRecords:
    table = next(_table_names)
    monkeypatch.setenv("SILHOUETTE_TABLE", table)
    monkeypatch.setenv("AWS_REGION", REGION)
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)
    if request.param == "memory":
        return MemoryJobRecords()
    create_jobs_table(request.getfixturevalue("moto_template"), table)
    return DynamoJobRecords()


def new_job(job_records: JobRecords, tenant: str = TENANT) -> JobRecord:
    return job_records.create_queued(next(_job_ids), tenant, "a.jpg", JobOptions(), "req-1")


def stored(job_records: JobRecords, job_id: str) -> JobRecord:
    record = job_records.find_any(job_id)
    assert record is not None, f"job {job_id} is gone"
    return record


def in_status(job_records: JobRecords, status: JobStatus) -> str:
    """A job brought to `status` through the port, as the service brings it there."""
    job_id = new_job(job_records).job_id
    later = datetime.now(UTC) + timedelta(days=1)
    if status == JobStatus.EXPIRED:
        assert job_records.expire(job_id, later)
    elif status != JobStatus.QUEUED:
        assert job_records.mark_processing(job_id, "ingest")
    if status.is_terminal and status != JobStatus.EXPIRED:
        assert job_records.finish(job_id, status, {}, erase_at=later)
        assert job_records.mark_notified(job_id)
    assert stored(job_records, job_id).status == status
    return job_id


def close_to(moment: datetime | None, expected: datetime) -> bool:
    return moment is not None and abs(moment - expected) < timedelta(seconds=5)


# Creating and reading ------------------------------------------------------------------------


def test_a_new_job_is_queued_until_its_form_expires_and_kept_for_its_retention(job_records):
    settings = get_settings()
    now = datetime.now(UTC)

    record = stored(job_records, new_job(job_records).job_id)

    assert (record.status, record.tenant, record.filename) == ("QUEUED", TENANT, "a.jpg")
    assert (record.request_id, record.stage, record.notified_at) == ("req-1", None, None)
    form_expires = now + timedelta(seconds=settings.upload_url_expiry_seconds)
    assert close_to(record.sweep_at, form_expires + UPLOAD_EVENT_GRACE)
    assert close_to(record.expires_at, now + timedelta(days=settings.retention_days))
    assert job_records.find(record.job_id) is not None


def test_a_job_id_is_never_taken_twice(job_records):
    first = new_job(job_records)

    with pytest.raises(JobIdTaken):
        job_records.create_queued(first.job_id, "globex", None, JobOptions())

    assert stored(job_records, first.job_id).tenant == TENANT


def test_a_batchs_jobs_come_in_item_order_and_no_other_job_with_them(job_records):
    batch, other = "b" * 32, "c" * 32
    for index in (2, 0, 1):
        item = BatchItem(batch_id=batch, index=index, item=f"p{index}.jpg", source=f"p{index}.jpg")
        job_records.create_queued(next(_job_ids), TENANT, item.item, JobOptions(), batch=item)
    job_records.create_queued(
        next(_job_ids), TENANT, None, JobOptions(),
        batch=BatchItem(batch_id=other, index=0, item="x", source="x"),
    )  # fmt: skip
    new_job(job_records)  # a single job

    listed = list(job_records.for_batch(batch))

    assert [job.to_result().batch.item for job in listed] == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert all(job.status == JobStatus.QUEUED for job in listed)


def test_no_change_brings_a_missing_job_into_being(job_records):
    missing, now = next(_job_ids), datetime.now(UTC)

    assert not job_records.mark_processing(missing, "ingest")
    assert not job_records.expire(missing, now)
    assert not job_records.finish(missing, JobStatus.COMPLETED, {}, erase_at=now)
    assert not job_records.mark_notified(missing)
    assert not job_records.delete(missing, even_processing=True)
    job_records.sweep_again_at(missing, now)

    assert job_records.find_any(missing) is None
    assert job_records.find(missing) is None


def test_a_job_past_its_retention_is_hidden_but_the_sweeper_finds_it(job_records, monkeypatch):
    kept = new_job(job_records)
    monkeypatch.setenv("SILHOUETTE_RETENTION_DAYS", "0")
    get_settings.cache_clear()
    ended = [new_job(job_records) for _ in range(2)]  # newer than `kept`

    assert job_records.find(ended[0].job_id) is None
    assert job_records.find_any(ended[0].job_id) is not None
    page = job_records.for_tenant(TENANT, limit=1)
    assert [record.job_id for record in page.records] == [kept.job_id]


# Status changes ------------------------------------------------------------------------------


def test_an_open_job_takes_one_stage_after_another(job_records):
    job_id = new_job(job_records).job_id

    assert job_records.mark_processing(job_id, "ingest")
    assert job_records.mark_processing(job_id, "pose")

    record = stored(job_records, job_id)
    assert (record.status, record.stage) == ("PROCESSING", "pose")
    assert close_to(record.sweep_at, datetime.now(UTC) + STAGE_CHECK_AFTER)


@pytest.mark.parametrize("start", [JobStatus.QUEUED, JobStatus.PROCESSING])
@pytest.mark.parametrize("status", FINISHED)
def test_an_open_job_finishes_with_its_results(job_records, start, status):
    job_id = in_status(job_records, start)
    erase_at = datetime.now(UTC) + timedelta(days=30)
    fields = {
        "reason": "no person detected",
        "artifacts": {"mask": "artifacts/x/mask.png"},
        "colors": [{"hex": "#112233", "share": 0.5}],
    }

    assert job_records.finish(job_id, status, fields, erase_at)

    record = stored(job_records, job_id)
    assert (record.status, record.stage, record.sweep_at) == (status, None, erase_at)
    assert record.reason == "no person detected"
    assert record.artifacts.as_dict() == {"mask": "artifacts/x/mask.png"}
    assert record.colors == [{"hex": "#112233", "share": 0.5}]


def test_finish_may_be_repeated_with_its_status_until_the_event_is_sent(job_records):
    job_id = in_status(job_records, JobStatus.PROCESSING)
    erase_at = datetime.now(UTC) + timedelta(days=30)
    assert job_records.finish(job_id, JobStatus.FAILED, {"error": "ingest: boom"}, erase_at)

    assert not job_records.finish(job_id, JobStatus.COMPLETED, {}, erase_at)
    assert job_records.finish(job_id, JobStatus.FAILED, {"error": None}, erase_at)
    assert stored(job_records, job_id).error is None  # None removes a field
    assert job_records.mark_notified(job_id)
    assert not job_records.finish(job_id, JobStatus.FAILED, {"error": "again"}, erase_at)

    assert stored(job_records, job_id).error is None


def test_a_field_the_record_does_not_have_is_refused(job_records):
    job_id = in_status(job_records, JobStatus.PROCESSING)

    with pytest.raises(KeyError):
        job_records.finish(job_id, JobStatus.COMPLETED, {"colour": "red"}, erase_at=None)


def test_only_a_queued_job_expires(job_records):
    queued = in_status(job_records, JobStatus.QUEUED)
    processing = in_status(job_records, JobStatus.PROCESSING)
    erase_at = datetime.now(UTC) + timedelta(days=30)

    assert job_records.expire(queued, erase_at)
    assert not job_records.expire(processing, erase_at)

    record = stored(job_records, queued)
    assert (record.status, record.sweep_at) == ("EXPIRED", erase_at)
    assert record.reason == "the photo was not uploaded before the upload form expired"
    assert stored(job_records, processing).status == "PROCESSING"


@pytest.mark.parametrize("status", [s for s in JobStatus if s.is_terminal])
def test_nothing_moves_a_job_out_of_a_terminal_status(job_records, status):
    job_id = in_status(job_records, status)
    before = stored(job_records, job_id).serialize()
    now = datetime.now(UTC)

    assert not job_records.mark_processing(job_id, "pose")
    assert not job_records.expire(job_id, now)
    for other in set(FINISHED) - {status}:
        assert not job_records.finish(job_id, other, {}, erase_at=now)

    assert stored(job_records, job_id).serialize() == before


def test_a_running_stage_keeps_its_job_unless_its_execution_has_ended(job_records):
    queued, processing, finished = (
        in_status(job_records, status)
        for status in (JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.COMPLETED)
    )

    assert not job_records.delete(processing)
    assert job_records.find(processing) is not None
    assert job_records.delete(processing, even_processing=True)
    assert job_records.delete(queued)
    assert job_records.delete(finished)

    assert [job_records.find_any(job_id) for job_id in (queued, processing, finished)] == [None] * 3


# Lists ---------------------------------------------------------------------------------------


def test_a_tenants_jobs_come_newest_first_page_by_page(job_records):
    created = [new_job(job_records).job_id for _ in range(3)]
    new_job(job_records, tenant="globex")

    first = job_records.for_tenant(TENANT, limit=2)
    rest = job_records.for_tenant(TENANT, limit=2, start_after=first.last_key)

    assert [record.job_id for record in first.records + rest.records] == created[::-1]
    assert is_page_key(first.last_key, TENANT)
    assert not is_page_key(first.last_key, "globex")
    assert rest.last_key is None


def test_due_jobs_are_listed_for_the_sweeper_earliest_first(job_records):
    # Noon, so that an hour on does not cross into the next day (the look-back counts days).
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    late, early, lost, later = (new_job(job_records).job_id for _ in range(4))
    job_records.sweep_again_at(late, now - timedelta(minutes=1))
    job_records.sweep_again_at(early, now - timedelta(hours=1))
    job_records.sweep_again_at(later, now + timedelta(minutes=1))
    job_records.sweep_again_at(lost, now - timedelta(days=3))  # before the look-back window

    assert list(job_records.due_for_sweep(now, lookback_days=2)) == [early, late]
    assert list(job_records.due_for_sweep(now + timedelta(hours=1), lookback_days=3)) == [
        lost,
        early,
        late,
        later,
    ]


def test_measurement_versions_are_replaced_only_if_unchanged_since_read(job_records):
    job_id = in_status(job_records, JobStatus.COMPLETED)
    first = {"adjustments": [{"version": 1}], "approvals": []}
    second = {"adjustments": [{"version": 1}, {"version": 2}], "approvals": []}

    assert job_records.replace_measurement_versions(job_id, None, first)
    # A writer that read before `first` was stored must not overwrite it.
    assert not job_records.replace_measurement_versions(job_id, None, second)
    assert job_records.replace_measurement_versions(job_id, first, second)
    assert stored(job_records, job_id).measurement_versions == second
    assert "measurement_versions" not in stored(job_records, job_id).to_result().model_dump()
    assert not job_records.replace_measurement_versions(next(_job_ids), None, first)
