"""The job record and every write to it, behind the `JobRecords` port: `DynamoJobRecords` is
the table, `MemoryJobRecords` keeps the same rules in memory for unit tests
(tests/integration/test_record_contract.py holds the two to one behaviour).

State changes are conditional so that a late or duplicate writer never moves a job out of a
terminal state: QUEUED -> PROCESSING -> COMPLETED | REJECTED | FAILED, or QUEUED -> EXPIRED.

Every record also says when the sweeper (silhouette.service.sweeper) should next look at it
(`sweep_at`, indexed by day): when its upload form has expired, when a stage has been running
suspiciously long, or when its retention period ends. `expires_at` is the table's TTL, a
backstop that removes records the sweeper missed."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeGuard

from pynamodb.attributes import (
    DynamicMapAttribute,
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from silhouette.schema import BatchItem, JobOptions, JobResult, JobStatus, View
from silhouette.service.tables import (
    bound,
    delete_if,
    is_condition_failure,
    update_if,
    utc_now,
)
from silhouette.settings import get_settings

_OPEN = (JobStatus.QUEUED.value, JobStatus.PROCESSING.value)
# Attributes for the service's own use, not part of the job as clients see it.
_BOOKKEEPING = frozenset(
    {
        "notified_at",
        "request_id",
        "sweep_day",
        "sweep_at",
        "expires_at",
        "batch_id",
        "batch_index",
        "measurement_versions",
    }
)
# How long events may lag behind an upload before the sweeper looks for the photo itself.
UPLOAD_EVENT_GRACE = timedelta(minutes=10)
# How long a stage may run before the sweeper checks that its execution is still alive.
STAGE_CHECK_AFTER = timedelta(minutes=15)
# A batch's items are started by the batch's execution, in turn; the sweeper looks at one only
# once the batch has had the longest it may run (the batch state machine's TimeoutSeconds).
BATCH_ITEM_CHECK_AFTER = timedelta(hours=24)
EXPIRED_REASON = "the photo was not uploaded before the upload form expired"
# What a page of the tenant-jobs index ends on: the table's key and the index's.
_PAGE_KEY = ("job_id", "tenant", "created_at")


class TenantJobsIndex(GlobalSecondaryIndex["JobRecord"]):
    """A tenant's jobs, newest first (the `tenant-jobs` index in template.yaml)."""

    class Meta:
        index_name = "tenant-jobs"
        projection = AllProjection()

    tenant = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class SweepIndex(GlobalSecondaryIndex["JobRecord"]):
    """Jobs due for a look by the sweeper, by day (the `sweep-due` index in template.yaml)."""

    class Meta:
        index_name = "sweep-due"
        projection = KeysOnlyProjection()

    sweep_day = UnicodeAttribute(hash_key=True)
    sweep_at = UTCDateTimeAttribute(range_key=True)


class BatchItemsIndex(GlobalSecondaryIndex["JobRecord"]):
    """A batch's jobs in item order (the `batch-items` index in template.yaml)."""

    class Meta:
        index_name = "batch-items"
        projection = AllProjection()

    batch_id = UnicodeAttribute(hash_key=True)
    batch_index = NumberAttribute(range_key=True)


