"""Adjusted measurements: a user's corrections (a tape measure's values, a tailor's judgement)
kept as numbered versions beside the analysis, which stays exactly as it was measured, and
approvals of a version by a key of a role above `user`.

Version 0 is the analysis (the result's `measurements`); version N applies adjustments 1..N in
turn. The versions live in the job record as one JSON document, replaced only if it is still
the one read (a compare-and-swap), so two adjustments at once never lose one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from silhouette.schema import BodyMeasurements, JobResult, JobStatus, Role
from silhouette.service.records import DYNAMODB_RECORDS, JobRecord, JobRecords
from silhouette.service.tenants import Caller

# A job record holds at most 400 KB: far more adjustments and approvals than anyone makes.
MAX_ADJUSTMENTS = 50
MAX_APPROVALS = 100
ORIGINAL_SOURCE = "analysis"

Centimetres = Annotated[float, Field(gt=0, le=400)]
ErrorCentimetres = Annotated[float, Field(ge=0, le=100)]


class MeasurementAdjustment(BaseModel):
    """A PATCH of a job's measurements: new values for some of them, and where they come from."""

    model_config = ConfigDict(extra="forbid")
    # Names are checked against the job's measurements (`adjust`), not a pattern here.
    values: dict[str, Centimetres] = Field(
        min_length=1, max_length=40, description="measurement name -> value in cm"
    )
    errors: dict[str, ErrorCentimetres] = Field(
        default_factory=dict,
        description="the +- band of an adjusted value, in cm (default: unknown)",
    )
    source: str = Field(min_length=1, max_length=80, description='e.g. "tape measure"')
    note: str | None = Field(None, max_length=500)


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=0, description="the version approved (0: the analysis)")
    note: str | None = Field(None, max_length=500)


class Author(BaseModel):
    key: str = Field(description="the API key's name")
    role: Role


class Adjustment(BaseModel):
    version: int
    created_at: datetime
    author: Author
    source: str
    note: str | None = None
    values: dict[str, float]
    errors: dict[str, float] = Field(default_factory=dict)


class Approval(BaseModel):
    version: int
    at: datetime
    by: Author
    note: str | None = None


class VersionLog(BaseModel):
    """What the job record stores (`measurement_versions`)."""

    adjustments: list[Adjustment] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)


class MeasurementVersion(BaseModel):
    version: int = Field(description="0: the analysis; N: after adjustments 1..N")
    created_at: datetime
    author: Author | None = Field(None, description="null for the analysis")
    source: str = Field(description='"analysis", or where the adjusted values come from')
    note: str | None = None
    changed: list[str] = Field(description="the measurements this version set")
    values: dict[str, float | None] = Field(description="every measurement in cm (null: missing)")
    errors: dict[str, float | None] = Field(description="each value's +- band in cm")
    sources: dict[str, str] = Field(
        description='where each value comes from: "analysis" or an adjustment\'s source'
    )
    approvals: list[Approval] = Field(default_factory=list)


class MeasurementHistory(BaseModel):
    job_id: str
    unit: str = "cm"
    current: int = Field(description="the latest version")
    approved: int | None = Field(None, description="the latest version approved, if any")
    versions: list[MeasurementVersion]


class NotMeasured(Exception):
    """The job has no measurements to adjust (not asked for, or nothing could be measured)."""


class NotFinished(Exception):
    pass


