"""Batches: a ZIP of photos or a CSV of photo URLs, analysed as one job per item.

The client asks for a batch (`create_batch`) and uploads its source through a presigned POST;
the upload event starts the batch state machine (batch.asl.json), named after the batch:

1. `expand` reads the source (service/batch_archive.py, service/url_fetch.py) into one QUEUED
   job per item, stores each ZIP entry as that job's upload, records items that cannot be
   analysed (a nested archive, a text file, a CSV row without a URL) as REJECTED at once, and
   writes the list of jobs to run to S3, where the Map reads it (it never travels in the state);
2. the Map runs `prepare_item` (fetches a URL item's photo; a refused fetch is the item's
   REJECTED) and then the pipeline state machine on each item, as many at once as the batch
   allows, each execution named after its job like any other job's;
3. `finish_batch` counts the items' statuses from their job records, writes the report CSV
   and the results archive, and announces the batch on the job bus (`Batch Completed`)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from silhouette.errors import RejectedInput
from silhouette.names import CUTOUT, OVERLAY, RESULT_ARTIFACT
from silhouette.schema import (
    BatchItem,
    FinalizeRequest,
    JobOptions,
    JobResult,
    JobStatus,
    PipelineState,
    Stage,
    StageResult,
)
from silhouette.service import keys
from silhouette.service.batch_archive import read_archive
from silhouette.service.batch_output import ReportRow, ZipEntry, report_csv, write_zip_to_s3
from silhouette.service.batch_records import (
    BATCH_RECORDS,
    BatchRecord,
    BatchSource,
    BatchStatus,
    DynamoBatchRecords,
)
from silhouette.service.finalize import finalize
from silhouette.service.notifications import EventPublisher, JobEvent
from silhouette.service.observability import logger
from silhouette.service.records import DYNAMODB_RECORDS, JobRecord, JobRecords, new_job_id
from silhouette.service.storage import S3Store
from silhouette.service.transfers import UploadForm, presigned_upload, refuse_oversize, safe_stem
from silhouette.service.uploads import UploadedObject, pipeline_state
from silhouette.service.url_fetch import FetchLimits, fetch_image, parse_url_list
from silhouette.settings import get_settings

SOURCE_TYPES = {BatchSource.ZIP: "application/zip", BatchSource.CSV: "text/csv"}
BATCH_COMPLETED = "Batch Completed"


class BatchNotFound(Exception):
    pass


class BatchPlan(BaseModel):
    """What `expand` hands the batch state machine: where the Map's item list is."""

    batch_id: str
    bucket: str
    manifest_key: str
    to_run: int = Field(description="items the Map runs (the others were rejected at once)")
    concurrency: int


class ItemStart(BaseModel):
    """What `prepare_item` hands the Map: the pipeline's input, or nothing to run."""

    start: bool
    state: PipelineState | None = None


class BatchProgress(BaseModel):
    """Where a batch stands: what GET /batches/{id} returns."""

    batch_id: str
    status: BatchStatus
    source: BatchSource
    reason: str | None = Field(None, description="why the batch was REJECTED or FAILED")
    total: int | None = Field(None, description="items, once the source has been read")
    done: int = Field(description="items that have ended, whatever their status")
    counts: dict[JobStatus, int] = Field(description="items per job status")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


# The client's side ---------------------------------------------------------------------------


def create_batch(
    tenant: str,
    source: BatchSource,
    options: JobOptions,
    concurrency: int | None = None,
    size: int | None = None,
    request_id: str | None = None,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
) -> tuple[BatchRecord, UploadForm]:
    """A WAITING batch and the presigned POST for its source (of `size` bytes, as the client
    declares it); the upload starts it."""
    settings = get_settings()
    refuse_oversize(size, settings.max_batch_source_bytes)
    batch_id = new_job_id()
    allowed = min(concurrency or settings.batch_concurrency, settings.batch_concurrency)
    record = batch_records.create(batch_id, tenant, source, options, allowed, request_id)
    form = presigned_upload(
        keys.batch_source(batch_id), SOURCE_TYPES[source], settings.max_batch_source_bytes
    )
    logger.info("batch created", extra={"batch_id": batch_id, "source": source.value})
    return record, form