class JobRecord(Model):
    class Meta:
        # Bound to the configured table on first use (see `_table`): the name comes from
        # the function environment, which is only known at run time.
        table_name = "unbound"

    job_id = UnicodeAttribute(hash_key=True)
    tenant = UnicodeAttribute()
    status = UnicodeAttribute()
    stage = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    filename = UnicodeAttribute(null=True)
    # A capture's views, each with its filename (schema.View -> name); absent for one photo.
    views = JSONAttribute(null=True)
    options = DynamicMapAttribute(default=dict)
    image = DynamicMapAttribute(null=True)
    # The analysis documents are nested and full of floats: stored as JSON text, which
    # round-trips exactly (DynamoDB maps would need Decimals and flatten nothing useful).
    person = JSONAttribute(null=True)
    colors = JSONAttribute(null=True)
    colors_note = UnicodeAttribute(null=True)
    face = JSONAttribute(null=True)
    view_images = JSONAttribute(null=True)
    side_person = JSONAttribute(null=True)
    calibration = JSONAttribute(null=True)
    skin = JSONAttribute(null=True)
    measurements = JSONAttribute(null=True)
    # Adjustments to the measurements and approvals (service/measurement_versions.py); the
    # analysis' own `measurements` are never changed.
    measurement_versions = JSONAttribute(null=True)
    quality = JSONAttribute(null=True)
    artifacts = MapAttribute(default=dict)
    timings_ms = MapAttribute(default=dict)
    models = MapAttribute(default=dict)
    created_at = UTCDateTimeAttribute(default=utc_now)
    updated_at = UTCDateTimeAttribute(default=utc_now)
    notified_at = UTCDateTimeAttribute(null=True)
    # The X-Request-ID of the POST /uploads that created the job (absent on older records).
    request_id = UnicodeAttribute(null=True)
    # A batch's item: its BatchItem, and its batch and place again as the index's keys.
    batch = JSONAttribute(null=True)
    batch_id = UnicodeAttribute(null=True)
    batch_index = NumberAttribute(null=True)
    # End of the retention period: the job and its objects are erased then (TTL attribute).
    expires_at = TTLAttribute(null=True)
    sweep_day = UnicodeAttribute(null=True)
    sweep_at = UTCDateTimeAttribute(null=True)

    by_tenant = TenantJobsIndex()
    due_for_sweep = SweepIndex()
    by_batch = BatchItemsIndex()

    def expired_by(self, moment: datetime) -> bool:
        """Past its retention period at `moment` (then the sweeper or TTL erases it, and
        clients no longer see it)."""
        return self.expires_at is not None and self.expires_at <= moment

    def to_result(self) -> JobResult:
        data = {
            name: value.as_dict() if isinstance(value, MapAttribute) else value
            for name in self.get_attributes()
            if (value := getattr(self, name)) is not None and name not in _BOOKKEEPING
        }
        return JobResult.model_validate(data)


def new_job_id() -> str:
    """128 random bits as 32 lowercase hex digits: unguessable, and safe in keys and execution
    names."""
    return secrets.token_hex(16)


class JobIdTaken(Exception):
    """A new job's id is already in use."""


class RecordPage(NamedTuple):
    records: list[JobRecord]
    # Where the next page starts (`start_after`); None on the last page.
    last_key: dict[str, Any] | None


class JobRecords(Protocol):
    """Where job records live. Every change but `create_queued` is conditional and says whether
    it was made, so callers learn that a job moved on or is gone without storage exceptions."""

    def create_queued(
        self,
        job_id: str,
        tenant: str,
        filename: str | None,
        options: JobOptions,
        request_id: str | None = None,
        batch: BatchItem | None = None,
        look_at: datetime | None = None,
        views: dict[View, str | None] | None = None,
    ) -> JobRecord:
        """A new job awaiting its upload (a capture: its `views`); `JobIdTaken` if the id is
        in use. The sweeper looks at it at `look_at`, by default once its upload form has
        expired (a batch's item: once its batch should long have run it)."""
        ...

    def find(self, job_id: str) -> JobRecord | None:
        """The job; None if there is none, or only one past its retention period."""
        ...

    def find_any(self, job_id: str) -> JobRecord | None:
        """The record even past its retention period (for the sweeper, which erases it)."""
        ...

    def for_tenant(
        self, tenant: str, limit: int, start_after: dict[str, Any] | None = None
    ) -> RecordPage:
        """Up to `limit` of the tenant's jobs within their retention period, newest first."""
        ...

    def for_batch(self, batch_id: str) -> Iterator[JobRecord]:
        """The batch's jobs within their retention period, in item order."""
        ...

    def due_for_sweep(self, now: datetime, lookback_days: int) -> Iterator[str]:
        """Ids of the jobs whose `sweep_at` has come, over the last `lookback_days` days."""
        ...

    def sweep_again_at(self, job_id: str, when: datetime) -> None:
        """Schedule the sweeper's next look at a job (nothing if it is gone)."""
        ...

    def expire(self, job_id: str, erase_at: datetime, reason: str = EXPIRED_REASON) -> bool:
        """QUEUED -> EXPIRED (the upload never arrived: `reason` says which); the sweeper
        erases it at `erase_at`. False if the job has moved on or is gone."""
        ...

    def delete(self, job_id: str, even_processing: bool = False) -> bool:
        """Erase the record unless a stage is running (`even_processing`: its execution has
        ended, so none will). False if one is, or the job is gone."""
        ...

    def mark_processing(self, job_id: str, stage: str) -> bool:
        """Record that `stage` is running. False if the job is gone or already terminal."""
        ...

    def finish(
        self, job_id: str, status: JobStatus, fields: dict[str, Any], erase_at: datetime | None
    ) -> bool:
        """Write a terminal status with the job's results (a None field removes it); the
        sweeper comes back at `erase_at` (the end of the retention period) to erase the job.

        Succeeds as `may_finish` says: from an open state, or again with the same status while
        no event has been sent yet (so a retried finalize can still notify). False otherwise,
        or if the job no longer exists."""
        ...

    def mark_notified(self, job_id: str) -> bool:
        """Record that the job's event was sent, which closes `finish` to retries. False if
        the job is gone."""
        ...

    def replace_measurement_versions(
        self, job_id: str, expected: dict[str, Any] | None, versions: dict[str, Any]
    ) -> bool:
        """Store `versions` (service/measurement_versions.py) if the job still exists and its
        versions are still `expected`; False otherwise."""
        ...


