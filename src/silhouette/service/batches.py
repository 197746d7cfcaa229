"""Batches: a ZIP of photos, a CSV of photo URLs or photos uploaded one by one, analysed as
one job per item.

The client asks for a batch (`create_batch`) and uploads its source through a presigned POST,
or asks for a PHOTOS batch (`create_photo_batch`: a job and a form per photo) and uploads
each photo; the source's upload, or the last photo's (`photo_arrived`), starts the batch state
machine (batch.asl.json), named after the batch:

1. `expand` creates the batch's webhook if it has one (service/batch_webhooks.py), reads the
   source (service/batch_archive.py, service/url_fetch.py) one item at a time into a QUEUED
   job per item (ids derived from the batch's, so a retried step makes none twice), stores
   each ZIP entry as that job's upload, records items that cannot be analysed (a nested
   archive, a text file, a CSV row without a URL) as REJECTED at once, and writes the list of
   jobs to run to S3, where the Map reads it (it never travels in the state);
2. the Map runs `prepare_item` (waits for a slot of the tenant's, fetches a URL item's photo;
   a refused fetch is the item's REJECTED) and then the pipeline state machine on each item,
   as many at once as the batch allows, each execution named after its job like any other's;
   each item's finalize notes its end on the batch record, which is what progress reads;
3. `finish_batch` counts the items' statuses from their job records, writes the report CSV
   and the results archive, and announces the batch on the job bus (`Batch Completed`); a
   day later the state machine removes the batch's webhook."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from pydantic import BaseModel, Field

from silhouette.errors import RejectedInput, TenantBusy
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
from silhouette.service import batch_webhooks, keys
from silhouette.service.batch_archive import read_archive
from silhouette.service.batch_output import ReportRow, ZipEntry, report_csv, write_zip_to_s3
from silhouette.service.batch_records import (
    BATCH_RECORDS,
    TENANT_SLOTS,
    BatchRecord,
    BatchSource,
    BatchStatus,
    DynamoBatchRecords,
    DynamoTenantSlots,
)
from silhouette.service.finalize import finalize
from silhouette.service.notifications import EventPublisher, JobEvent
from silhouette.service.observability import logger
from silhouette.service.records import (
    BATCH_ITEM_CHECK_AFTER,
    DYNAMODB_RECORDS,
    UPLOAD_EVENT_GRACE,
    JobIdTaken,
    JobRecord,
    JobRecords,
    new_job_id,
)
from silhouette.service.storage import S3Store
from silhouette.service.transfers import (
    PhotoDeclaration,
    UploadForm,
    presigned_upload,
    refuse_oversize,
    safe_stem,
)
from silhouette.service.uploads import UploadedObject, pipeline_state
from silhouette.service.url_fetch import (
    FetchLimits,
    check_endpoint,
    fetch_image,
    parse_url_list,
)
from silhouette.settings import get_settings

SOURCE_TYPES = {BatchSource.ZIP: "application/zip", BatchSource.CSV: "text/csv"}
BATCH_ID = re.compile(r"[0-9a-f]{32}")  # as new_job_id makes them
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


class BatchOutcome(BaseModel):
    """What `finish_batch` hands the batch state machine: the batch's final state, and when
    to remove its webhook (None: it has none)."""

    batch: BatchProgress
    remove_webhook_after: int | None = Field(None, description="seconds")


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
    webhook_url: str | None = Field(None, description="where `Batch Completed` is POSTed")
    total: int | None = Field(None, description="items, once the source has been read")
    done: int = Field(description="items that have ended, whatever their status")
    counts: dict[JobStatus, int] = Field(description="items that have ended, per status")
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
    webhook_url: str | None = None,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
) -> tuple[BatchRecord, UploadForm]:
    """A WAITING batch and the presigned POST for its source (of `size` bytes, as the client
    declares it); the upload starts it. RejectedInput for a webhook URL it may not call."""
    settings = get_settings()
    refuse_oversize(size, settings.max_batch_source_bytes)
    webhook = _webhook(webhook_url)
    batch_id = new_job_id()
    record = batch_records.create(
        batch_id,
        tenant,
        source,
        options,
        _allowed_concurrency(concurrency),
        request_id,
        webhook=webhook,
    )
    form = presigned_upload(
        keys.batch_source(batch_id), SOURCE_TYPES[source], settings.max_batch_source_bytes
    )
    logger.info("batch created", extra={"batch_id": batch_id, "source": source.value})
    return record, form


class PhotoUpload(BaseModel):
    """Where one photo of a PHOTOS batch goes: its job and its presigned POST."""

    job_id: str
    filename: str | None
    upload: UploadForm


def create_photo_batch(
    tenant: str,
    photos: list[PhotoDeclaration],
    options: JobOptions,
    concurrency: int | None = None,
    request_id: str | None = None,
    webhook_url: str | None = None,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> tuple[BatchRecord, list[PhotoUpload]]:
    """A WAITING batch with a QUEUED job and a presigned POST per photo, in the given order.
    It starts once every photo has arrived (`photo_arrived`), or with the photos that have
    once the forms have expired (`look_at_item`, from the sweeper)."""
    settings = get_settings()
    for photo in photos:
        refuse_oversize(photo.size, settings.max_upload_bytes)
    webhook = _webhook(webhook_url)
    batch_id = new_job_id()
    record = batch_records.create(
        batch_id,
        tenant,
        BatchSource.PHOTOS,
        options,
        _allowed_concurrency(concurrency),
        request_id,
        total=len(photos),
        webhook=webhook,
    )
    expiry = settings.batch_upload_expiry_seconds
    deadline = datetime.now(UTC) + timedelta(seconds=expiry) + UPLOAD_EVENT_GRACE
    uploads = []
    for index, photo in enumerate(photos):
        name = photo.filename or f"photo-{index + 1}"
        item = BatchItem(batch_id=batch_id, index=index, item=name, source=name)
        job_id = item_job_id(batch_id, index)
        job_records.create_queued(
            job_id, tenant, photo.filename, options, request_id, batch=item, look_at=deadline
        )
        form = presigned_upload(
            keys.upload(job_id), photo.content_type, settings.max_upload_bytes, expiry=expiry
        )
        uploads.append(PhotoUpload(job_id=job_id, filename=photo.filename, upload=form))
    logger.info("batch created", extra={"batch_id": batch_id, "source": "photos"})
    return record, uploads


def _webhook(url: str | None) -> tuple[str, str] | None:
    """The webhook's URL, checked, and a new token for its deliveries."""
    if url is None:
        return None
    check_endpoint(url, "webhook URL", allow_loopback=get_settings().fetch_allow_loopback)
    return url, batch_webhooks.new_token()


