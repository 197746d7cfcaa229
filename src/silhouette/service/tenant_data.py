"""Everything a tenant has, exported as one ZIP or erased (GDPR-style access and erasure).

`export_tenant` writes a ZIP to `keys.tenant_export` (`exports/<tenant hash>/<export id>.zip`;
service/tenant_requests.py runs it and hands out the link). Exports are meant to be fetched at
once: the bucket's lifecycle rule for `exports/` removes them after a day, and `erase_tenant`
deletes the tenant's earlier exports with the rest (the tenant hash in their keys finds them).
The archive holds:

    README.txt                                 what this is, when it was made, the counts
    jobs/<job_id>/result.json                  the job as clients see it (GET /jobs/{job_id})
    jobs/<job_id>/measurement_versions.json    the measurements' adjustments, if any
    jobs/<job_id>/<area>/<name>                every object the job stored: `<area>/<job_id>/
                                               <name>` in the bucket, for each area of
                                               `keys.job_prefixes` (uploads/, working/,
                                               artifacts/, results/), e.g. uploads/front
    batches/<batch_id>/batch.json              the batch record (its webhook token left out)
    batches/<batch_id>/source                  the batch's uploaded ZIP or CSV, if kept
    batches/<batch_id>/<name>                  every object under `batches/<batch_id>/` (its
                                               items.csv, report.csv and results.zip)

JSON, CSV and text are deflated; photos and archives are stored as they are. The ZIP is
built in a spooled temporary file (on disk beyond 64 MB), each object copied in chunks, and
uploaded from there: only one listing page of objects is held in memory at a time.

`erase_tenant` deletes every job (its objects, then its record), every batch (its objects and
source, then its record), the tenant's slots item (it names the tenant's jobs) and its exports.
A job that is being analysed is erased too: each stage checks the record after it has run and
deletes what it wrote once the record is gone (handlers.run_stage), and finalize writes nothing
for a missing record. Its objects are deleted once more after the record, for a stage or a
finalize that was writing meanwhile. Jobs and batches are listed again until a listing finds
none left (a running batch may create items meanwhile), so the caller should first stop the
tenant making new requests (revoke its API key).

Records past their retention period are not listed by `JobRecords.for_tenant`: the sweeper
erases those, objects included, when their retention ends."""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import PurePosixPath
from typing import IO, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel
from pynamodb.attributes import MapAttribute

from silhouette.schema import JobStatus
from silhouette.service import keys
from silhouette.service.batch_records import (
    BATCH_RECORDS,
    TENANT_SLOTS,
    BatchRecord,
    DynamoBatchRecords,
    DynamoTenantSlots,
)
from silhouette.service.records import DYNAMODB_RECORDS, JobRecord, JobRecords
from silhouette.service.storage import delete_prefixes, s3_client
from silhouette.service.tables import utc_now
from silhouette.settings import get_settings

# Jobs read per page of the tenant's list.
_PAGE = 100
# The ZIP stays in memory up to this size, then moves to a temporary file.
_SPOOL_BYTES = 64 * 1024 * 1024
# Objects are copied into the ZIP this many bytes at a time.
_CHUNK = 1024 * 1024
# Already compressed: stored, not deflated again.
_COMPRESSED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".avif", ".zip"})
_COMPRESSED_TYPES = ("image/", "application/zip", "application/x-zip-compressed")
# Batch attributes left out of batch.json: a credential, not the tenant's data.
_SECRET_BATCH_ATTRIBUTES = frozenset({"webhook_token"})


class TenantExport(BaseModel):
    jobs: int  # jobs included
    batches: int  # batches included
    files: int  # ZIP entries
    bytes: int  # ZIP size


class TenantErasure(BaseModel):
    jobs: int  # job records erased
    batches: int  # batch records erased
    objects: int  # S3 objects deleted


