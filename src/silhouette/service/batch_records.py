"""The batch record: one per batch, in its own table (`BatchesTable` in template.yaml). Its items
are ordinary job records that name the batch (records.py, the `batch-items` index); the batch
record holds what is the batch's own: who asked, its source, its state, and once it is done its
counts and the keys of its report and results archive.

A batch is WAITING for its source (a ZIP or CSV upload), RUNNING once its execution has started,
then COMPLETED (every item has ended, whatever each item's status) or REJECTED (its source was
refused: not a ZIP, a zip bomb, no usable row); FAILED when its execution ended otherwise."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pynamodb.attributes import (
    DynamicMapAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from silhouette.schema import JobOptions
from silhouette.service.tables import bound, is_condition_failure, update_if, utc_now
from silhouette.settings import get_settings


class BatchStatus(StrEnum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self not in (BatchStatus.WAITING, BatchStatus.RUNNING)


class BatchSource(StrEnum):
    ZIP = "zip"  # one archive of photos
    CSV = "csv"  # rows of `id,image_url[,more columns]`


_OPEN = (BatchStatus.WAITING.value, BatchStatus.RUNNING.value)


class BatchRecord(Model):
    class Meta:
        table_name = "unbound"  # bound to the configured table on first use (see `_table`)

    batch_id = UnicodeAttribute(hash_key=True)
    tenant = UnicodeAttribute()
    source = UnicodeAttribute()
    status = UnicodeAttribute()
    options = DynamicMapAttribute(default=dict)
    concurrency = NumberAttribute()
    total = NumberAttribute(null=True)  # known once the source has been read
    reason = UnicodeAttribute(null=True)
    counts = MapAttribute(null=True)  # items per job status, once COMPLETED
    report_key = UnicodeAttribute(null=True)
    results_key = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utc_now)
    updated_at = UTCDateTimeAttribute(default=utc_now)
    finished_at = UTCDateTimeAttribute(null=True)
    notified_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    @property
    def job_options(self) -> JobOptions:
        return JobOptions.model_validate(self.options.as_dict())


class BatchIdTaken(Exception):
    pass


class DynamoBatchRecords:
    """Batch records in the DynamoDB table the settings name. Changes are conditional, so a
    retried or late step never moves a batch out of a terminal state."""

    def create(
        self,
        batch_id: str,
        tenant: str,
        source: BatchSource,
        options: JobOptions,
        concurrency: int,
        request_id: str | None = None,
    ) -> BatchRecord:
        now = utc_now()
        record = _table()(
            batch_id=batch_id,
            tenant=tenant,
            source=source.value,
            status=BatchStatus.WAITING.value,
            options=options.model_dump(),
            concurrency=concurrency,
            request_id=request_id,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(days=get_settings().retention_days),
        )
        try:
            record.save(condition=BatchRecord.batch_id.does_not_exist())
        except PutError as error:
            if is_condition_failure(error):
                raise BatchIdTaken(batch_id) from error
            raise
        return record

    def find(self, batch_id: str) -> BatchRecord | None:
        try:
            record = _table().get(batch_id, consistent_read=True)
        except DoesNotExist:
            return None
        expired = record.expires_at is not None and record.expires_at <= utc_now()
        return None if expired else record

    def start(self, batch_id: str) -> bool:
        """WAITING -> RUNNING. False if it had already started or ended."""
        changes = {"status": BatchStatus.RUNNING.value}
        return _change(batch_id, changes, BatchRecord.status == BatchStatus.WAITING.value)

    def expanded(self, batch_id: str, total: int) -> bool:
        """The source has been read into `total` items."""
        return _change(batch_id, {"total": total}, BatchRecord.status.is_in(*_OPEN))

    def finish(
        self,
        batch_id: str,
        status: BatchStatus,
        reason: str | None = None,
        counts: dict[str, int] | None = None,
        report_key: str | None = None,
        results_key: str | None = None,
    ) -> bool:
        """A terminal status with its outcome. Allowed from an open state, and again with the
        same status until its event has been sent (a retried finishing step)."""
        assert status.is_terminal
        changes = {
            "status": status.value,
            "reason": reason,
            "counts": counts,
            "report_key": report_key,
            "results_key": results_key,
            "finished_at": utc_now(),
        }
        condition = BatchRecord.status.is_in(*_OPEN) | (
            (BatchRecord.status == status.value) & BatchRecord.notified_at.does_not_exist()
        )
        return _change(batch_id, changes, condition)

    def mark_notified(self, batch_id: str) -> bool:
        return _change(batch_id, {"notified_at": utc_now()}, BatchRecord.batch_id.exists())


def _change(batch_id: str, changes: dict[str, Any], condition: Condition) -> bool:
    return update_if(_table()(batch_id=batch_id), {**changes, "updated_at": utc_now()}, condition)


def _table() -> type[BatchRecord]:
    return bound(BatchRecord, get_settings().batch_table)


BATCH_RECORDS = DynamoBatchRecords()
