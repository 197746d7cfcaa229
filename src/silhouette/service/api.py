"""The public HTTP API (API Gateway REST API -> one Lambda function), built on Powertools'
event handler, which also validates requests and generates the OpenAPI document.

Every error is JSON: `{"error": <code>, "message": <text>, "field": <where, for 400>}`. API
Gateway itself answers 403 for a missing or unknown key and 429 when the usage plan throttles.

Every answer but those two carries an `X-Request-ID` header: the request's own `X-Request-ID`
if it has one of 1-128 characters out of `A-Z a-z 0-9 . _ : -`, else a new one. The service's
logs of the request, and of the analysis of a job it creates, are tagged with it."""

from __future__ import annotations

import hmac
import re
import uuid
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    field_validator,
)

from silhouette.errors import (
    PermanentError,
    RejectedInput,
    TransientError,
    is_transient_aws_error,
)
from silhouette.names import API_KEY_HEADER, MEASUREMENT_PICTURE, REQUEST_ID_HEADER
from silhouette.schema import JobOptions, JobResult, JobSummary, Role, View
from silhouette.service import (
    audit,
    batch_webhooks,
    batches,
    cursors,
    jobs,
    measurement_versions,
    tenant_requests,
)
from silhouette.service.audit import AuditAction, AuditPage
from silhouette.service.batch_records import BatchSource
from silhouette.service.batches import BatchProgress
from silhouette.service.health import Health, check_health
from silhouette.service.measurement_sheet import measurement_sheet, measurements_csv
from silhouette.service.measurement_versions import (
    ApprovalRequest,
    MeasurementAdjustment,
    MeasurementHistory,
    MeasurementVersion,
)
from silhouette.service.observability import log_keys, logger
from silhouette.service.starter import start_uploads
from silhouette.service.storage import S3Store
from silhouette.service.tenant_requests import ErasureStarted, ExportStatus
from silhouette.service.tenants import Caller, caller_of_key
from silhouette.service.transfers import (
    DownloadLink,
    PhotoDeclaration,
    UploadForm,
    UploadTooLarge,
    download_link,
)
from silhouette.settings import get_settings

API_VERSION = "1.0.0"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"

app = APIGatewayRestResolver(enable_validation=True)
app.configure_openapi(
    title="Silhouette",
    version=API_VERSION,
    description=__doc__,
    security_schemes={"apiKey": APIKey(name=API_KEY_HEADER, in_=APIKeyIn.header)},
)


# Models --------------------------------------------------------------------------------------