def may_finish(record: JobRecord, status: JobStatus) -> bool:
    """Whether `finish(record.job_id, status, ...)` would be allowed."""
    return record.status in _OPEN or (record.status == status and record.notified_at is None)


def is_page_key(key: object, tenant: str) -> TypeGuard[dict[str, Any]]:
    """Whether `key` can continue a list of `tenant`'s jobs: the key attributes of its index,
    as strings, naming the tenant (DynamoDB fails a query from any other start)."""
    return (
        isinstance(key, dict)
        and set(key) == set(_PAGE_KEY)
        and all(
            isinstance(value, dict) and list(value) == ["S"] and isinstance(value["S"], str)
            for value in key.values()
        )
        and key["tenant"] == {"S": tenant}
    )


# Attribute name -> new value; None removes the attribute. Both adapters apply the same changes.
Changes = dict[str, Any]


def _queued(
    job_id: str,
    tenant: str,
    filename: str | None,
    options: JobOptions,
    request_id: str | None,
    batch: BatchItem | None,
    look_at: datetime | None,
    views: dict[View, str | None] | None,
) -> JobRecord:
    settings = get_settings()
    now = utc_now()
    if look_at is not None:
        sweep_at = look_at
    elif batch is None:
        sweep_at = now + timedelta(seconds=settings.upload_url_expiry_seconds) + UPLOAD_EVENT_GRACE
    else:
        sweep_at = now + BATCH_ITEM_CHECK_AFTER
    return JobRecord(
        job_id=job_id,
        tenant=tenant,
        status=JobStatus.QUEUED.value,
        filename=filename,
        views=views,
        options=options.model_dump(),
        request_id=request_id,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(days=settings.retention_days),
        **(_batch_item(batch) if batch else {}),
        **_sweep(sweep_at),
    )


def _batch_item(batch: BatchItem) -> Changes:
    return {"batch": batch.model_dump(), "batch_id": batch.batch_id, "batch_index": batch.index}


def _sweep(when: datetime) -> Changes:
    return {"sweep_day": _day(when), "sweep_at": when}


def _day(moment: datetime) -> str:
    return date.isoformat(moment.astimezone(UTC).date())


def _expiry(erase_at: datetime, reason: str) -> Changes:
    return {
        "status": JobStatus.EXPIRED.value,
        "reason": reason,
        "updated_at": utc_now(),
        **_sweep(erase_at),
    }


def _processing(stage: str) -> Changes:
    now = utc_now()
    return {
        "status": JobStatus.PROCESSING.value,
        "stage": stage,
        "updated_at": now,
        **_sweep(now + STAGE_CHECK_AFTER),
    }


def _finished(status: JobStatus, fields: Changes, erase_at: datetime | None) -> Changes:
    assert status.is_terminal
    sweep = _sweep(erase_at) if erase_at is not None else {}
    return {"status": status.value, "stage": None, **sweep, "updated_at": utc_now(), **fields}


def _visible(record: JobRecord | None) -> JobRecord | None:
    """The record unless it is past its retention period (clients no longer see it then)."""
    return None if record is None or record.expired_by(utc_now()) else record


