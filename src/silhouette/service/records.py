"""The job record (PynamoDB) and every write to it.

State changes are conditional so that a late or duplicate writer never moves a job out of a
terminal state: QUEUED -> PROCESSING -> COMPLETED | REJECTED | FAILED, or QUEUED -> EXPIRED.

Every record also says when the sweeper (silhouette.service.sweeper) should next look at it
(`sweep_at`, indexed by day): when its upload form has expired, when a stage has been running
suspiciously long, or when its retention period ends. `expires_at` is the table's TTL, a
backstop that removes records the sweeper missed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    DynamicMapAttribute,
    JSONAttribute,
    MapAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.pagination import ResultIterator

from silhouette.schema import JobOptions, JobResult, JobStatus
from silhouette.settings import get_settings

_OPEN = (JobStatus.QUEUED.value, JobStatus.PROCESSING.value)
# Attributes for the service's own use, not part of the job as clients see it.
_BOOKKEEPING = frozenset({"notified_at", "request_id", "sweep_day", "sweep_at", "expires_at"})
# How long events may lag behind an upload before the sweeper looks for the photo itself.
UPLOAD_EVENT_GRACE = timedelta(minutes=10)
# How long a stage may run before the sweeper checks that its execution is still alive.
STAGE_CHECK_AFTER = timedelta(minutes=15)


def _now() -> datetime:
    return datetime.now(UTC)


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
    colors_note = UnicodeAttribute(null=True)
    face = JSONAttribute(null=True)
    quality = JSONAttribute(null=True)
    artifacts = MapAttribute(default=dict)
    timings_ms = MapAttribute(default=dict)
    models = MapAttribute(default=dict)
    created_at = UTCDateTimeAttribute(default=_now)
    updated_at = UTCDateTimeAttribute(default=_now)
    notified_at = UTCDateTimeAttribute(null=True)
    # The X-Request-ID of the POST /uploads that created the job (absent on older records).
    request_id = UnicodeAttribute(null=True)
    # End of the retention period: the job and its objects are erased then (TTL attribute).
    expires_at = TTLAttribute(null=True)
    sweep_day = UnicodeAttribute(null=True)
    sweep_at = UTCDateTimeAttribute(null=True)

    by_tenant = TenantJobsIndex()
    due_for_sweep = SweepIndex()

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
    settings = get_settings()
    now = _now()
    sweep_at = now + timedelta(seconds=settings.upload_url_expiry_seconds) + UPLOAD_EVENT_GRACE
    record = _table()(
        job_id=job_id,
        tenant=tenant,
        status=JobStatus.QUEUED.value,
        filename=filename,
        options=options.model_dump(),
        request_id=request_id,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(days=settings.retention_days),
        sweep_day=_day(sweep_at),
        sweep_at=sweep_at,
    )
    record.save(condition=JobRecord.job_id.does_not_exist())
    return record


def get(job_id: str) -> JobRecord:
    """Raises `DoesNotExist` if there is no such job, or only an expired one."""
    record = find_any(job_id)
    if record is None or record.expired_by(_now()):
        raise DoesNotExist()
    return record


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
        tenant,
        scan_index_forward=False,
        limit=limit,
        last_evaluated_key=start_after,
        filter_condition=JobRecord.expires_at.does_not_exist() | (JobRecord.expires_at > _now()),
    )


def due_for_sweep(now: datetime, lookback_days: int) -> Iterator[str]:
    """Ids of the jobs whose `sweep_at` has come, over the last `lookback_days` days."""
    table = _table()
    for days_ago in range(lookback_days, -1, -1):
        day = _day(now - timedelta(days=days_ago))
        for key in table.due_for_sweep.query(day, JobRecord.sweep_at <= now):
            yield key.job_id


def find_any(job_id: str) -> JobRecord | None:
    """The record even past its retention period (for the sweeper, which erases it)."""
    try:
        return _table().get(job_id, consistent_read=True)
    except DoesNotExist:
        return None


def sweep_again_at(job_id: str, when: datetime) -> None:
    """Schedule the sweeper's next look at a job."""
    try:
        _table()(job_id=job_id).update(
            actions=_sweep_actions(when), condition=JobRecord.job_id.exists()
        )
    except UpdateError as error:
        if not _is_condition_failure(error):
            raise


def expire(job_id: str, erase_at: datetime) -> bool:
    """QUEUED -> EXPIRED (the upload never arrived). False if the job has moved on or is gone."""
    record = _table()(job_id=job_id)
    try:
        record.update(
            actions=[
                JobRecord.status.set(JobStatus.EXPIRED.value),
                JobRecord.reason.set("the photo was not uploaded before the upload form expired"),
                JobRecord.updated_at.set(_now()),
                *_sweep_actions(erase_at),
            ],
            condition=JobRecord.status == JobStatus.QUEUED.value,
        )
    except UpdateError as error:
        if _is_condition_failure(error):
            return False
        raise
    return True


def _sweep_actions(when: datetime) -> list[Any]:
    return [JobRecord.sweep_day.set(_day(when)), JobRecord.sweep_at.set(when)]


def _day(moment: datetime) -> str:
    return date.isoformat(moment.astimezone(UTC).date())


def delete(job_id: str, even_processing: bool = False) -> bool:
    """Erase the record unless a stage is running (`even_processing`: its execution has
    ended, so none will). False if one is, or the job is gone."""
    condition = JobRecord.job_id.exists()
    if not even_processing:
        condition &= JobRecord.status != JobStatus.PROCESSING.value
    try:
        _table()(job_id=job_id).delete(condition=condition)
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
                *_sweep_actions(_now() + STAGE_CHECK_AFTER),
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


def finish(
    job_id: str, status: JobStatus, fields: dict[str, Any], erase_at: datetime | None
) -> bool:
    """Write a terminal status with the job's results; the sweeper comes back at `erase_at`
    (the end of the retention period) to erase the job.

    Succeeds from an open state, or again with the same status while no event has been sent
    yet (so a retried finalize can still notify). False if the job is already finished
    otherwise or no longer exists."""
    assert status.is_terminal
    table = _table()
    actions = [JobRecord.status.set(status.value), JobRecord.stage.remove()]
    if erase_at is not None:
        actions += _sweep_actions(erase_at)
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
