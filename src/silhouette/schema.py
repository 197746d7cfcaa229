"""Typed contracts: the state passed between stages and the job result record.

The state machine passes `PipelineState` to every stage; each stage answers with a
`StageResult` that Step Functions stores under `$.stages.<stage>`. Stage results hold small
facts and artifact keys, never image bytes (state payloads are capped at 256 KiB)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

SCHEMA_VERSION = "1"


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    # The photo was never uploaded while the upload form was valid; nothing was analysed.
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.PROCESSING)


class Stage(StrEnum):
    INGEST = "ingest"
    POSE = "pose"
    SEGMENT = "segment"
    COLORS = "colors"
    FACE = "face"
    OVERLAY = "overlay"
    FINALIZE = "finalize"


class JobOptions(BaseModel):
    """Per-job choices recorded with the QUEUED job; new options never break old clients."""

    model_config = ConfigDict(extra="ignore")

    # Strict: a client's `"yes"` or `1` is refused rather than guessed at. Stored options
    # (records, execution states, result.json) hold real booleans, so they parse as before.
    face: StrictBool = True
    quality: Literal["fast", "quality"] = "quality"


class ImageFacts(BaseModel):
    width: int
    height: int
    format: str


class StageResult(BaseModel):
    outcome: Literal["continue", "rejected"] = "continue"
    reason: str | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)
    facts: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
    duration_ms: int = 0


class TaskError(BaseModel):
    """What a Catch stores at `$.error`: Step Functions' error name and cause."""

    Error: str
    Cause: str | None = None


class PipelineState(BaseModel):
    """The execution's state: what the starter put in plus each stage's result."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    bucket: str
    upload_key: str
    upload_size: int | None = None
    received_at: datetime
    options: JobOptions = Field(default_factory=JobOptions)
    # The X-Request-ID of the POST /uploads that created the job, for its stages' log lines;
    # None for jobs created before requests had one.
    request_id: str | None = None
    stages: dict[Stage, StageResult] = Field(default_factory=dict)
    # A stage's error (caught by the state machine), or finalize's own when it could not
    # record the outcome (the job then ends FAILED, keeping a rejection's reason).
    error: TaskError | None = None
    finalize_error: TaskError | None = None

    def artifact(self, name: str) -> str:
        for result in self.stages.values():
            if name in result.artifacts:
                return result.artifacts[name]
        from silhouette.errors import PermanentError

        raise PermanentError(f"artifact {name!r} was not produced by an earlier stage")


class FinalizeRequest(BaseModel):
    """Finalize's input: the state plus the terminal status the state machine decided on."""

    terminal: Literal[JobStatus.COMPLETED, JobStatus.REJECTED, JobStatus.FAILED]
    job: PipelineState
    # Where the job was when its execution ended without a recorded outcome (the sweeper
    # knows it from the record; the state machine leaves it to the stage results).
    failed_stage: str | None = None


class JobSummary(BaseModel):
    """Where a job stands: what the status API returns, small enough to poll every second."""

    job_id: str
    tenant: str
    status: JobStatus
    stage: str | None = Field(None, description="the stage running now (PROCESSING only)")
    reason: str | None = Field(None, description="why the photo was REJECTED")
    error: str | None = Field(None, description="what FAILED: `<stage>: <ErrorType>: <message>`")
    filename: str | None = None
    options: JobOptions = Field(default_factory=JobOptions)
    created_at: datetime
    updated_at: datetime


class ResultQuality(BaseModel):
    """How sure the result is (see service/quality.py)."""

    person_confidence: float = Field(description="probability that the subject is a person")
    framing: str = Field(description="full_body, upper_body, head_and_shoulders or face_only")
    clothing_share: float | None = Field(
        None, description="share of the person the clothing colours were taken from"
    )
    face_usable: bool | None = Field(
        None, description="whether age or sex could be read (null: face analysis off)"
    )
    reliable: bool = Field(description="true when nothing below is flagged")
    notes: list[str] = Field(
        default_factory=list, description="a plain sentence for each unreliable part"
    )


class JobResult(JobSummary):
    """The job record as clients see it (result.json, result API, DynamoDB item)."""

    schema_version: str = SCHEMA_VERSION
    image: ImageFacts | None = None
    person: dict[str, Any] | None = None
    colors: list[dict[str, Any]] | None = None
    colors_note: str | None = Field(
        default=None,
        description="why `colors` is empty when it is: too little clothing was left once head, "
        "hair, skin and hands were taken out, and its colours would describe those instead",
    )
    face: dict[str, Any] | None = None
    quality: ResultQuality | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, int] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