def _whole_number_as_int(cls: type, value: Any) -> Any:
    """12.0 is the integer 12 in JSON (and JSON Schema); `true`, `"12"` and 1.5 are left for
    StrictInt to refuse rather than be read as a number."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. not_found")
    message: str
    field: str | None = Field(None, description="the request field at fault (400 only)")


class RequestedOptions(JobOptions):
    """Options as a client sends them: a misspelt or unknown option is refused, not ignored
    (stored options stay lenient, so records written by newer versions still load)."""

    model_config = ConfigDict(extra="forbid")


class RequestedPhoto(PhotoDeclaration):
    """A photo as a client announces it (alone, as a capture's view, or in a photos batch)."""

    _whole_size = field_validator("size", mode="before")(_whole_number_as_int)


class UploadRequest(RequestedPhoto):
    """One photo."""

    options: RequestedOptions = Field(default_factory=RequestedOptions)


class CaptureViews(BaseModel):
    """A capture's photos, each uploaded through its own form."""

    model_config = ConfigDict(extra="forbid")

    front: RequestedPhoto = Field(description="the whole body from the front")
    side: RequestedPhoto | None = Field(None, description="the whole body in profile")
    portrait: RequestedPhoto | None = Field(None, description="a close photo of the face")
    card: RequestedPhoto | None = Field(
        None, description="an ID-1 card or a colour chart, in the same light"
    )

    def declared(self) -> dict[View, PhotoDeclaration]:
        return {
            View(name): photo for name in type(self).model_fields if (photo := getattr(self, name))
        }


class CaptureRequest(BaseModel):
    """A capture: several photos of one person; the analysis starts once every one is in."""

    model_config = ConfigDict(extra="forbid")

    views: CaptureViews
    options: RequestedOptions = Field(default_factory=RequestedOptions)


def _job_kind(body: Any) -> str:
    return "capture" if isinstance(body, dict) and "views" in body else "photo"


NewJobRequest = Annotated[
    Annotated[UploadRequest, Tag("photo")] | Annotated[CaptureRequest, Tag("capture")],
    Body(),
    Discriminator(_job_kind),
]
# Pydantic names the variant of a union body it validated as in an error's location
# (`body.<variant>.<field>`); clients only know the field.
_BODY_VARIANTS = frozenset({"photo", "capture", *BatchSource})


def with_implied_options(request: UploadRequest | CaptureRequest) -> RequestedOptions:
    """The request's options, measurements on for a capture or a stated height unless the
    client said otherwise."""
    options = request.options
    implied = isinstance(request, CaptureRequest) or options.height_cm is not None
    if "measurements" in options.model_fields_set or not implied:
        return options
    return options.model_copy(update={"measurements": True})


class _BatchRequest(BaseModel):
    """What every kind of batch request says."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(
        None,
        max_length=2048,
        description="an https URL the batch's `Batch Completed` event is POSTed to, retried "
        "for up to a day",
    )
    concurrency: StrictInt | None = Field(
        None, ge=1, description="at most this many items at once (the service's limit caps it)"
    )
    options: RequestedOptions = Field(
        default_factory=RequestedOptions, description="every item's options"
    )

    _whole_numbers = field_validator("concurrency", mode="before")(_whole_number_as_int)


class SourceBatchRequest(_BatchRequest):
    source: Literal[BatchSource.ZIP, BatchSource.CSV] = Field(
        description="zip: an archive of photos; csv: a CSV with the columns id and image_url "
        "(other columns are carried to the report)"
    )
    size: StrictInt | None = Field(
        None, ge=0, description="the ZIP's or CSV's bytes: more than the limit gives 413"
    )

    _whole_size = field_validator("size", mode="before")(_whole_number_as_int)


class PhotosBatchRequest(_BatchRequest):
    source: Literal[BatchSource.PHOTOS] = Field(
        description="photos: the photos listed in `photos`, each uploaded through its own form"
    )
    photos: list[RequestedPhoto] = Field(
        min_length=1,
        max_length=get_settings().max_batch_items,
        description="the batch's photos, in order",
    )


BatchRequest = Annotated[
    SourceBatchRequest | PhotosBatchRequest, Body(), Field(discriminator="source")
]


class BatchCreated(BaseModel):
    batch: BatchProgress
    upload: UploadForm | None = Field(
        None, description="POST the ZIP or CSV here; the upload starts the batch"
    )
    photos: list[batches.PhotoUpload] | None = Field(
        None,
        description="a photos batch: POST each photo to its form; the last arrival starts it",
    )
    webhook_token: str | None = Field(
        None,
        description=f"sent as {batch_webhooks.TOKEN_HEADER} with each webhook delivery, so the "
        "receiver knows it comes from this batch; shown only here",
    )


class BatchReport(BaseModel):
    batch: BatchProgress
    report: DownloadLink = Field(description="the report CSV: one row per item")
    results: DownloadLink = Field(description="a ZIP of every item's artifacts and the report")


class UploadCreated(BaseModel):
    job: JobSummary
    upload: UploadForm = Field(description="POST the photo here (a capture: its front view)")
    views: dict[View, UploadForm] | None = Field(
        None, description="a capture: POST each view to its own form"
    )


class JobPage(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page")


class ResultWithDownloads(JobResult):
    downloads: dict[str, DownloadLink] = Field(description="one link per artifact")


class StartSummary(BaseModel):
    started: int
    skipped: int


# Documented on every answer; not required, as API Gateway's own refusals (403, 429) lack it.
_REQUEST_ID_DOCUMENTED = {
    REQUEST_ID_HEADER: {
        "description": "the request's X-Request-ID, or a new one if it had none or a malformed one",
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    }
}


def _responses(success: int, *errors: int) -> dict[int, Any]:
    """A route's documented answers: its success (body from the return type) and its errors."""
    documented: dict[int, Any] = {
        success: {"description": HTTPStatus(success).phrase, "headers": _REQUEST_ID_DOCUMENTED}
    }
    if success == 204:
        documented[success]["content"] = {}
    for status in errors:
        documented[status] = {
            "description": HTTPStatus(status).phrase,
            "headers": _REQUEST_ID_DOCUMENTED,
            "content": {"application/json": {"model": ErrorBody}},
        }
    return documented


# What every key-protected route can answer besides its own errors: refused key (API Gateway),
# throttled (usage plan), invalid request, dependency briefly unavailable.
_GUARDED = (400, 403, 429, 503)
_KEY_SECURITY = [{"apiKey": []}]


# Errors --------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field


def _json(status: int, body: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=body.model_dump_json(exclude_none=True),
        headers=headers,
    )


@app.exception_handler(ApiError)
def _api_error(error: ApiError) -> Response:
    return _json(
        error.status, ErrorBody(error=error.error, message=error.message, field=error.field)
    )


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    first = error.errors()[0]
    location = [str(part) for part in first.get("loc", ())]
    if len(location) > 2 and location[0] == "body" and location[1] in _BODY_VARIANTS:
        del location[1]
    field = ".".join(location[1:]) or (location[0] if location else None)
    message = f"{field}: {first.get('msg', 'invalid')}" if field else first.get("msg", "invalid")
    return _json(400, ErrorBody(error="invalid_request", message=message, field=field))


@app.exception_handler(UnicodeDecodeError)
def _undecodable_body(_: UnicodeDecodeError) -> Response:
    return _json(
        400, ErrorBody(error="invalid_request", message="body: not UTF-8 JSON", field="body")
    )


@app.exception_handler(jobs.JobNotFound)
def _not_found(error: jobs.JobNotFound) -> Response:
    return _json(404, ErrorBody(error="not_found", message=f"no job {error.args[0]!r}"))


@app.exception_handler(batches.BatchNotFound)
def _batch_not_found(error: batches.BatchNotFound) -> Response:
    return _json(404, ErrorBody(error="not_found", message=f"no batch {error.args[0]!r}"))


@app.exception_handler(jobs.JobBusy)
def _busy(_: jobs.JobBusy) -> Response:
    message = "the job is being analysed; delete it once it has finished"
    return _json(409, ErrorBody(error="busy", message=message))


@app.exception_handler(measurement_versions.NotMeasured)
def _not_measured(_: measurement_versions.NotMeasured) -> Response:
    message = "the job has no measurements (options.measurements)"
    return _json(404, ErrorBody(error="not_found", message=message))


@app.exception_handler(measurement_versions.NotFinished)
def _not_finished(error: measurement_versions.NotFinished) -> Response:
    message = f"job is {error.args[0]}; poll the job until it ends"
    return _json(409, ErrorBody(error="not_finished", message=message))


@app.exception_handler(measurement_versions.InvalidAdjustment)
def _invalid_adjustment(error: measurement_versions.InvalidAdjustment) -> Response:
    body = ErrorBody(error="invalid_request", message=str(error), field=error.field)
    return _json(400, body)


@app.exception_handler(measurement_versions.TooManyVersions)
def _too_many_versions(error: measurement_versions.TooManyVersions) -> Response:
    return _json(409, ErrorBody(error="too_many_versions", message=str(error)))


@app.exception_handler(measurement_versions.ChangedMeanwhile)
def _changed_meanwhile(_: measurement_versions.ChangedMeanwhile) -> Response:
    message = "the measurements changed meanwhile; read the history and try again"
    return _json(409, ErrorBody(error="conflict", message=message))


@app.exception_handler(UploadTooLarge)
def _too_large(error: UploadTooLarge) -> Response:
    return _json(413, ErrorBody(error="too_large", message=str(error), field="size"))


@app.exception_handler(cursors.InvalidCursor)
def _invalid_cursor(error: cursors.InvalidCursor) -> Response:
    body = ErrorBody(error="invalid_request", message=f"cursor: {error}", field="cursor")
    return _json(400, body)


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    if isinstance(error, TransientError) or is_transient_aws_error(error):
        logger.warning("dependency unavailable", exc_info=error)
        body = ErrorBody(error="unavailable", message="a dependency is busy; retry shortly")
        return _json(503, body, headers={"Retry-After": "1"})
    logger.exception("unexpected error")
    body = ErrorBody(error="internal", message=f"internal error (request {_request_id()})")
    return _json(500, body)


@app.not_found
def _no_route(_: Exception) -> Response:
    return _json(404, ErrorBody(error="not_found", message="no such endpoint"))


def _summary(job: JobResult) -> JobSummary:
    """The status fields of a record, without the analysis (what polling clients get)."""
    return JobSummary.model_validate(job.model_dump(include=set(JobSummary.model_fields)))


def _request_id() -> str:
    """The X-Request-ID of the request being answered (see `resolve`)."""
    return app.context["request_id"]


def _caller() -> Caller:
    """The calling key; API Gateway only forwards requests that carry a valid one."""
    key_id = app.current_event.request_context.identity.api_key_id
    if not key_id:
        raise ApiError(403, "forbidden", "an API key is required (x-api-key header)")
    return caller_of_key(key_id)


def _tenant() -> str:
    return _caller().tenant


def _caller_allowed(role: Role) -> Caller:
    """The calling key, if its role is `role` or above; else 403."""
    caller = _caller()
    if not caller.role.may(role):
        message = f"this needs a key of role {role.value} or above; this key is {caller.role.value}"
        raise ApiError(403, "forbidden", message)
    return caller


def _audit_admin_reads(resolver: APIGatewayRestResolver, next_middleware: Any) -> Response:
    """Every read by an admin key goes into the tenant's audit log before it is answered, so
    no admin read escapes it (a failed write answers 503, as any unavailable dependency)."""
    event = resolver.current_event
    key_id = event.request_context.identity.api_key_id
    if event.http_method == "GET" and key_id:
        caller = caller_of_key(key_id)
        if caller.role is Role.ADMIN:
            query = event.query_string_parameters or None
            audit.record(caller, AuditAction.READ, event.path, query, _request_id())
    return next_middleware(resolver)


app.use(middlewares=[_audit_admin_reads])


# Routes --------------------------------------------------------------------------------------


@app.post(
    "/uploads",
    status_code=201,
    summary="Create a job and a presigned POST for its photo",
    responses=_responses(201, *_GUARDED, 413),
    security=_KEY_SECURITY,
)
def create_upload(request: NewJobRequest) -> UploadCreated:
    options = with_implied_options(request)
    if isinstance(request, CaptureRequest):
        job, forms = jobs.create_capture(
            _tenant(), request.views.declared(), options, request_id=_request_id()
        )
        return UploadCreated(job=_summary(job), upload=forms[View.FRONT], views=forms)
    job, upload = jobs.create_upload(
        _tenant(),
        request.filename,
        request.content_type,
        options,
        request.size,
        request_id=_request_id(),
    )
    return UploadCreated(job=_summary(job), upload=upload)


@app.get(
    "/jobs",
    summary="The caller's jobs, newest first",
    responses=_responses(200, *_GUARDED),
    security=_KEY_SECURITY,
)
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> JobPage:
    page, next_cursor = jobs.list_jobs(_tenant(), limit, cursor)
    return JobPage(jobs=[_summary(job) for job in page], next_cursor=next_cursor)


@app.get(
    "/jobs/<job_id>",
    summary="A job's status, stage, timestamps and reason or error",
    responses=_responses(200, *_GUARDED, 404),
    security=_KEY_SECURITY,
)
def get_job(job_id: str) -> JobSummary:
    return _summary(jobs.get_job(_tenant(), job_id))


@app.get(
    "/jobs/<job_id>/result",
    summary="A finished job's record with download links for every artifact",
    responses=_responses(200, *_GUARDED, 404, 409),
    security=_KEY_SECURITY,
)
def get_result(job_id: str) -> ResultWithDownloads:
    result = jobs.get_job(_tenant(), job_id)
    if not result.status.is_terminal:
        raise ApiError(
            409, "not_finished", f"job is {result.status.value}; poll /jobs/{job_id} until it ends"
        )
    return ResultWithDownloads(**result.model_dump(), downloads=jobs.downloads(result))


def _measured_version(
    job_id: str, version: int | None
) -> tuple[JobResult, MeasurementHistory, MeasurementVersion]:
    """The caller's measured job, its versions, and the one asked for (default the latest)."""
    record = jobs.owned(_tenant(), job_id)
    history = measurement_versions.history(record)
    if version is not None and version > history.current:
        raise ApiError(404, "not_found", f"no version {version}: the latest is {history.current}")
    chosen = history.versions[-1 if version is None else version]
    return record.to_result(), history, chosen


_VERSION_QUERY = Query(ge=0, description="the version (0: the analysis); default the latest")


@app.get(
    "/jobs/<job_id>/measurements.csv",
    summary="A finished job's body measurements as CSV (one row per measurement)",
    responses={
        **_responses(200, *_GUARDED, 404, 409),
        200: {
            "description": "OK",
            "headers": _REQUEST_ID_DOCUMENTED,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
    security=_KEY_SECURITY,
)
def get_measurements_csv(  # unannotated return: the body is CSV, not a model
    job_id: str, version: Annotated[int | None, _VERSION_QUERY] = None
):
    result, _, chosen = _measured_version(job_id, version)
    assert result.measurements is not None  # history() refuses jobs without measurements
    return Response(
        status_code=200,
        content_type="text/csv",
        body=measurements_csv(result.measurements, chosen),
        headers={"Content-Disposition": f'attachment; filename="{job_id[:8]}-measurements.csv"'},
    )


@app.get(
    "/jobs/<job_id>/measurements.pdf",
    summary="A one-page measurement sheet for a tailor: views, values with bands, skin tone",
    responses={
        **_responses(200, *_GUARDED, 404, 409),
        200: {
            "description": "OK",
            "headers": _REQUEST_ID_DOCUMENTED,
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
    },
    security=_KEY_SECURITY,
)
def get_measurement_sheet(  # unannotated return: the body is a PDF, not a model
    job_id: str, version: Annotated[int | None, _VERSION_QUERY] = None
):
    from silhouette.service.measurement_pdf import render_sheet  # fpdf: only this route

    result, history, chosen = _measured_version(job_id, version)
    picture_key = result.artifacts.get(MEASUREMENT_PICTURE)
    picture = S3Store(get_settings().bucket).get(picture_key) if picture_key else None
    sheet = measurement_sheet(result, history, chosen, picture)
    return Response(
        status_code=200,
        content_type="application/pdf",
        body=render_sheet(sheet),
        headers={"Content-Disposition": f'attachment; filename="{job_id[:8]}-measurements.pdf"'},
    )


@app.get(
    "/jobs/<job_id>/measurements/history",
    summary="Every version of a job's measurements: the analysis, each adjustment, approvals",
    responses=_responses(200, *_GUARDED, 404, 409),
    security=_KEY_SECURITY,
)
def get_measurement_history(job_id: str) -> MeasurementHistory:
    return measurement_versions.history(jobs.owned(_tenant(), job_id))


@app.patch(
    "/jobs/<job_id>/measurements",
    summary="Adjust some measurements: stored as a new version, the analysis kept as it was",
    responses=_responses(200, *_GUARDED, 404, 409),
    security=_KEY_SECURITY,
)
def adjust_measurements(job_id: str, adjustment: MeasurementAdjustment) -> MeasurementHistory:
    caller = _caller()
    record = jobs.owned(caller.tenant, job_id)
    history = measurement_versions.adjust(record, adjustment, caller)
    detail = {"version": history.current, "changed": sorted(adjustment.values)}
    audit.record(caller, AuditAction.ADJUST, job_id, detail, _request_id())
    return history


@app.post(
    "/jobs/<job_id>/measurements/approval",
    summary="Approve a version of a job's measurements (tailor and admin keys)",
    responses=_responses(200, *_GUARDED, 404, 409),
    security=_KEY_SECURITY,
)
def approve_measurements(job_id: str, request: ApprovalRequest) -> MeasurementHistory:
    caller = _caller_allowed(Role.TAILOR)
    record = jobs.owned(caller.tenant, job_id)
    history = measurement_versions.approve(record, request, caller)
    audit.record(caller, AuditAction.APPROVE, job_id, {"version": request.version}, _request_id())
    return history


@app.delete(
    "/jobs/<job_id>",
    status_code=204,
    summary="Erase the photo, every artifact and the record",
    responses=_responses(204, *_GUARDED, 404, 409),
    security=_KEY_SECURITY,
)
def delete_job(job_id: str):  # unannotated: Powertools cannot validate a bare `Response` return
    jobs.delete_job(_tenant(), job_id)
    return Response(status_code=204)


@app.post(
    "/batches",
    status_code=201,
    summary="Create a batch and the presigned POSTs for its ZIP, CSV or photos",
    responses=_responses(201, *_GUARDED, 413),
    security=_KEY_SECURITY,
)
def create_batch(request: BatchRequest) -> BatchCreated:
    upload, photos = None, None
    try:
        if isinstance(request, PhotosBatchRequest):
            record, photos = batches.create_photo_batch(
                _tenant(),
                list(request.photos),
                request.options,
                request.concurrency,
                _request_id(),
                request.webhook_url,
            )
        else:
            record, upload = batches.create_batch(
                _tenant(),
                request.source,
                request.options,
                request.concurrency,
                request.size,
                _request_id(),
                request.webhook_url,
            )
    except RejectedInput as rejection:
        raise ApiError(400, "invalid_request", rejection.reason, "webhook_url") from rejection
    return BatchCreated(
        batch=batches.progress(record),
        upload=upload,
        photos=photos,
        webhook_token=record.webhook_token,
    )


@app.get(
    "/batches/<batch_id>",
    summary="A batch's status and its items' progress, counted per status",
    responses=_responses(200, *_GUARDED, 404),
    security=_KEY_SECURITY,
)
def get_batch(batch_id: str) -> BatchProgress:
    return batches.progress(batches.owned_batch(_tenant(), batch_id))


@app.get(
    "/batches/<batch_id>/report",
    summary="A finished batch's report CSV and results ZIP, as presigned links",
    responses=_responses(200, *_GUARDED, 404, 409),
    security=_KEY_SECURITY,
)
def get_batch_report(batch_id: str) -> BatchReport:
    record = batches.owned_batch(_tenant(), batch_id)
    if record.report_key is None or record.results_key is None:
        raise ApiError(
            409,
            "not_finished",
            f"batch is {record.status}; poll /batches/{batch_id} until it has ended",
        )
    stem = f"batch-{batch_id[:8]}"
    return BatchReport(
        batch=batches.progress(record),
        report=download_link(record.report_key, f"{stem}-report.csv"),
        results=download_link(record.results_key, f"{stem}-results.zip"),
    )


@app.get(
    "/tenant/audit",
    summary="The tenant's audit log, oldest first (admin keys)",
    responses=_responses(200, *_GUARDED),
    security=_KEY_SECURITY,
)
def get_audit_log(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> AuditPage:
    return audit.entries(_caller_allowed(Role.ADMIN).tenant, limit, cursor)


@app.get(
    "/tenant/export",
    summary="Everything the tenant has (records, photos kept, artifacts) as a ZIP (admin keys)",
    description="202 while the export is prepared (poll again after Retry-After), 200 with a "
    "link once it is ready; `fresh=true` starts a new one.",
    responses={
        **_responses(200, *_GUARDED),
        202: {
            "description": "the export is being prepared",
            "headers": _REQUEST_ID_DOCUMENTED,
            "content": {"application/json": {"model": ExportStatus}},
        },
    },
    security=_KEY_SECURITY,
)
def export_tenant(fresh: Annotated[bool, Query()] = False) -> Response[ExportStatus]:
    caller = _caller_allowed(Role.ADMIN)
    export = tenant_requests.export_status(caller, fresh, _request_id())
    ready = export.status == "READY"
    return Response(
        status_code=200 if ready else 202,
        content_type="application/json",
        body=export,
        headers=None if ready else {"Retry-After": "5"},
    )


@app.delete(
    "/tenant/data",
    status_code=202,
    summary="Erase every job, photo, artifact and batch of the tenant (admin keys; audited)",
    description="Erased in the background; the audit log records the request and, when done, "
    "what was erased.",
    responses=_responses(202, *_GUARDED),
    security=_KEY_SECURITY,
)
def erase_tenant() -> ErasureStarted:
    caller = _caller_allowed(Role.ADMIN)
    return tenant_requests.start_erasure(caller, _request_id())


@app.get(
    "/health",
    summary="Whether storage, table and state machine are reachable",
    responses={
        200: {"description": "every dependency is reachable", "headers": _REQUEST_ID_DOCUMENTED},
        503: {
            "description": "a dependency is unreachable",
            "headers": _REQUEST_ID_DOCUMENTED,
            "content": {"application/json": {"model": Health}},
        },
    },
)
def health() -> Response[Health]:
    report = check_health()
    status = 200 if report.status == "ok" else 503
    return Response(status_code=status, content_type="application/json", body=report)


@app.post(
    "/webhooks/minio",
    summary="MinIO bucket notifications (S3 event records); shared-token authentication",
    responses=_responses(200, 400, 401, 503),
)
def minio_webhook() -> StartSummary:
    token = get_settings().minio_webhook_token
    sent = app.current_event.headers.get("authorization") or ""
    sent = sent.removeprefix("Bearer ")
    if not token or not hmac.compare_digest(sent.encode(), token.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong webhook token")
    try:
        return StartSummary(**start_uploads(app.current_event.json_body or {}))
    except (PermanentError, ValueError) as error:
        raise ApiError(400, "invalid_request", f"not a MinIO event: {error}") from error


@app.get("/openapi.json", include_in_schema=False)
def openapi():  # unannotated: Powertools cannot validate a bare `Response` return
    return Response(
        status_code=200,
        content_type="application/json",
        body=app.get_openapi_json_schema(),
    )


# Entry point ---------------------------------------------------------------------------------


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer an API Gateway proxy event. The request id is settled first, so that every log
    line of the request carries it and every answer, errors included, returns it."""
    request_id = request_id_of(event)
    app.append_context(request_id=request_id)  # the resolver clears its context after answering
    with log_keys(request_id=request_id):
        response = app.resolve(event, context)
    response.setdefault("multiValueHeaders", {})[REQUEST_ID_HEADER] = [request_id]
    return response


def request_id_of(event: dict[str, Any]) -> str:
    """The request's X-Request-ID if it is well formed, else a new one: a client's id is only
    ever echoed and logged, so it must be short and free of separators and control characters."""
    given = APIGatewayProxyEvent(event).headers.get(REQUEST_ID_HEADER)
    if given and re.fullmatch(REQUEST_ID_PATTERN, given):
        return given
    return uuid.uuid4().hex