def owned_batch(
    tenant: str, batch_id: str, batch_records: DynamoBatchRecords = BATCH_RECORDS
) -> BatchRecord:
    record = batch_records.find(batch_id)
    if record is None or record.tenant != tenant:
        raise BatchNotFound(batch_id)
    return record


def progress(record: BatchRecord, job_records: JobRecords = DYNAMODB_RECORDS) -> BatchProgress:
    counts = Counter(JobStatus(job.status) for job in job_records.for_batch(record.batch_id))
    return BatchProgress(
        batch_id=record.batch_id,
        status=BatchStatus(record.status),
        source=BatchSource(record.source),
        reason=record.reason,
        total=int(record.total) if record.total is not None else None,
        done=sum(count for status, count in counts.items() if status.is_terminal),
        counts=dict(counts),
        created_at=record.created_at,
        updated_at=record.updated_at,
        finished_at=record.finished_at,
    )


# The batch state machine's steps --------------------------------------------------------------


def start_batch(
    upload: UploadedObject,
    stepfunctions: Any,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
) -> bool:
    """Start the batch whose source just arrived. False if there is no such batch or it had
    started already (upload events come at least once)."""
    batch_id = keys.batch_id_from_source(upload.key)
    record = batch_records.find(batch_id) if batch_id else None
    if (
        upload.bucket != get_settings().bucket
        or record is None
        or record.status != BatchStatus.WAITING.value
    ):
        logger.info("batch source ignored: no such batch, or started before")
        return False
    try:
        stepfunctions.start_execution(
            stateMachineArn=get_settings().batch_state_machine_arn,
            name=record.batch_id,
            input=json.dumps({"batch_id": record.batch_id}),
        )
    except stepfunctions.exceptions.ExecutionAlreadyExists:
        return False
    # After the start, so that a failed start is retried with the next delivery of the event.
    batch_records.start(record.batch_id)
    logger.info("batch started", extra={"batch_id": record.batch_id})
    return True


def expand(
    batch_id: str,
    s3: Any,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
    job_records: JobRecords = DYNAMODB_RECORDS,
    publisher: EventPublisher | None = None,
) -> BatchPlan:
    """Read the batch's source into its items (see the module's docstring). A source that
    cannot be read at all (not a ZIP, a zip bomb, a CSV without rows) makes the batch REJECTED
    with the reason, and a plan with nothing to run."""
    settings = get_settings()
    record = batch_records.find(batch_id)
    if record is None:
        raise RejectedInput(f"batch {batch_id} no longer exists")
    bucket = settings.bucket
    with tempfile.TemporaryFile() as source:
        # GetObject streamed, not download_fileobj, whose HeadObject needs s3:ListBucket too.
        body = s3.get_object(Bucket=bucket, Key=keys.batch_source(batch_id))["Body"]
        shutil.copyfileobj(body, source)
        source.seek(0)
        try:
            items = _read_items(record, source)
        except RejectedInput as rejection:
            batch_records.finish(batch_id, BatchStatus.REJECTED, reason=rejection.reason)
            logger.info("batch rejected", extra={"reason": rejection.reason})
            return BatchPlan(
                batch_id=batch_id, bucket=bucket, manifest_key="", to_run=0, concurrency=1
            )
        to_run = []
        for item, data, rejection in items:
            job_id = new_job_id()
            job = job_records.create_queued(
                job_id,
                record.tenant,
                item.item,
                record.job_options,
                record.request_id,
                batch=item,
            )
            if rejection is not None:
                reject_item(job, rejection, publisher, job_records)
                continue
            if data is not None:
                s3.put_object(Bucket=bucket, Key=keys.upload(job_id), Body=data)
            to_run.append(job_id)
    manifest = "job_id\n" + "".join(f"{job_id}\n" for job_id in to_run)
    s3.put_object(Bucket=bucket, Key=keys.batch_manifest(batch_id), Body=manifest.encode())
    batch_records.expanded(batch_id, len(items))
    logger.info("batch expanded", extra={"items": len(items), "to_run": len(to_run)})
    return BatchPlan(
        batch_id=batch_id,
        bucket=bucket,
        manifest_key=keys.batch_manifest(batch_id),
        to_run=len(to_run),
        concurrency=int(record.concurrency),
    )


