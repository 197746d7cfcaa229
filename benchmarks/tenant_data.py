"""How long a tenant's export and erasure take on the embedded stack, from the API request to
the tenant-data function's end (it has 15 minutes). Seeds JOBS finished jobs, each with a few
photo-sized objects, then times GET /tenant/export until it is ready and DELETE /tenant/data
until the audit log says it is done. Prints jobs and megabytes per second; asserts nothing.

    python benchmarks/tenant_data.py [jobs]     # default 100
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import requests

from silhouette.local.gateway import KeyHolder
from silhouette.local.stack import EmbeddedStack
from silhouette.schema import JobOptions, JobStatus, Role
from silhouette.service import keys
from silhouette.service.records import DYNAMODB_RECORDS, new_job_id
from silhouette.settings import get_settings

KEY = "benchmark-admin-key-0123456789"
TENANT = "bench"
# What a kept single photo leaves: upload, working image, masks, cutout, overlay, result.
OBJECTS = {
    "upload": 400_000,
    "working": 900_000,
    "person_mask": 30_000,
    "cutout": 700_000,
    "clothing_mask": 30_000,
    "overlay": 250_000,
}


def seed(stack: EmbeddedStack, count: int) -> int:
    """`count` COMPLETED jobs of TENANT with their objects; the bytes stored."""
    s3, bucket = stack.client("s3"), stack.outputs["PhotoBucketName"]
    stored = 0
    for _ in range(count):
        job_id = new_job_id()
        DYNAMODB_RECORDS.create_queued(job_id, TENANT, "photo.jpg", JobOptions(), None)
        artifacts = {}
        for name, size in OBJECTS.items():
            key = {
                "upload": keys.upload(job_id),
                "working": keys.working_image(job_id, "image"),
            }.get(name) or keys.artifact(job_id, name, "png")
            s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))  # images: incompressible
            artifacts[name] = key
            stored += size
        fields = {"artifacts": artifacts}
        assert DYNAMODB_RECORDS.finish(job_id, JobStatus.COMPLETED, fields, erase_at=None)
    return stored


def erased_detail(api_url: str, headers: dict[str, str]) -> dict | None:
    """What the erasure's audit entry says it erased, once it is done."""
    entries = requests.get(f"{api_url}/tenant/audit?limit=100", headers=headers).json()["entries"]
    done = [
        e["detail"] for e in entries if e["action"] == "erase" and e["detail"]["status"] == "done"
    ]
    return done[-1] if done else None


def main(count: int) -> None:
    with (
        tempfile.TemporaryDirectory() as scratch,
        EmbeddedStack(
            log_path=Path(scratch) / "lambda.log",
            api_keys={KEY: KeyHolder(TENANT, Role.ADMIN)},
            provisioned=True,
        ) as stack,
    ):
        get_settings.cache_clear()
        stored = seed(stack, count)
        headers = {"x-api-key": KEY}
        started = time.perf_counter()
        while (
            export := requests.get(f"{stack.api_url}/tenant/export", headers=headers)
        ).status_code == 202:
            time.sleep(0.2)
        exported = time.perf_counter() - started
        export.raise_for_status()
        started = time.perf_counter()
        requests.delete(f"{stack.api_url}/tenant/data", headers=headers).raise_for_status()
        while not (erasure := erased_detail(stack.api_url, headers)):
            time.sleep(0.2)
        erased = time.perf_counter() - started
    megabytes = stored / 1e6
    print(f"{count} jobs, {megabytes:.0f} MB stored")
    rate = f"{count / exported:.0f} jobs/s, {megabytes / exported:.0f} MB/s"
    archive = export.json()
    print(
        f"export: {exported:.1f} s ({rate}), "
        f"ZIP {archive['bytes'] / 1e6:.0f} MB in {archive['files']} files"
    )
    print(f"erase:  {erased:.1f} s ({count / erased:.0f} jobs/s), {erasure}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
