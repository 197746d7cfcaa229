"""The batch record: one per batch, in its own table (`BatchesTable` in template.yaml). Its items
are ordinary job records that name the batch (records.py, the `batch-items` index); the batch
record holds what is the batch's own: who asked, its source, its state, which items have ended
(so progress is one read), and once it is done its counts and the keys of its report and
results archive. The same table holds each tenant's slots (`TenantSlots`), which bound how many
batch items a tenant runs at once.

A batch is WAITING for its source (a ZIP or CSV upload, or every photo of a PHOTOS batch),
RUNNING once its execution has started, then COMPLETED (every item has ended, whatever each
item's status) or REJECTED (its source was refused: not a ZIP, a zip bomb, no usable row);
FAILED when its execution ended otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pynamodb.attributes import (
    DynamicMapAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.condition import Condition, size
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from silhouette.schema import JobOptions
from silhouette.service.tables import (
    act_if,
    bound,
    delete_if,
    is_condition_failure,
    update_if,
    utc_now,
)
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
    PHOTOS = "photos"  # photos uploaded one by one, a job each from the start


_OPEN = (BatchStatus.WAITING.value, BatchStatus.RUNNING.value)


class TenantBatchesIndex(GlobalSecondaryIndex["BatchRecord"]):
    """A tenant's batches, keys only (the `tenant-batches` index in template.yaml). The
    tenants' slots have no `tenant` attribute, so the index holds batches alone."""

    class Meta:
        index_name = "tenant-batches"
        projection = KeysOnlyProjection()

    tenant = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


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
    # Job id -> terminal status of each item that has ended, set by its finalize: progress
    # reads one record instead of every item's, and a retried finalize sets the same entry.
    ended = MapAttribute(default=dict)
    # A PHOTOS batch's items whose photo has arrived: it starts once all have (a set, so a
    # repeated upload event adds nothing).
    arrived = UnicodeSetAttribute(null=True)
    report_key = UnicodeAttribute(null=True)
    results_key = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    webhook_url = UnicodeAttribute(null=True)
    # The token its deliveries carry, kept only until Expand has put it in their connection.
    webhook_token = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utc_now)
    updated_at = UTCDateTimeAttribute(default=utc_now)
    finished_at = UTCDateTimeAttribute(null=True)
    notified_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    by_tenant = TenantBatchesIndex()

    @property
    def job_options(self) -> JobOptions:
        return JobOptions.model_validate(self.options.as_dict())

    @property
    def ended_items(self) -> dict[str, str]:
        return dict(self.ended.as_dict()) if self.ended is not None else {}


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
        total: int | None = None,
        webhook: tuple[str, str] | None = None,
    ) -> BatchRecord:
        """`webhook`: the URL its event goes to, and the token deliveries carry."""
        now = utc_now()
        record = _table()(
            batch_id=batch_id,
            tenant=tenant,
            source=source.value,
            status=BatchStatus.WAITING.value,
            options=options.model_dump(),
            concurrency=concurrency,
            total=total,
            request_id=request_id,
            webhook_url=webhook[0] if webhook else None,
            webhook_token=webhook[1] if webhook else None,
            ended={},
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

    def for_tenant(self, tenant: str, include_expired: bool = False) -> Iterator[BatchRecord]:
        """The tenant's batches, newest first, each read from the table (the index holds keys
        only); with `include_expired` also those past their retention period."""
        for key in _table().by_tenant.query(tenant, scan_index_forward=False):
            try:
                record = _table().get(key.batch_id, consistent_read=True)
            except DoesNotExist:
                continue  # deleted since the index was read
            expired = record.expires_at is not None and record.expires_at <= utc_now()
            if include_expired or not expired:
                yield record

    def delete(self, batch_id: str) -> bool:
        """Erase the batch record (never a tenant's slots, which share the table). False if
        there is none."""
        return delete_if(_table()(batch_id=batch_id), BatchRecord.tenant.exists())

    def start(self, batch_id: str) -> bool:
        """WAITING -> RUNNING. False if it had already started or ended."""
        changes = {"status": BatchStatus.RUNNING.value}
        return _change(batch_id, changes, BatchRecord.status == BatchStatus.WAITING.value)

    def webhook_subscribed(self, batch_id: str) -> bool:
        """Its webhook's resources exist: the token is no longer needed here."""
        return _change(batch_id, {"webhook_token": None}, BatchRecord.batch_id.exists())

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

    def photo_arrived(self, batch_id: str, job_id: str) -> BatchRecord | None:
        """Note that a WAITING batch's photo has arrived; the record as it is then (None if
        the batch is gone or no longer WAITING)."""
        table = _table()
        record = table(batch_id=batch_id)
        actions = [table.arrived.add({job_id}), table.updated_at.set(utc_now())]
        waiting = table.status == BatchStatus.WAITING.value
        return record if act_if(record, actions, waiting) else None

    def item_ended(self, batch_id: str, job_id: str, status: str) -> bool:
        """Note that one of the batch's items has ended with `status`."""
        table = _table()
        actions = [table.ended[job_id].set(status), table.updated_at.set(utc_now())]
        return act_if(table(batch_id=batch_id), actions, table.batch_id.exists())

    def mark_notified(self, batch_id: str) -> bool:
        return _change(batch_id, {"notified_at": utc_now()}, BatchRecord.batch_id.exists())


class TenantSlots(Model):
    """How many batch items a tenant runs at once, all its batches together: one item per
    tenant in the batches table (its key cannot be a batch id, which is hexadecimal), holding
    the jobs that have a slot. A job takes its slot before its pipeline starts and gives it
    back when it ends (finalize), or when it expires without having run (the sweeper)."""

    class Meta:
        table_name = "unbound"

    batch_id = UnicodeAttribute(hash_key=True)  # "tenant:<tenant>"
    holders = MapAttribute(default=dict)  # job id -> when it took its slot

    @staticmethod
    def key(tenant: str) -> str:
        return f"tenant:{tenant}"


class DynamoTenantSlots:
    """The tenants' slots in the DynamoDB table the settings name."""

    def take(self, tenant: str, job_id: str, limit: int) -> bool:
        """A slot for the job (again True if it has one); False when all `limit` are taken."""
        table = bound(TenantSlots, get_settings().batch_table)
        slots = table(batch_id=TenantSlots.key(tenant))
        actions = [table.holders[job_id].set(utc_now().isoformat())]
        free = (size(table.holders) < limit) | table.holders[job_id].exists()
        if act_if(slots, actions, table.batch_id.exists() & free):
            return True
        first = table(batch_id=slots.batch_id, holders={job_id: utc_now().isoformat()})
        try:  # the tenant's first item ever
            first.save(condition=table.batch_id.does_not_exist())
        except PutError as error:
            if is_condition_failure(error):
                return False  # full (or another first item won the race: try again later)
            raise
        return True

    def give_back(self, tenant: str, job_id: str) -> None:
        table = bound(TenantSlots, get_settings().batch_table)
        slots = table(batch_id=TenantSlots.key(tenant))
        act_if(slots, [table.holders[job_id].remove()], table.batch_id.exists())

    def erase(self, tenant: str) -> bool:
        """Remove the tenant's slots item (it names the tenant's jobs). False if it has none."""
        table = bound(TenantSlots, get_settings().batch_table)
        return delete_if(table(batch_id=TenantSlots.key(tenant)), table.batch_id.exists())

    def holders(self, tenant: str) -> dict[str, str]:
        table = bound(TenantSlots, get_settings().batch_table)
        try:
            return dict(table.get(TenantSlots.key(tenant), consistent_read=True).holders.as_dict())
        except DoesNotExist:
            return {}


def _change(batch_id: str, changes: dict[str, Any], condition: Condition) -> bool:
    return update_if(_table()(batch_id=batch_id), {**changes, "updated_at": utc_now()}, condition)


def _table() -> type[BatchRecord]:
    return bound(BatchRecord, get_settings().batch_table)


BATCH_RECORDS = DynamoBatchRecords()
TENANT_SLOTS = DynamoTenantSlots()