def _allowed_concurrency(asked: int | None) -> int:
    limit = get_settings().batch_concurrency
    return min(asked or limit, limit)


def owned_batch(
    tenant: str, batch_id: str, batch_records: DynamoBatchRecords = BATCH_RECORDS
) -> BatchRecord:
    # Only a batch id is looked up (the table also holds the tenants' slots).
    record = batch_records.find(batch_id) if BATCH_ID.fullmatch(batch_id) else None
    if record is None or record.tenant != tenant:
        raise BatchNotFound(batch_id)
    return record


def progress(record: BatchRecord) -> BatchProgress:
    """From the batch record alone (each item's finalize notes its end there), so polling a
    large batch reads one record, not every item's."""
    if record.counts is not None:  # recounted from the items' records when the batch ended
        counts = Counter(
            {JobStatus(status): int(n) for status, n in record.counts.as_dict().items()}
        )
    else:
        counts = Counter(JobStatus(status) for status in record.ended_items.values())
    return BatchProgress(
        batch_id=record.batch_id,
        status=BatchStatus(record.status),
        source=BatchSource(record.source),
        reason=record.reason,
        webhook_url=record.webhook_url,
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
        or record.source == BatchSource.PHOTOS.value
    ):
        logger.info("batch source ignored: no such batch, or started before")
        return False
    return _start(record, stepfunctions, batch_records)


def photo_arrived(
    job: JobRecord, stepfunctions: Any, batch_records: DynamoBatchRecords = BATCH_RECORDS
) -> bool:
    """Count the photo of a PHOTOS batch's item in; start the batch with the last one. False
    if that did not start it (more to come, or an item of another kind of batch, whose
    photo the batch itself stored)."""
    assert job.batch_id is not None
    record = batch_records.photo_arrived(job.batch_id, job.job_id)
    if record is None or record.source != BatchSource.PHOTOS.value:
        return False
    if len(record.arrived or ()) < int(record.total or 0):
        return False
    return _start(record, stepfunctions, batch_records)