def export_tenant(
    tenant: str,
    export_id: str,
    s3: Any = None,
    job_records: JobRecords = DYNAMODB_RECORDS,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
) -> TenantExport:
    """One ZIP of everything the tenant has (the layout is in the module's docstring), at
    `keys.tenant_export(tenant, export_id)`."""
    client = s3 or s3_client()
    bucket = get_settings().bucket
    made = utc_now()
    key = keys.tenant_export(tenant, export_id)
    jobs = batches = 0
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        with zipfile.ZipFile(spool, "w") as archive:
            writer = _ArchiveWriter(archive, client, bucket, made)
            for record in _tenant_jobs(tenant, job_records):
                _add_job(writer, record)
                jobs += 1
            for batch in batch_records.for_tenant(tenant):
                _add_batch(writer, batch)
                batches += 1
            writer.text("README.txt", _readme(made, jobs, batches))
            files = len(archive.infolist())
        size = spool.tell()
        spool.seek(0)
        client.upload_fileobj(spool, bucket, key, ExtraArgs={"ContentType": "application/zip"})
    return TenantExport(jobs=jobs, batches=batches, files=files, bytes=size)


def erase_tenant(
    tenant: str,
    s3: Any = None,
    job_records: JobRecords = DYNAMODB_RECORDS,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
    tenant_slots: DynamoTenantSlots = TENANT_SLOTS,
) -> TenantErasure:
    """Erase every job, batch, slot and export of the tenant (see the module's docstring);
    how many records and objects went. Run again, it finds nothing and erases nothing."""
    client = s3 or s3_client()
    bucket = get_settings().bucket
    jobs = batches = objects = 0
    while True:
        erased_jobs, job_objects = _erase_jobs(tenant, client, bucket, job_records)
        erased_batches, batch_objects = _erase_batches(tenant, client, bucket, batch_records)
        jobs, batches = jobs + erased_jobs, batches + erased_batches
        objects += job_objects + batch_objects
        if not erased_jobs and not erased_batches:
            break
    tenant_slots.erase(tenant)
    objects += delete_prefixes(client, bucket, (keys.tenant_exports_prefix(tenant),))
    return TenantErasure(jobs=jobs, batches=batches, objects=objects)


def _tenant_jobs(tenant: str, job_records: JobRecords) -> Iterator[JobRecord]:
    """Every job of the tenant, a page at a time."""
    last_key: dict[str, Any] | None = None
    while True:
        page = job_records.for_tenant(tenant, _PAGE, last_key)
        yield from page.records
        if page.last_key is None:
            return
        last_key = page.last_key


def _erase_jobs(tenant: str, client: Any, bucket: str, job_records: JobRecords) -> tuple[int, int]:
    """One pass over the tenant's jobs: records erased, objects deleted."""
    jobs = objects = 0
    for record in _tenant_jobs(tenant, job_records):
        prefixes = keys.job_prefixes(record.job_id)
        objects += delete_prefixes(client, bucket, prefixes)
        if job_records.delete(record.job_id, even_processing=True):
            jobs += 1
        if record.status == JobStatus.PROCESSING.value:
            # What a stage or finalize wrote between the first deletion and the record's.
            objects += delete_prefixes(client, bucket, prefixes)
    return jobs, objects


def _erase_batches(
    tenant: str, client: Any, bucket: str, batch_records: DynamoBatchRecords
) -> tuple[int, int]:
    """One pass over the tenant's batches: records erased, objects deleted."""
    batches = objects = 0
    for record in batch_records.for_tenant(tenant, include_expired=True):
        prefixes = (keys.batch_prefix(record.batch_id), keys.batch_source(record.batch_id))
        objects += delete_prefixes(client, bucket, prefixes)
        if batch_records.delete(record.batch_id):
            batches += 1
    return batches, objects


