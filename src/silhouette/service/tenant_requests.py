"""A tenant's export and erasure as requests: the API records the request, answers at once
(202) and invokes the tenant-data function asynchronously, which does the work
(service/tenant_data.py) for as long as it takes (its timeout is 15 minutes; API Gateway gives a
request 29 s, about 170 jobs of kept photos here).

The export's progress is one state document beside the tenant's exports
(`keys.tenant_export_state`): RUNNING, then READY with the archive's counts or FAILED with the
error. GET /tenant/export answers from it and starts an export when there is none, when the last
one failed or never finished, or when asked for a fresh one. An erasure is audited when asked
for and again, with what it erased, when done (GET /tenant/audit shows both)."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from silhouette.schema import Role
from silhouette.service import audit, keys, tenant_data
from silhouette.service.audit import AuditAction
from silhouette.service.observability import logger
from silhouette.service.storage import s3_client
from silhouette.service.tables import utc_now
from silhouette.service.tenants import Caller
from silhouette.service.transfers import DownloadLink, download_link
from silhouette.settings import get_settings

# An export RUNNING for longer than the function may run has died (a crash, a lost invoke).
EXPORT_GIVEN_UP_AFTER = timedelta(minutes=16)


class TenantTask(BaseModel):
    """The tenant-data function's event: what to do, for whom, asked by which key."""

    action: Literal["export", "erase"]
    tenant: str
    role: Role
    key_id: str
    key_name: str
    export_id: str | None = None
    request_id: str | None = None

    @property
    def caller(self) -> Caller:
        return Caller(self.tenant, self.role, self.key_id, self.key_name)


class ExportState(BaseModel):
    status: Literal["RUNNING", "READY", "FAILED"]
    export_id: str
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    jobs: int | None = None
    batches: int | None = None
    files: int | None = None
    bytes: int | None = None


class ExportStatus(ExportState):
    """GET /tenant/export's answer: the state, with a fresh link once READY."""

    download: DownloadLink | None = Field(None, description="once READY: the ZIP (15 minutes)")


class ErasureStarted(BaseModel):
    status: Literal["ERASING"] = "ERASING"
    message: str = "the tenant's data is being erased; GET /tenant/audit shows when it is done"


def export_status(caller: Caller, fresh: bool, request_id: str | None) -> ExportStatus:
    """The tenant's latest export, started first if there is none worth answering with."""
    state = _read_state(caller.tenant)
    given_up = (
        state is not None
        and state.status == "RUNNING"
        and utc_now() - state.started_at > EXPORT_GIVEN_UP_AFTER
    )
    if fresh or state is None or state.status == "FAILED" or given_up:
        state = _start_export(caller, request_id)
    link = None
    if state.status == "READY":
        made = f"{state.started_at:%Y%m%d}"
        link = download_link(
            keys.tenant_export(caller.tenant, state.export_id), f"silhouette-export-{made}.zip"
        )
    return ExportStatus(**state.model_dump(), download=link)


def start_erasure(caller: Caller, request_id: str | None) -> ErasureStarted:
    # Recorded first: an erasure that fails half-way must still be accounted for.
    audit.record(caller, AuditAction.ERASE, "tenant", {"status": "requested"}, request_id)
    _invoke(_task("erase", caller, request_id))
    return ErasureStarted()


def run(task: TenantTask) -> dict[str, Any]:
    """The tenant-data function's work: one export or erasure, its outcome recorded."""
    if task.action == "erase":
        erased = tenant_data.erase_tenant(task.tenant)
        detail = {"status": "done", **erased.model_dump()}
        audit.record(task.caller, AuditAction.ERASE, "tenant", detail, task.request_id)
        return detail
    assert task.export_id is not None
    state = _read_state(task.tenant)
    if state is None or state.export_id != task.export_id or state.status != "RUNNING":
        logger.info("export superseded or already done; nothing to do")  # a retried invoke
        return {"status": "skipped"}
    try:
        export = tenant_data.export_tenant(task.tenant, task.export_id)
    except Exception as error:
        _write_state(task.tenant, _ended(state, "FAILED", error=f"{type(error).__name__}: {error}"))
        raise
    counts = export.model_dump(exclude={"download"})
    _write_state(task.tenant, _ended(state, "READY", **counts))
    detail = {"status": "done", "export_id": task.export_id, **counts}
    audit.record(task.caller, AuditAction.EXPORT, "tenant", detail, task.request_id)
    return {"status": "READY", **counts}


def _start_export(caller: Caller, request_id: str | None) -> ExportState:
    state = ExportState(status="RUNNING", export_id=secrets.token_hex(16), started_at=utc_now())
    _write_state(caller.tenant, state)
    detail = {"status": "requested", "export_id": state.export_id}
    audit.record(caller, AuditAction.EXPORT, "tenant", detail, request_id)
    _invoke(_task("export", caller, request_id, state.export_id))
    return state


def _ended(state: ExportState, status: Literal["READY", "FAILED"], **fields: Any) -> ExportState:
    return state.model_copy(update={"status": status, "finished_at": utc_now(), **fields})


def _task(
    action: Literal["export", "erase"],
    caller: Caller,
    request_id: str | None,
    export_id: str | None = None,
) -> TenantTask:
    return TenantTask(
        action=action,
        tenant=caller.tenant,
        role=caller.role,
        key_id=caller.key_id,
        key_name=caller.key_name,
        export_id=export_id,
        request_id=request_id,
    )


def _invoke(task: TenantTask) -> None:
    boto3.client("lambda").invoke(
        FunctionName=get_settings().tenant_data_function,
        InvocationType="Event",
        Payload=task.model_dump_json().encode(),
    )


def _read_state(tenant: str) -> ExportState | None:
    # Listed before it is read: S3 answers a missing key with 403, not 404, to a role that
    # may not list the bucket, and the API's role may list only under exports/.
    client, bucket, key = s3_client(), get_settings().bucket, keys.tenant_export_state(tenant)
    if not client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents"):
        return None
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchKey":  # erased since it was listed
            return None
        raise
    return ExportState.model_validate(json.loads(body))


def _write_state(tenant: str, state: ExportState) -> None:
    s3_client().put_object(
        Bucket=get_settings().bucket,
        Key=keys.tenant_export_state(tenant),
        Body=state.model_dump_json().encode(),
        ContentType="application/json",
    )
