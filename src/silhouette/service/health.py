"""Dependency checks for GET /health: can this deployment reach its bucket, table and state
machine? Each check is one cheap read, run concurrently, with its latency."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any, Literal

import boto3
from pydantic import BaseModel

from silhouette.service.keys import UPLOAD_PREFIX
from silhouette.service.storage import s3_client
from silhouette.settings import get_settings


class DependencyHealth(BaseModel):
    status: Literal["ok", "error"]
    latency_ms: int
    error: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyHealth]


def _storage() -> None:
    # A listing under a job prefix, not HeadBucket: the API's role may list only those.
    s3_client().list_objects_v2(Bucket=get_settings().bucket, Prefix=UPLOAD_PREFIX, MaxKeys=1)


def _table() -> None:
    table = boto3.client("dynamodb").describe_table(TableName=get_settings().table)["Table"]
    if table["TableStatus"] not in ("ACTIVE", "UPDATING"):
        raise RuntimeError(f"table is {table['TableStatus']}")


def _state_machine() -> None:
    machine = boto3.client("stepfunctions").describe_state_machine(
        stateMachineArn=get_settings().state_machine_arn
    )
    if machine.get("status", "ACTIVE") != "ACTIVE":
        raise RuntimeError(f"state machine is {machine['status']}")


CHECKS: dict[str, Callable[[], None]] = {
    "storage": _storage,
    "table": _table,
    "state_machine": _state_machine,
}


def _run(check: Callable[[], None]) -> DependencyHealth:
    started = perf_counter()
    error: Any = None
    try:
        check()
    except Exception as failure:  # noqa: BLE001 - any failure makes the dependency unhealthy
        # The error's kind, not its text: /health is public and messages can name resources.
        error = (
            getattr(failure, "response", {}).get("Error", {}).get("Code") or type(failure).__name__
        )
    latency_ms = round((perf_counter() - started) * 1000)
    return DependencyHealth(status="error" if error else "ok", latency_ms=latency_ms, error=error)


def check_health() -> Health:
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        results = dict(zip(CHECKS, pool.map(_run, CHECKS.values()), strict=True))
    healthy = all(result.status == "ok" for result in results.values())
    return Health(status="ok" if healthy else "degraded", dependencies=results)