_Item = tuple[BatchItem, bytes | None, str | None]  # the item, its photo or its rejection


def _read_items(record: BatchRecord, source: Any) -> list[_Item]:
    """Every item of the source, in order; RejectedInput when the source as a whole is refused."""
    settings = get_settings()
    batch_id = record.batch_id
    if BatchSource(record.source) == BatchSource.ZIP:
        items: list[_Item] = [
            (
                BatchItem(batch_id=batch_id, index=index, item=entry.name, source=entry.name),
                entry.data,
                entry.rejection,
            )
            for index, entry in enumerate(read_archive(source))
        ]
    else:
        try:
            text = source.read().decode("utf-8")
        except UnicodeDecodeError as error:
            raise RejectedInput("the CSV is not UTF-8 text") from error
        items = [
            (
                BatchItem(
                    batch_id=batch_id,
                    index=index,
                    item=row.id,
                    source=row.image_url,
                    url=row.image_url,
                    extra=row.extra,
                ),
                None,
                row.problem,
            )
            for index, row in enumerate(parse_url_list(text, settings.max_batch_items))
        ]
    if not items:
        raise RejectedInput("the batch has no items")
    if len(items) > settings.max_batch_items:
        raise RejectedInput(f"the batch has more than {settings.max_batch_items} items")
    return items


def prepare_item(
    job_id: str,
    s3: Any,
    job_records: JobRecords = DYNAMODB_RECORDS,
    publisher: EventPublisher | None = None,
) -> ItemStart:
    """The pipeline's input for one item, its photo fetched first if it is a URL. Nothing to
    run when the job has been deleted or has ended meanwhile, or its photo could not be had."""
    settings = get_settings()
    record = job_records.find(job_id)
    if record is None or record.status != JobStatus.QUEUED.value:
        return ItemStart(start=False)
    item = BatchItem.model_validate(record.batch)
    upload_key = keys.upload(job_id)
    listed = s3.list_objects_v2(Bucket=settings.bucket, Prefix=upload_key, MaxKeys=1)
    if listed.get("Contents"):  # a ZIP entry, or a photo fetched by an earlier attempt
        size, time = listed["Contents"][0]["Size"], listed["Contents"][0]["LastModified"]
    elif item.url is not None:
        limits = FetchLimits(
            max_bytes=settings.max_upload_bytes, allow_loopback=settings.fetch_allow_loopback
        )
        try:
            photo = fetch_image(item.url, limits)
        except RejectedInput as rejection:
            reject_item(record, rejection.reason, publisher, job_records)
            return ItemStart(start=False)
        s3.put_object(
            Bucket=settings.bucket, Key=upload_key, Body=photo.data, ContentType=photo.content_type
        )
        size, time = len(photo.data), datetime.now(UTC)
    else:
        raise RejectedInput(f"item {item.index} of batch {item.batch_id} has no photo")
    upload = UploadedObject(bucket=settings.bucket, key=upload_key, size=size, time=time)
    return ItemStart(start=True, state=pipeline_state(upload, record))