class InvalidAdjustment(Exception):
    """The request names measurements the job does not have, or a version it does not."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class TooManyVersions(Exception):
    pass


class ChangedMeanwhile(Exception):
    """Another adjustment or approval was stored between reading the versions and writing."""


def history(record: JobRecord) -> MeasurementHistory:
    """Every version of the job's measurements, the analysis first."""
    original = _measured(record.to_result())
    log = _log(record)
    approvals: dict[int, list[Approval]] = {n: [] for n in range(len(log.adjustments) + 1)}
    for approval in log.approvals:
        approvals[approval.version].append(approval)
    values = {name: value.value_cm for name, value in original.values.items()}
    errors = {name: value.error_cm for name, value in original.values.items()}
    sources = dict.fromkeys(original.values, ORIGINAL_SOURCE)
    versions = [
        MeasurementVersion(
            version=0,
            created_at=record.updated_at,
            source=ORIGINAL_SOURCE,
            changed=[],
            values=dict(values),
            errors=dict(errors),
            sources=dict(sources),
            approvals=approvals[0],
        )
    ]
    for adjustment in log.adjustments:
        values.update(adjustment.values)
        errors.update({name: adjustment.errors.get(name) for name in adjustment.values})
        sources.update(dict.fromkeys(adjustment.values, adjustment.source))
        versions.append(
            MeasurementVersion(
                version=adjustment.version,
                created_at=adjustment.created_at,
                author=adjustment.author,
                source=adjustment.source,
                note=adjustment.note,
                changed=sorted(adjustment.values),
                values=dict(values),
                errors=dict(errors),
                sources=dict(sources),
                approvals=approvals[adjustment.version],
            )
        )
    approved = [approval.version for approval in log.approvals]
    return MeasurementHistory(
        job_id=record.job_id,
        current=len(log.adjustments),
        approved=max(approved) if approved else None,
        versions=versions,
    )


def adjust(
    record: JobRecord,
    adjustment: MeasurementAdjustment,
    caller: Caller,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> MeasurementHistory:
    """Store `adjustment` as the next version; the analysis and earlier versions stay."""
    original = _measured(record.to_result())
    if unknown := sorted(set(adjustment.values) - set(original.values)):
        known = ", ".join(original.values) or "none"
        named = ", ".join(name[:40] for name in unknown[:5])  # echo a little of what came
        message = f"no such measurement: {named} (the job's: {known})"
        raise InvalidAdjustment(message, "values")
    # Checked here, not in the model: an OpenAPI schema cannot say one map's keys are the other's.
    if extra := sorted(set(adjustment.errors) - set(adjustment.values)):
        named = ", ".join(name[:40] for name in extra[:5])
        raise InvalidAdjustment(f"errors given for values not adjusted: {named}", "errors")
    log = _log(record)
    if len(log.adjustments) >= MAX_ADJUSTMENTS:
        raise TooManyVersions(f"the job already has {MAX_ADJUSTMENTS} adjustments")
    log.adjustments.append(
        Adjustment(
            version=len(log.adjustments) + 1,
            created_at=datetime.now(UTC),
            author=_author(caller),
            source=adjustment.source,
            note=adjustment.note,
            values=adjustment.values,
            errors=adjustment.errors,
        )
    )
    return _store(record, log, job_records)


def approve(
    record: JobRecord,
    request: ApprovalRequest,
    caller: Caller,
    job_records: JobRecords = DYNAMODB_RECORDS,
) -> MeasurementHistory:
    """Record `caller`'s approval of a version (the API lets only tailors and admins)."""
    _measured(record.to_result())
    log = _log(record)
    if len(log.approvals) >= MAX_APPROVALS:
        raise TooManyVersions(f"the job already has {MAX_APPROVALS} approvals")
    if request.version > len(log.adjustments):
        message = f"no version {request.version}: the latest is {len(log.adjustments)}"
        raise InvalidAdjustment(message, "version")
    log.approvals.append(
        Approval(
            version=request.version, at=datetime.now(UTC), by=_author(caller), note=request.note
        )
    )
    return _store(record, log, job_records)


def _measured(result: JobResult) -> BodyMeasurements:
    if not result.status.is_terminal:
        raise NotFinished(result.status.value)
    measured = result.measurements
    if result.status != JobStatus.COMPLETED or measured is None or measured.status == "off":
        raise NotMeasured(result.job_id)
    return measured


def _log(record: JobRecord) -> VersionLog:
    return VersionLog.model_validate(record.measurement_versions or {})


def _author(caller: Caller) -> Author:
    return Author(key=caller.key_name, role=caller.role)


def _store(record: JobRecord, log: VersionLog, job_records: JobRecords) -> MeasurementHistory:
    stored = log.model_dump(mode="json")
    if not job_records.replace_measurement_versions(
        record.job_id, record.measurement_versions, stored
    ):
        raise ChangedMeanwhile(record.job_id)
    record.measurement_versions = stored
    return history(record)