class DynamoJobRecords:
    """The job records in the DynamoDB table the settings name."""

    def create_queued(
        self,
        job_id: str,
        tenant: str,
        filename: str | None,
        options: JobOptions,
        request_id: str | None = None,
        batch: BatchItem | None = None,
        look_at: datetime | None = None,
        views: dict[View, str | None] | None = None,
    ) -> JobRecord:
        _table()  # binds the model to the configured table
        record = _queued(job_id, tenant, filename, options, request_id, batch, look_at, views)
        try:
            record.save(condition=JobRecord.job_id.does_not_exist())
        except PutError as error:
            if is_condition_failure(error):
                raise JobIdTaken(job_id) from error
            raise
        return record

    def find(self, job_id: str) -> JobRecord | None:
        return _visible(self.find_any(job_id))

    def find_any(self, job_id: str) -> JobRecord | None:
        try:
            return _table().get(job_id, consistent_read=True)
        except DoesNotExist:
            return None

    def for_tenant(
        self, tenant: str, limit: int, start_after: dict[str, Any] | None = None
    ) -> RecordPage:
        found = _table().by_tenant.query(
            tenant,
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=start_after,
            filter_condition=JobRecord.expires_at.does_not_exist()
            | (JobRecord.expires_at > utc_now()),
        )
        listed = list(found)  # the iterator knows where the page ends once it has been read
        return RecordPage(listed, found.last_evaluated_key)

    def for_batch(self, batch_id: str) -> Iterator[JobRecord]:
        for record in _table().by_batch.query(batch_id):
            if _visible(record) is not None:
                yield record

    def due_for_sweep(self, now: datetime, lookback_days: int) -> Iterator[str]:
        table = _table()
        for days_ago in range(lookback_days, -1, -1):
            day = _day(now - timedelta(days=days_ago))
            for key in table.due_for_sweep.query(day, JobRecord.sweep_at <= now):
                yield key.job_id

    def sweep_again_at(self, job_id: str, when: datetime) -> None:
        self._change(job_id, _sweep(when), JobRecord.job_id.exists())

    def expire(self, job_id: str, erase_at: datetime, reason: str = EXPIRED_REASON) -> bool:
        return self._change(
            job_id, _expiry(erase_at, reason), JobRecord.status == JobStatus.QUEUED.value
        )

    def delete(self, job_id: str, even_processing: bool = False) -> bool:
        condition = JobRecord.job_id.exists()
        if not even_processing:
            condition &= JobRecord.status != JobStatus.PROCESSING.value
        return delete_if(_table()(job_id=job_id), condition)

    def mark_processing(self, job_id: str, stage: str) -> bool:
        return self._change(job_id, _processing(stage), JobRecord.status.is_in(*_OPEN))

    def finish(
        self, job_id: str, status: JobStatus, fields: dict[str, Any], erase_at: datetime | None
    ) -> bool:
        # `may_finish` as a condition.
        condition = JobRecord.status.is_in(*_OPEN) | (
            (JobRecord.status == status.value) & JobRecord.notified_at.does_not_exist()
        )
        return self._change(job_id, _finished(status, fields, erase_at), condition)

    def mark_notified(self, job_id: str) -> bool:
        return self._change(job_id, {"notified_at": utc_now()}, JobRecord.job_id.exists())

    def replace_measurement_versions(
        self, job_id: str, expected: dict[str, Any] | None, versions: dict[str, Any]
    ) -> bool:
        unchanged = (
            JobRecord.measurement_versions.does_not_exist()
            if expected is None
            else JobRecord.measurement_versions == expected
        )
        changes = {"measurement_versions": versions}
        return self._change(job_id, changes, JobRecord.job_id.exists() & unchanged)

    @staticmethod
    def _change(job_id: str, changes: Changes, condition: Condition) -> bool:
        return update_if(_table()(job_id=job_id), changes, condition)


def _table() -> type[JobRecord]:
    return bound(JobRecord, get_settings().table)