def reject_item(
    record: JobRecord,
    reason: str,
    publisher: EventPublisher | None = None,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> None:
    """End an item that cannot be analysed as REJECTED, as ingest rejects a photo: record,
    result.json and event."""
    bucket = get_settings().bucket
    never_stored = UploadedObject(
        bucket=bucket, key=keys.upload(record.job_id), size=None, time=datetime.now(UTC)
    )
    state = pipeline_state(never_stored, record).model_copy(
        update={"stages": {Stage.INGEST: StageResult(outcome="rejected", reason=reason)}}
    )
    request = FinalizeRequest(terminal=JobStatus.REJECTED, job=state)
    finalize(request, S3Store(bucket), publisher, job_records)


def finish_batch(
    batch_id: str,
    s3: Any,
    publisher: EventPublisher,
    failure: str | None = None,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> BatchProgress:
    """Count the items, write the report and the results archive, record the batch COMPLETED
    (FAILED with `failure`, the error that stopped its execution) and announce it."""
    record = batch_records.find(batch_id)
    if record is None:
        raise RejectedInput(f"batch {batch_id} no longer exists")
    if record.status == BatchStatus.REJECTED.value:
        status, reason = BatchStatus.REJECTED, record.reason
    elif failure is not None:
        status, reason = BatchStatus.FAILED, failure
    else:
        status, reason = BatchStatus.COMPLETED, None
    items = list(job_records.for_batch(batch_id))
    counts = Counter(job.status for job in items)
    report_key = results_key = None
    if items:
        report_key, results_key = write_outputs(record, items, s3)
    written = batch_records.finish(batch_id, status, reason, dict(counts), report_key, results_key)
    final = progress(batch_records.find(batch_id) or record, job_records)
    if written:
        publisher.publish(JobEvent(BATCH_COMPLETED, batch_event_detail(record, final)))
        batch_records.mark_notified(batch_id)
    logger.info("batch finished", extra={"status": status.value, "counts": dict(counts)})
    return final


def batch_event_detail(record: BatchRecord, final: BatchProgress) -> dict[str, Any]:
    return {
        "schema_version": "1",
        "batch_id": record.batch_id,
        "tenant": record.tenant,
        "status": final.status.value,
        "reason": final.reason,
        "total": final.total or 0,
        "counts": {status.value: count for status, count in final.counts.items()},
        "report_key": keys.batch_report(record.batch_id) if final.total else None,
        "results_key": keys.batch_results(record.batch_id) if final.total else None,
    }


def write_outputs(record: BatchRecord, items: list[JobRecord], s3: Any) -> tuple[str, str]:
    """The report CSV and the results archive (a folder per item with its artifacts and
    result.json, and the report); their keys."""
    bucket = get_settings().bucket
    results = [job.to_result() for job in items]
    paths = {result.job_id: _archive_paths(result) for result in results}
    rows = [_report_row(result, paths[result.job_id]) for result in results]
    report = report_csv(rows)
    report_key = keys.batch_report(record.batch_id)
    s3.put_object(Bucket=bucket, Key=report_key, Body=report, ContentType="text/csv")

    def read(key: str) -> Callable[[], bytes]:
        return lambda: s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    entries = [
        ZipEntry(paths[result.job_id][name], read(key))
        for result in results
        for name, key in result.artifacts.items()
    ]
    entries.append(ZipEntry("report.csv", lambda: report))
    results_key = keys.batch_results(record.batch_id)
    write_zip_to_s3(s3, bucket, results_key, entries)
    return report_key, results_key


def _archive_paths(job: JobResult) -> dict[str, str]:
    """Where each of the item's artifacts goes in the results archive: a folder named after
    its place and its name, made safe."""
    item = job.batch
    assert item is not None  # a batch's job
    folder = f"{item.index + 1:04d}-{safe_stem(item.item) or job.job_id[:8]}"
    return {
        name: f"{folder}/{name}{PurePosixPath(key).suffix}" for name, key in job.artifacts.items()
    }


def _report_row(job: JobResult, files: dict[str, str]) -> ReportRow:
    item = job.batch
    assert item is not None
    face = job.face if job.face and job.face.status == "ok" else None
    age = face.age if face and face.age and face.age.range else None
    return ReportRow(
        item=item.item,
        source=item.source,
        job_id=job.job_id,
        status=job.status.value,
        reason=job.reason or job.error,
        person_confidence=job.person.confidence if job.person else None,
        top_colours="; ".join(
            f"{colour.name} {round(colour.fraction * 100)}%" for colour in (job.colors or [])[:3]
        )
        or None,
        age_range=f"{age.range[0]}-{age.range[1]}" if age and age.range else None,
        sex=face.sex.value if face and face.sex and face.sex.value != "unknown" else None,
        result_file=files.get(RESULT_ARTIFACT),
        cutout_file=files.get(CUTOUT),
        overlay_file=files.get(OVERLAY),
        extra=tuple(item.extra.items()),
    )