def _add_job(writer: _ArchiveWriter, record: JobRecord) -> None:
    folder = f"jobs/{record.job_id}/"
    writer.json(f"{folder}result.json", record.to_result().model_dump(mode="json"))
    if record.measurement_versions is not None:
        writer.json(f"{folder}measurement_versions.json", record.measurement_versions)
    for prefix in keys.job_prefixes(record.job_id):
        area = prefix.split("/", 1)[0]  # uploads/<job_id>/ -> uploads
        writer.objects(prefix, f"{folder}{area}/")


def _add_batch(writer: _ArchiveWriter, record: BatchRecord) -> None:
    folder = f"batches/{record.batch_id}/"
    writer.json(f"{folder}batch.json", _batch_document(record))
    writer.objects(keys.batch_source(record.batch_id), f"{folder}source")
    writer.objects(keys.batch_prefix(record.batch_id), folder)


def _batch_document(record: BatchRecord) -> dict[str, Any]:
    return {
        name: value.as_dict() if isinstance(value, MapAttribute) else value
        for name in sorted(record.get_attributes())
        if (value := getattr(record, name)) is not None and name not in _SECRET_BATCH_ATTRIBUTES
    }


def _readme(made: datetime, jobs: int, batches: int) -> str:
    return f"""Silhouette data export

Made {made.isoformat(timespec="seconds")} (UTC): {jobs} job(s) and {batches} batch(es).

jobs/<job_id>/result.json                the job: status, options, analysis results
jobs/<job_id>/measurement_versions.json  adjustments and approvals of its measurements
jobs/<job_id>/uploads/                   the photo(s) uploaded
jobs/<job_id>/working/                   the photos as decoded for analysis
jobs/<job_id>/artifacts/                 images made from them (masks, cutouts, overlays)
jobs/<job_id>/results/                   the result document as stored
batches/<batch_id>/batch.json            the batch: source, status, counts
batches/<batch_id>/source                the ZIP or CSV uploaded for the batch
batches/<batch_id>/...                   its item list, report and results archive

Only what is still stored is included: photos are erased after analysis unless the job
asked to keep them, and everything is erased at the end of its retention period.
"""


class _ArchiveWriter:
    """Adds entries to an open ZIP: JSON documents and the bucket's objects, streamed."""

    def __init__(self, archive: zipfile.ZipFile, client: Any, bucket: str, made: datetime):
        self.archive = archive
        self.client = client
        self.bucket = bucket
        self.made = made
        self.names: set[str] = set()

    def json(self, name: str, document: Any) -> None:
        text = json.dumps(document, indent=2, sort_keys=True, default=_json_default)
        self.text(name, text + "\n")

    def text(self, name: str, text: str) -> None:
        info = self._entry(name, self.made, compressed=False)
        self.archive.writestr(info, text.encode())

    def objects(self, prefix: str, folder: str) -> None:
        """Every object under `prefix`, each as `folder` + its key after the prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                self._copy(item["Key"], folder + item["Key"][len(prefix) :])

    def _copy(self, key: str, name: str) -> None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return  # deleted since it was listed (the job's photos erased as it ended)
            raise
        compressed = _is_compressed(key, response.get("ContentType", ""))
        info = self._entry(name, response["LastModified"], compressed)
        info.file_size = response["ContentLength"]  # ZIP64 entries for the largest
        body: IO[bytes] = response["Body"]
        with body, self.archive.open(info, "w") as entry:
            shutil.copyfileobj(body, entry, _CHUNK)

    def _entry(self, name: str, modified: datetime, compressed: bool) -> zipfile.ZipInfo:
        if name in self.names:  # the layout would have two objects share a name
            raise ValueError(f"{name!r} is already in the export")
        self.names.add(name)
        info = zipfile.ZipInfo(name, date_time=modified.timetuple()[:6])
        info.compress_type = zipfile.ZIP_STORED if compressed else zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info


def _is_compressed(key: str, content_type: str) -> bool:
    suffix = PurePosixPath(key).suffix.lower()
    return suffix in _COMPRESSED_SUFFIXES or content_type.lower().startswith(_COMPRESSED_TYPES)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
