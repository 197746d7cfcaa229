"""Finalize: turn the execution's state into the job's terminal record, its result.json and
one partner event. The state machine calls it for every outcome (COMPLETED, REJECTED, FAILED)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from silhouette.names import RESULT_ARTIFACT, offered
from silhouette.pipeline import PIPELINE
from silhouette.schema import FinalizeRequest, JobResult, JobStatus, PipelineState, Stage
from silhouette.service import keys
from silhouette.service.batch_records import BATCH_RECORDS, TENANT_SLOTS
from silhouette.service.notifications import (
    DETAIL_TYPES,
    EventBridgePublisher,
    EventPublisher,
    job_event,
)
from silhouette.service.observability import logger, publish_metric
from silhouette.service.quality import assess
from silhouette.service.records import DYNAMODB_RECORDS, JobRecords, may_finish
from silhouette.service.storage import ArtifactStore, put_json
from silhouette.settings import get_settings


def record_fields(request: FinalizeRequest) -> dict[str, Any]:
    """The record's result fields, assembled from every stage's facts and artifacts."""
    state = request.job
    artifacts: dict[str, str] = {}
    facts: dict[str, Any] = {}
    models: dict[str, str] = {}
    timings = {}
    for stage, result in state.stages.items():
        artifacts.update((name, key) for name, key in result.artifacts.items() if offered(name))
        facts.update(result.facts)
        models.update(result.models)
        timings[stage.value] = result.duration_ms
    timings["total"] = round((datetime.now(UTC) - state.received_at).total_seconds() * 1000)
    artifacts[RESULT_ARTIFACT] = keys.result(state.job_id)
    rejected = any(result.outcome == "rejected" for result in state.stages.values())
    completed = request.terminal == JobStatus.COMPLETED
    owned = {}
    for spec in PIPELINE:
        for field in spec.result_fields:
            owned[field] = facts.get(field)
            if completed and not spec.wanted(state.options):
                owned[field] = {
                    "status": "off",
                    "reason": f"{spec.stage.value} analysis was switched off for this job",
                }
    quality = assess(facts | owned)
    return {
        # A rejection keeps its reason even when recording it failed and the job ends FAILED.
        "reason": _rejection_reason(state) if rejected else None,
        "error": _error_text(request) if request.terminal == JobStatus.FAILED else None,
        **owned,
        "quality": quality.model_dump() if quality else None,
        "artifacts": artifacts,
        "timings_ms": timings,
        "models": models,
    }


def keeps_photos(state: PipelineState) -> bool:
    """Whether the uploaded photos and working images stay for the retention period:
    `store_images` as the job asked, by default yes for a single photo and no for a capture
    (photos of a body, taken for its measurements)."""
    if state.options.store_images is not None:
        return state.options.store_images
    return not state.views


def _rejection_reason(state: PipelineState) -> str:
    return next(
        result.reason or "rejected"
        for result in state.stages.values()
        if result.outcome == "rejected"
    )


def _failed_stage(state: PipelineState) -> Stage:
    """Stages run in order, so the one that failed is the first wanted one without a result
    (or finalize, when every stage has one)."""
    return next(
        (
            spec.stage
            for spec in PIPELINE
            if spec.wanted(state.options) and spec.stage not in state.stages
        ),
        Stage.FINALIZE,
    )


def _error_text(request: FinalizeRequest) -> str:
    """`<stage>: <ErrorType>: <message>`, without the stack trace a Lambda error cause carries."""
    state = request.job
    if state.finalize_error is not None:
        stage, error = Stage.FINALIZE.value, state.finalize_error
    else:
        stage, error = request.failed_stage or _failed_stage(state).value, state.error
    where = f"{stage}: "
    if error is None:
        return f"{where}unknown error"
    message = error.Cause or ""
    try:
        cause = json.loads(message)
        if isinstance(cause, dict):
            message = cause.get("errorMessage", message)
    except ValueError:
        pass
    return f"{where}{error.Error}: {message}" if message else f"{where}{error.Error}"


def finalize(
    request: FinalizeRequest,
    store: ArtifactStore,
    publisher: EventPublisher | None = None,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> dict[str, Any]:
    """Record the outcome, then announce it. Run again after the event could not be sent, it
    writes the same outcome again and sends the event (`finish` allows that until
    `mark_notified`). Run with another outcome for a job whose outcome is recorded but was
    never announced (the state machine gave up on finalize and went on to RecordFailure), it
    announces the recorded one. Otherwise, for a job gone or finished and announced, it does
    nothing. Events are at least once: two finalizes overlapping before either has notified
    both send."""
    job_id = request.job.job_id
    current = job_records.find(job_id)
    if current is None or not may_finish(current, request.terminal):
        if current is not None and current.notified_at is None and current.status in DETAIL_TYPES:
            logger.info("job finished earlier but never announced; announcing it now")
            _announce(current.to_result(), publisher, job_records)
        else:
            logger.info("job already finished or deleted; nothing written")
        return {"job_id": job_id, "status": current.status if current else None, "written": False}
    fields = record_fields(request)
    keeps_images = keeps_photos(request.job)
    if not keeps_images:  # what is erased below is not offered for download
        fields["artifacts"] = {
            name: key
            for name, key in fields["artifacts"].items()
            if not key.startswith(keys.working_images_prefix(job_id))
        }
    result = JobResult.model_validate(
        {
            **current.to_result().model_dump(),
            **fields,
            "status": request.terminal,
            "stage": None,
            "updated_at": datetime.now(UTC),
        }
    )
    result_key = keys.result(job_id)
    # result.json first: once the record is terminal, clients may fetch it at once.
    put_json(store, result_key, result.model_dump(mode="json"))
    fields = {**fields, "updated_at": result.updated_at}
    if not job_records.finish(job_id, request.terminal, fields, erase_at=current.expires_at):
        if job_records.find_any(job_id) is None:
            # Erased meanwhile (DELETE /jobs, the tenant's erasure): so is the result.json above.
            store.delete_prefix(keys.result(job_id))
        logger.info("job finished or erased concurrently; nothing written")
        return {"job_id": job_id, "status": None, "written": False}
    if not keeps_images:
        # Before the event: a retry (the event could not be sent) erases what is left.
        store.delete_prefix(keys.upload_prefix(job_id))
        store.delete_prefix(keys.working_images_prefix(job_id))
        logger.info("photos erased as the job asked (store_images)")
    _announce(result, publisher, job_records)
    publish_metric("JobsFinished", 1, status=result.status.value)
    logger.info("job finished", extra={"status": result.status.value})
    return {"job_id": job_id, "status": result.status.value, "written": True}


def _announce(result: JobResult, publisher: EventPublisher | None, job_records: JobRecords) -> None:
    """The job's event (on the settings' bus unless told otherwise), then the mark that closes
    `finish` to retries. A batch's item is first counted on its batch, before the mark, so a
    retry counts it if this one could not; it also gives back its tenant's slot."""
    if result.batch is not None:
        BATCH_RECORDS.item_ended(result.batch.batch_id, result.job_id, result.status.value)
        TENANT_SLOTS.give_back(result.tenant, result.job_id)
    publisher = publisher or EventBridgePublisher(get_settings().event_bus)
    publisher.publish(job_event(result, keys.result(result.job_id)))
    if not job_records.mark_notified(result.job_id):
        logger.info("job deleted once its event was sent")
