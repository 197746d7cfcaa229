"""The job record (PynamoDB) and every write to it.

State changes are conditional so that a late or duplicate writer never moves a job out of a
terminal state: QUEUED -> PROCESSING -> COMPLETED | REJECTED | FAILED."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import (
    DynamicMapAttribute,
    JSONAttribute,
    MapAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.pagination import ResultIterator

from silhouette.schema import JobOptions, JobResult, JobStatus
from silhouette.settings import get_settings

_OPEN = (JobStatus.QUEUED.value, JobStatus.PROCESSING.value)
# Attributes for the service's own use, not part of the job as clients see it.
_BOOKKEEPING = frozenset({"notified_at", "request_id"})


def _now() -> datetime:
    return datetime.now(UTC)


class TenantJobsIndex(GlobalSecondaryIndex["JobRecord"]):
    """A tenant's jobs, newest first (the `tenant-jobs` index in template.yaml)."""

    class Meta:
        index_name = "tenant-jobs"
        projection = AllProjection()

    tenant = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


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
    options = DynamicMapAttribute(default=dict)
    image = DynamicMapAttribute(null=True)
    # The analysis documents are nested and full of floats: stored as JSON text, which
    # round-trips exactly (DynamoDB maps would need Decimals and flatten nothing useful).
    person = JSONAttribute(null=True)
    colors = JSONAttribute(null=True)
    face = JSONAttribute(null=True)
    artifacts = MapAttribute(default=dict)
    timings_ms = MapAttribute(default=dict)
    models = MapAttribute(default=dict)
    created_at = UTCDateTimeAttribute(default=_now)
    updated_at = UTCDateTimeAttribute(default=_now)
    notified_at = UTCDateTimeAttribute(null=True)
    # The X-Request-ID of the POST /uploads that created the job (absent on older records).
    request_id = UnicodeAttribute(null=True)

    by_tenant = TenantJobsIndex()

    def to_result(self) -> JobResult:
        data = {
            name: value.as_dict() if isinstance(value, MapAttribute) else value
            for name in self.get_attributes()
            if (value := getattr(self, name)) is not None and name not in _BOOKKEEPING
        }
        return JobResult.model_validate(data)


def _table() -> type[JobRecord]:
    settings = get_settings()
    meta = JobRecord.Meta
    if meta.table_name != settings.table or getattr(meta, "region", None) != settings.region:
        meta.table_name = settings.table
        meta.region = settings.region
        JobRecord._connection = None
    return JobRecord


def create_queued(
    job_id: str,
    tenant: str,
    filename: str | None,
    options: JobOptions,
    request_id: str | None = None,
) -> JobRecord:
    """A new job awaiting its upload. Fails if the id is already taken."""
    record = _table()(
        job_id=job_id,
        tenant=tenant,
        status=JobStatus.QUEUED.value,
        filename=filename,
        options=options.model_dump(),
        request_id=request_id,
    )
    record.save(condition=JobRecord.job_id.does_not_exist())
    return record


def get(job_id: str) -> JobRecord:
    """Raises `DoesNotExist` if there is no such job."""
    return _table().get(job_id, consistent_read=True)


def find(job_id: str) -> JobRecord | None:
    try:
        return get(job_id)
    except DoesNotExist:
        return None


def for_tenant(
    tenant: str, limit: int, start_after: dict[str, Any] | None = None
) -> ResultIterator[JobRecord]:
    """The tenant's jobs, newest first; the iterator's `last_evaluated_key` continues the list."""
    return _table().by_tenant.query(
        tenant, scan_index_forward=False, limit=limit, last_evaluated_key=start_after
    )


def delete(job_id: str) -> bool:
    """Erase the record unless a stage is running. False if one is (or the job is gone)."""
    try:
        _table()(job_id=job_id).delete(
            condition=JobRecord.job_id.exists() & (JobRecord.status != JobStatus.PROCESSING.value)
        )
    except DeleteError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


def mark_processing(job_id: str, stage: str) -> bool:
    """Record that `stage` is running. False if the job is gone or already terminal."""
    table = _table()
    try:
        table(job_id=job_id).update(
            actions=[
                JobRecord.status.set(JobStatus.PROCESSING.value),
                JobRecord.stage.set(stage),
                JobRecord.updated_at.set(_now()),
            ],
            condition=JobRecord.status.is_in(*_OPEN),
        )
    except UpdateError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


def may_finish(record: JobRecord, status: JobStatus) -> bool:
    """Whether `finish(record.job_id, status, ...)` would be allowed (see its condition)."""
    return record.status in _OPEN or (record.status == status and record.notified_at is None)


def finish(job_id: str, status: JobStatus, fields: dict[str, Any]) -> bool:
    """Write a terminal status with the job's results.

    Succeeds from an open state, or again with the same status while no event has been sent
    yet (so a retried finalize can still notify). False if the job is already finished
    otherwise or no longer exists."""
    assert status.is_terminal
    table = _table()
    actions = [JobRecord.status.set(status.value), JobRecord.stage.remove()]
    fields = {"updated_at": _now(), **fields}
    for name, value in fields.items():
        attribute = getattr(JobRecord, name)
        actions.append(attribute.set(value) if value is not None else attribute.remove())
    condition = JobRecord.status.is_in(*_OPEN) | (
        (JobRecord.status == status.value) & JobRecord.notified_at.does_not_exist()
    )
    try:
        table(job_id=job_id).update(actions=actions, condition=condition)
    except UpdateError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


def mark_notified(job_id: str) -> None:
    _table()(job_id=job_id).update(
        actions=[JobRecord.notified_at.set(_now())],
        condition=JobRecord.job_id.exists(),
    )


def _is_condition_failure(error: PutError | UpdateError | DeleteError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"
