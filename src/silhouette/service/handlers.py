"""What every Lambda handler shares: Powertools instrumentation, typed event parsing, the job
record's PROCESSING marker, stage timing metrics and the mapping of AWS failures onto the error
taxonomy. Handlers in functions/*/app.py are one line on top of this."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.jmespath_utils import query
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from silhouette.errors import PermanentError, RejectedInput, TransientError, is_transient_aws_error
from silhouette.schema import PipelineState, Stage, StageResult
from silhouette.service import keys
from silhouette.service.observability import log_keys, logger, publish_metric, tracer
from silhouette.service.records import DYNAMODB_RECORDS, JobRecords
from silhouette.service.storage import ArtifactStore, S3Store

Handler = Callable[[dict[str, Any], LambdaContext], Any]
StageLogic = Callable[[PipelineState, ArtifactStore], StageResult]


def instrumented(
    correlation_id_path: str, request_id_path: str | None = None
) -> Callable[[Handler], Handler]:
    """Structured logs and X-Ray tracing for a handler. Every log line of an invocation carries
    the `correlation_id` found at `correlation_id_path` in the event and, with
    `request_id_path`, the `request_id` of the API request that created the job."""

    def decorate(handler: Handler) -> Handler:
        traced = tracer.capture_lambda_handler(handler)

        @functools.wraps(handler)
        def keyed(event: dict[str, Any], context: LambdaContext) -> Any:
            keys = {"correlation_id": query(event, correlation_id_path)}
            if request_id_path:
                keys["request_id"] = query(event, request_id_path)
            with log_keys(**keys):
                return traced(event, context)

        # clear_state: no key of the previous invocation survives into this one.
        return logger.inject_lambda_context(keyed, clear_state=True)

    return decorate


@contextmanager
def transient_aws_errors(what: str) -> Iterator[None]:
    """Re-raise throttling and connection failures as `TransientError` so the state machine
    retries them; anything else keeps its own type and is not retried."""
    try:
        yield
    except Exception as error:
        if is_transient_aws_error(error):
            raise TransientError(f"{what}: {error}") from error
        raise


def run_stage(
    stage: Stage,
    state: PipelineState,
    logic: StageLogic,
    store: ArtifactStore | None = None,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> StageResult:
    started = perf_counter()
    store = store or S3Store(state.bucket)
    with transient_aws_errors(stage.value):
        if not job_records.mark_processing(state.job_id, stage.value):
            raise PermanentError(f"job {state.job_id} no longer exists or has already finished")
        try:
            result = logic(state, store)
        except RejectedInput as rejection:
            result = StageResult(outcome="rejected", reason=rejection.reason)
        if job_records.find(state.job_id) is None:
            # Deleted while the stage ran (its execution stopped, the user erased it): what
            # the stage just wrote must not outlive the erasure.
            for prefix in _output_prefixes(state.job_id, result):
                store.delete_prefix(prefix)
            raise PermanentError(f"job {state.job_id} was deleted while {stage.value} ran")
    duration_ms = round((perf_counter() - started) * 1000)
    publish_metric("StageDuration", duration_ms, MetricUnit.Milliseconds, stage=stage.value)
    logger.info("stage finished", extra={"outcome": result.outcome, "duration_ms": duration_ms})
    return result.model_copy(update={"duration_ms": duration_ms})


def _output_prefixes(job_id: str, result: StageResult) -> list[str]:
    """Where a stage's writes land: the artifacts, and for ingest the working images."""
    working = keys.working_images_prefix(job_id)
    wrote_working = any(key.startswith(working) for key in result.artifacts.values())
    return [keys.artifact_prefix(job_id)] + ([working] if wrote_working else [])


def stage_handler(stage: Stage, logic: StageLogic) -> Handler:
    """A Lambda handler that runs one pipeline stage on the execution's state."""

    @instrumented(correlation_id_path="job_id", request_id_path="request_id")
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        with log_keys(stage=stage.value):
            state = parse(event=event, model=PipelineState)
            return run_stage(stage, state, logic).model_dump(mode="json")

    return handler