class MemoryJobRecords:
    """Job records in memory, under the table's conditions, for unit tests. They are kept as
    DynamoDB items, so every read is a fresh copy, as from the table."""

    def __init__(self, records: Iterable[JobRecord] = ()) -> None:
        self.items: dict[str, dict[str, Any]] = {
            record.job_id: record.serialize() for record in records
        }

    def create_queued(
        self,
        job_id: str,
        tenant: str,
        filename: str | None,
        options: JobOptions,
        request_id: str | None = None,
        batch: BatchItem | None = None,
        look_at: datetime | None = None,
        views: dict[View, str | None] | None = None,
    ) -> JobRecord:
        if job_id in self.items:
            raise JobIdTaken(job_id)
        record = _queued(job_id, tenant, filename, options, request_id, batch, look_at, views)
        self.items[job_id] = record.serialize()
        return record

    def find(self, job_id: str) -> JobRecord | None:
        return _visible(self.find_any(job_id))

    def find_any(self, job_id: str) -> JobRecord | None:
        item = self.items.get(job_id)
        return JobRecord.from_raw_data(item) if item is not None else None

    def for_tenant(
        self, tenant: str, limit: int, start_after: dict[str, Any] | None = None
    ) -> RecordPage:
        items = sorted(
            (item for item in self.items.values() if item["tenant"]["S"] == tenant),
            key=_list_position,
            reverse=True,
        )
        if start_after is not None:
            items = [item for item in items if _list_position(item) < _list_position(start_after)]
        listed: list[JobRecord] = []
        for item in items:
            if len(listed) == limit:
                return RecordPage(listed, _page_key(listed[-1]))
            if (record := _visible(JobRecord.from_raw_data(item))) is not None:
                listed.append(record)
        return RecordPage(listed, None)

    def for_batch(self, batch_id: str) -> Iterator[JobRecord]:
        items = sorted(
            (item for item in self.items.values() if item.get("batch_id") == {"S": batch_id}),
            key=lambda item: float(item["batch_index"]["N"]),
        )
        for item in items:
            if (record := _visible(JobRecord.from_raw_data(item))) is not None:
                yield record

    def due_for_sweep(self, now: datetime, lookback_days: int) -> Iterator[str]:
        for days_ago in range(lookback_days, -1, -1):
            day = _day(now - timedelta(days=days_ago))
            due = sorted(
                (record.sweep_at, record.job_id)
                for record in map(JobRecord.from_raw_data, list(self.items.values()))
                if record.sweep_day == day
                and record.sweep_at is not None
                and record.sweep_at <= now
            )
            yield from (job_id for _, job_id in due)

    def sweep_again_at(self, job_id: str, when: datetime) -> None:
        self._change(job_id, _sweep(when), lambda record: True)

    def expire(self, job_id: str, erase_at: datetime, reason: str = EXPIRED_REASON) -> bool:
        return self._change(
            job_id, _expiry(erase_at, reason), lambda record: record.status == JobStatus.QUEUED
        )

    def delete(self, job_id: str, even_processing: bool = False) -> bool:
        record = self.find_any(job_id)
        if record is None or (record.status == JobStatus.PROCESSING and not even_processing):
            return False
        del self.items[job_id]
        return True

    def mark_processing(self, job_id: str, stage: str) -> bool:
        return self._change(job_id, _processing(stage), lambda record: record.status in _OPEN)

    def finish(
        self, job_id: str, status: JobStatus, fields: dict[str, Any], erase_at: datetime | None
    ) -> bool:
        return self._change(
            job_id,
            _finished(status, fields, erase_at),
            lambda record: may_finish(record, status),
        )

    def mark_notified(self, job_id: str) -> bool:
        return self._change(job_id, {"notified_at": utc_now()}, lambda record: True)

    def replace_measurement_versions(
        self, job_id: str, expected: dict[str, Any] | None, versions: dict[str, Any]
    ) -> bool:
        changes = {"measurement_versions": versions}
        return self._change(job_id, changes, lambda record: record.measurement_versions == expected)

    def _change(self, job_id: str, changes: Changes, allowed: Callable[[JobRecord], bool]) -> bool:
        record = self.find_any(job_id)
        if record is None or not allowed(record):
            return False
        attributes = JobRecord.get_attributes()
        for name, value in changes.items():
            if name not in attributes:  # as DynamoJobRecords refuses it
                raise KeyError(f"a job record has no attribute {name!r}")
            setattr(record, name, value)
        self.items[job_id] = record.serialize()
        return True


def _list_position(item: dict[str, Any]) -> tuple[str, str]:
    """Where a stored item, or a page key, sorts in its tenant's list (ties by id)."""
    return item["created_at"]["S"], item["job_id"]["S"]


def _page_key(record: JobRecord) -> dict[str, Any]:
    item = record.serialize()
    return {name: item[name] for name in _PAGE_KEY}


# The deployed table: the default wherever a function takes `job_records`.
DYNAMODB_RECORDS: JobRecords = DynamoJobRecords()
