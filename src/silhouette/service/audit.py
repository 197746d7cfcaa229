"""The audit log: who read or changed what, for the accesses a tenant must be able to account
for — every read by an `admin` key, every adjustment and approval of measurements, every export
and erasure of the tenant's data. One item per event in the audit table, by tenant, oldest
first; it outlives the tenant's erasure (it names jobs and keys, it holds no photo and no
measurement) and expires after `audit_retention_days`."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from pynamodb.attributes import JSONAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from silhouette.schema import Role
from silhouette.service import cursors
from silhouette.service.tables import bound, utc_now
from silhouette.service.tenants import Caller
from silhouette.settings import get_settings


class AuditAction(StrEnum):
    READ = "read"
    ADJUST = "adjust"
    APPROVE = "approve"
    EXPORT = "export"
    ERASE = "erase"


class AuditItem(Model):
    class Meta:
        table_name = "unbound"  # bound to the configured table on first use (see `_table`)

    tenant = UnicodeAttribute(hash_key=True)
    # The time first, so a tenant's entries sort oldest first; a random tail keeps two entries
    # of the same microsecond apart.
    entry_id = UnicodeAttribute(range_key=True)
    at = UTCDateTimeAttribute()
    action = UnicodeAttribute()
    key = UnicodeAttribute()
    role = UnicodeAttribute()
    target = UnicodeAttribute()
    detail = JSONAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    expires_at = TTLAttribute()


class AuditEntry(BaseModel):
    at: datetime
    action: AuditAction
    key: str = Field(description="the API key's name")
    role: Role
    target: str = Field(description="what was acted on: a request path or a job id")
    detail: dict[str, Any] | None = None
    request_id: str | None = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None = None


def record(
    caller: Caller,
    action: AuditAction,
    target: str,
    detail: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> None:
    now = utc_now()
    _table()(
        tenant=caller.tenant,
        entry_id=f"{now.isoformat()}#{secrets.token_hex(4)}",
        at=now,
        action=action.value,
        key=caller.key_name,
        role=caller.role.value,
        target=target,
        detail=detail,
        request_id=request_id,
        expires_at=now + timedelta(days=get_settings().audit_retention_days),
    ).save()


def entries(tenant: str, limit: int, cursor: str | None) -> AuditPage:
    """One page of the tenant's audit log, oldest first."""
    start = {"tenant": tenant, "entry_id": cursors.decode(cursor, _is_entry_id)} if cursor else None
    query = _table().query(tenant, limit=limit, last_evaluated_key=_item_key(start))
    page = [
        AuditEntry(
            at=item.at,
            action=AuditAction(item.action),
            key=item.key,
            role=Role(item.role),
            target=item.target,
            detail=item.detail,
            request_id=item.request_id,
        )
        for item in query
    ]
    last = query.last_evaluated_key
    next_cursor = cursors.encode(last["entry_id"]["S"]) if last else None
    return AuditPage(entries=page, next_cursor=next_cursor)


def _item_key(start: dict[str, str] | None) -> dict[str, Any] | None:
    return {name: {"S": value} for name, value in start.items()} if start else None


def _is_entry_id(position: Any) -> bool:
    return isinstance(position, str) and "#" in position


def _table() -> type[AuditItem]:
    return bound(AuditItem, get_settings().audit_table)