def _start(
    record: BatchRecord, stepfunctions: Any, batch_records: DynamoBatchRecords = BATCH_RECORDS
) -> bool:
    """Start the batch's execution, named after it. False if it was started before."""
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


def look_at_item(
    job: JobRecord,
    now: datetime,
    stepfunctions: Any,
    batch_records: DynamoBatchRecords = BATCH_RECORDS,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> str:
    """The sweeper's look at a QUEUED item that no execution has run yet: what was done.
    Its PHOTOS batch still WAITING once the forms have expired starts with what has arrived;
    a batch still running will get to it; an item whose batch has ended never will, and
    expires."""
    assert job.batch_id is not None
    batch = batch_records.find(job.batch_id)
    if batch is None or BatchStatus(batch.status).is_terminal:
        TENANT_SLOTS.give_back(job.tenant, job.job_id)  # in case it took one and never ran
        if job.expires_at is None or not job_records.expire(job.job_id, job.expires_at):
            return "gone"
        logger.info("batch item expired: its batch ended without running it")
        return "expired"
    job_records.sweep_again_at(job.job_id, now + BATCH_ITEM_CHECK_AFTER)
    if batch.status == BatchStatus.WAITING.value and _start(batch, stepfunctions, batch_records):
        logger.warning("photos batch started by the sweeper: not every photo arrived")
        return "started"
    return "running"


def expand(
    batch_id: str,
    s3: Any,
    events: Any = None,
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
    if record.webhook_url is not None and record.webhook_token is not None:
        # First, so that even a batch whose source is refused calls its webhook.
        batch_webhooks.subscribe(
            batch_id, record.webhook_url, record.webhook_token, BATCH_COMPLETED, events
        )
        batch_records.webhook_subscribed(batch_id)
    bucket = settings.bucket
    if record.source == BatchSource.PHOTOS.value:
        to_run = [job.job_id for job in job_records.for_batch(batch_id) if job.status == "QUEUED"]
        return _planned(record, to_run, int(record.total or 0), s3, batch_records)
    to_run: list[str] = []
    total = 0
    with tempfile.TemporaryFile() as source:
        # GetObject streamed, not download_fileobj, whose HeadObject needs s3:ListBucket too.
        body = s3.get_object(Bucket=bucket, Key=keys.batch_source(batch_id))["Body"]
        shutil.copyfileobj(body, source)
        source.seek(0)
        try:
            # One item at a time, so a batch's photos are never all in memory at once.
            for item, data, rejection in _read_items(record, source):
                total = item.index + 1
                job = _item_job(record, item, job_records)
                if job is None:
                    continue  # ended on an earlier attempt of this step
                if rejection is not None:
                    reject_item(job, rejection, publisher, job_records)
                    continue
                if data is not None:
                    s3.put_object(Bucket=bucket, Key=keys.upload(job.job_id), Body=data)
                to_run.append(job.job_id)
            if total == 0:
                raise RejectedInput("the batch has no items")
        except RejectedInput as rejection:
            _reject_batch(record, rejection.reason, to_run, publisher, batch_records, job_records)
            return BatchPlan(
                batch_id=batch_id, bucket=bucket, manifest_key="", to_run=0, concurrency=1
            )
    return _planned(record, to_run, total, s3, batch_records)


def _planned(
    record: BatchRecord,
    to_run: list[str],
    total: int,
    s3: Any,
    batch_records: DynamoBatchRecords,
) -> BatchPlan:
    """The Map's item list written where its ItemReader reads it; the batch's total noted."""
    bucket, manifest_key = get_settings().bucket, keys.batch_manifest(record.batch_id)
    manifest = "job_id\n" + "".join(f"{job_id}\n" for job_id in to_run)
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=manifest.encode())
    batch_records.expanded(record.batch_id, total)
    logger.info("batch expanded", extra={"items": total, "to_run": len(to_run)})
    return BatchPlan(
        batch_id=record.batch_id,
        bucket=bucket,
        manifest_key=manifest_key,
        to_run=len(to_run),
        concurrency=int(record.concurrency),
    )


def item_job_id(batch_id: str, index: int) -> str:
    """The job id of a batch's item: derived from the batch's unguessable id, so a retried
    step finds the jobs it made before instead of making them twice."""
    return hashlib.sha256(f"{batch_id}/{index}".encode()).hexdigest()[:32]


def _item_job(record: BatchRecord, item: BatchItem, job_records: JobRecords) -> JobRecord | None:
    """The item's QUEUED job, made now or by an earlier attempt; None if it has ended since."""
    job_id = item_job_id(record.batch_id, item.index)
    try:
        return job_records.create_queued(
            job_id, record.tenant, item.item, record.job_options, record.request_id, batch=item
        )
    except JobIdTaken:
        job = job_records.find(job_id)
        return job if job is not None and job.status == JobStatus.QUEUED.value else None


def _reject_batch(
    record: BatchRecord,
    reason: str,
    queued: list[str],
    publisher: EventPublisher | None,
    batch_records: DynamoBatchRecords,
    job_records: JobRecords,
) -> None:
    """The source is refused as a whole: the batch is REJECTED, and so is every item read
    before the refusal (a ZIP can turn out to be a bomb halfway through)."""
    batch_records.finish(record.batch_id, BatchStatus.REJECTED, reason=reason)
    for job_id in queued:
        job = job_records.find(job_id)
        if job is not None and job.status == JobStatus.QUEUED.value:
            reject_item(job, f"the batch was rejected: {reason}", publisher, job_records)
    logger.info("batch rejected", extra={"reason": reason, "items_rejected": len(queued)})


_Item = tuple[BatchItem, bytes | None, str | None]  # the item, its photo or its rejection
# What the source says of an item (BatchItem's fields but its place), its photo or rejection.
_Entry = tuple[dict[str, Any], bytes | None, str | None]


def _read_items(record: BatchRecord, source: BinaryIO) -> Iterator[_Item]:
    """The source's items, in order, as they are read; RejectedInput (possibly after some
    items) when the source as a whole is refused."""
    max_items = get_settings().max_batch_items
    for index, (fields, data, rejection) in enumerate(_source_entries(record, source)):
        if index == max_items:
            raise RejectedInput(f"the batch has more than {max_items} items")
        yield BatchItem(batch_id=record.batch_id, index=index, **fields), data, rejection


def _source_entries(record: BatchRecord, source: BinaryIO) -> Iterator[_Entry]:
    if BatchSource(record.source) == BatchSource.ZIP:
        for entry in read_archive(source):
            yield {"item": entry.name, "source": entry.name}, entry.data, entry.rejection
        return
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    try:
        rows = parse_url_list(text, get_settings().max_batch_items)
    except UnicodeDecodeError as error:
        raise RejectedInput("the CSV is not UTF-8 text") from error
    for row in rows:
        fields = {"item": row.id, "source": row.image_url, "url": row.image_url, "extra": row.extra}
        yield fields, None, row.problem


def prepare_item(
    job_id: str,
    s3: Any,
    job_records: JobRecords = DYNAMODB_RECORDS,
    publisher: EventPublisher | None = None,
    tenant_slots: DynamoTenantSlots = TENANT_SLOTS,
) -> ItemStart:
    """The pipeline's input for one item, its photo fetched first if it is a URL, once the
    tenant has a free slot (TenantBusy until then: the state machine retries). Nothing to run
    when the job has been deleted or has ended meanwhile, or its photo could not be had (the
    item is REJECTED, which gives its slot back)."""
    settings = get_settings()
    record = job_records.find(job_id)
    if record is None or record.status != JobStatus.QUEUED.value:
        return ItemStart(start=False)
    if not tenant_slots.take(record.tenant, job_id, settings.tenant_concurrency):
        raise TenantBusy(f"{settings.tenant_concurrency} batch items of the tenant are running")
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
        reject_item(record, "the photo was never uploaded", publisher, job_records)
        return ItemStart(start=False)
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
) -> BatchOutcome:
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
    final = progress(batch_records.find(batch_id) or record)
    if written:
        publisher.publish(JobEvent(BATCH_COMPLETED, batch_event_detail(record, final)))
        batch_records.mark_notified(batch_id)
    logger.info("batch finished", extra={"status": status.value, "counts": dict(counts)})
    linger = get_settings().batch_webhook_linger_seconds if record.webhook_url else None
    return BatchOutcome(batch=final, remove_webhook_after=linger)


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
