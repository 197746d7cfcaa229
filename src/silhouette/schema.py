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
    SKIN = "skin"
    FACE = "face"
    MEASURE = "measure"
    OVERLAY = "overlay"
    FINALIZE = "finalize"


class View(StrEnum):
    """The photos of a capture: the body from the front (required) and from the side, a close
    portrait of the face, and a photo of a reference card or colour chart in the same light."""

    FRONT = "front"
    SIDE = "side"
    PORTRAIT = "portrait"
    CARD = "card"


class Role(StrEnum):
    """What an API key may do, each role everything the one before may: a `user` analyses and
    adjusts measurements; a `tailor` also approves them; an `admin` also reads the audit log,
    exports and erases the tenant's data. Set by the key's `role` tag (none: `user`)."""

    USER = "user"
    TAILOR = "tailor"
    ADMIN = "admin"

    def may(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


class JobOptions(BaseModel):
    """Per-job choices recorded with the QUEUED job; new options never break old clients."""

    model_config = ConfigDict(extra="ignore")

    # Strict: a client's `"yes"` or `1` is refused rather than guessed at. Stored options
    # (records, execution states, result.json) hold real booleans, so they parse as before.
    face: StrictBool = Field(True, description="age and sex of the subject's face")
    quality: Literal["fast", "quality"] = "quality"
    skin: StrictBool = Field(True, description="the skin tone of the subject's face")
    measurements: StrictBool = Field(
        False,
        description="body measurements from a full-body front view (and a side view for depths "
        "and circumferences); on by default for a capture or with height_cm",
    )
    height_cm: float | None = Field(
        None, ge=50, le=250, description="the person's stated height: the measurements' scale"
    )
    store_images: StrictBool | None = Field(
        None,
        description="keep the uploaded photos and working images for the retention period; "
        "false erases them as soon as the job ends (results stay). Unset: kept for a single "
        "photo, erased for a capture",
    )


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


class UploadedView(BaseModel):
    """One uploaded photo of a capture, as the pipeline reads it."""

    key: str
    size: int | None = None


class PipelineState(BaseModel):
    """The execution's state: what the starter put in plus each stage's result."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    bucket: str
    # The photo (a capture's front view).
    upload_key: str
    upload_size: int | None = None
    # A capture's other views; empty for a single photo.
    views: dict[View, UploadedView] = Field(default_factory=dict)
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


class BatchStep(BaseModel):
    """The input of a batch's own steps (expand, finish): the batch, and for a finish after a
    failed step, that step's error."""

    batch_id: str
    error: TaskError | None = None

    @property
    def failure(self) -> str | None:
        return f"{self.error.Error}: {self.error.Cause or ''}".rstrip(": ") if self.error else None


class ItemStep(BaseModel):
    """The input of a batch item's preparation: the item's job (a row of the batch's list)."""

    job_id: str


class FinalizeRequest(BaseModel):
    """Finalize's input: the state plus the terminal status the state machine decided on."""

    terminal: Literal[JobStatus.COMPLETED, JobStatus.REJECTED, JobStatus.FAILED]
    job: PipelineState
    # Where the job was when its execution ended without a recorded outcome (the sweeper
    # knows it from the record; the state machine leaves it to the stage results).
    failed_stage: str | None = None


class BatchItem(BaseModel):
    """Where a batch's item came from: its batch, its place in it and its source."""

    batch_id: str
    index: int = Field(ge=0, description="the item's place in the batch, from 0")
    item: str = Field(description="the client's name for it: the CSV's `id`, the ZIP entry")
    source: str = Field(description="the ZIP entry's path or the photo's URL")
    url: str | None = Field(None, description="the photo's URL, to be fetched (CSV batches)")
    extra: dict[str, str] = Field(
        default_factory=dict, description="the CSV row's other columns, carried to the report"
    )


class JobSummary(BaseModel):
    """Where a job stands: what the status API returns, small enough to poll every second."""

    job_id: str
    tenant: str
    status: JobStatus
    stage: str | None = Field(None, description="the stage running now (PROCESSING only)")
    reason: str | None = Field(None, description="why the photo was REJECTED")
    error: str | None = Field(None, description="what FAILED: `<stage>: <ErrorType>: <message>`")
    filename: str | None = None
    views: dict[View, str | None] | None = Field(
        None, description="a capture's views, each with its filename; null for a single photo"
    )
    options: JobOptions = Field(default_factory=JobOptions)
    batch: BatchItem | None = Field(None, description="the batch the job is an item of")
    created_at: datetime
    updated_at: datetime


Framing = Literal["full_body", "upper_body", "head_and_shoulders", "face_only"]


class BoundingBox(BaseModel):
    """A box in the photo's pixels (after EXIF orientation)."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(ge=0)
    height: int = Field(ge=0)


class Keypoint(BaseModel):
    """One of MediaPipe's 33 pose landmarks."""

    name: str = Field(description="MediaPipe's landmark name, e.g. left_shoulder")
    x: float = Field(description="pixels from the photo's left edge")
    y: float = Field(description="pixels from the photo's top edge")
    nx: float = Field(description="x as a share of the width; outside 0..1 beyond the photo")
    ny: float = Field(description="y as a share of the height")
    z: float = Field(description="depth relative to the hips, MediaPipe's scale")
    visibility: float = Field(ge=0, le=1, description="how likely the landmark is seen")
    in_frame: bool = Field(description="inside the photo; MediaPipe also guesses beyond it")


class PersonEvidence(BaseModel):
    """What the person's confidence is computed from (see vision/evidence.py)."""

    agreement: float = Field(description="share of the pose mask the person segmenter confirms")
    face: float = Field(description="confidence of a face at the head, 0 when none")
    torso: float = Field(description="1 when both shoulders and a hip are seen, else 0")
    presence: float = Field(description="the pose model's presence for head and shoulders")


class Person(BaseModel):
    """The photo's subject as the pose stage found it."""

    keypoints: list[Keypoint] = Field(description="33 landmarks, MediaPipe's order")
    framing: Framing = Field(description="the lowest part of the body in view")
    bbox: BoundingBox
    confidence: float = Field(ge=0, le=1, description="probability that this is a person")
    evidence: PersonEvidence
    person_count: int = Field(ge=1, description="people in the photo, faces without a pose too")
    overlapping_people: int = Field(0, ge=0, description="other people overlapping the subject")
    face_box: BoundingBox | None = Field(None, description="the subject's face, when seen")


class Colour(BaseModel):
    """A dominant clothing colour."""

    hex: str = Field(pattern="^#[0-9a-f]{6}$")
    rgb: tuple[int, int, int]
    fraction: float = Field(ge=0, le=1, description="its share of the clothing pixels")
    name: str = Field(description="the nearest CSS colour name, by perceived difference")


class AgeEstimate(BaseModel):
    status: Literal["ok", "unknown"]
    estimate: int | None = Field(None, description="years; null when unknown")
    range: tuple[int, int] | None = Field(None, description="plausible years, low and high")


class SexEstimate(BaseModel):
    value: Literal["female", "male", "unknown"]
    confidence: float | None = Field(None, description="null when unknown")


class Face(BaseModel):
    """The subject's face: `ok` with its readings, `unknown` with why, or `off` for the job."""

    status: Literal["ok", "unknown", "off"]
    reason: str | None = Field(None, description="why there is no reading (unknown, off)")
    box: BoundingBox | None = None
    detection_confidence: float | None = None
    age: AgeEstimate | None = None
    sex: SexEstimate | None = None


class CardFound(BaseModel):
    """An ID-1 card (85.60 x 53.98 mm) found in a photo."""

    view: View = Field(description="the photo it is in")
    corners: list[tuple[float, float]] = Field(
        description="its corners in that photo's pixels: top-left, top-right, bottom-right, "
        "bottom-left in the card's own frame"
    )
    mm_per_px: float = Field(description="millimetres per pixel at the card (its plane only)")
    fit_error_px: float = Field(description="how far its outline is from the fitted quadrilateral")


class Calibration(BaseModel):
    """How the photo's colours were white-balanced (see vision/calibration.py)."""

    source: Literal["colour_checker", "card", "grey_world"] = Field(
        description="colour_checker or card: a reference in the light; grey_world: a guess from "
        "the photo's average (flagged `estimated`)"
    )
    estimated: bool = Field(description="true when no reference was found (grey world)")
    found_in: View | None = Field(None, description="the photo the reference was found in")
    white_before_lab: tuple[float, float, float] = Field(
        description="the light's white as the camera recorded it, CIELAB (D65)"
    )
    white_shift_delta_e: float = Field(
        description="how far the correction moved the white point (CIEDE2000)"
    )
    cct_before_k: float | None = Field(None, description="the light's colour temperature, kelvin")
    residual_delta_e: float | None = Field(
        None, description="colour checker: mean CIEDE2000 of its patches after correction"
    )
    matrix: list[list[float]] = Field(
        description="3x3 correction applied to linear sRGB (column vectors)"
    )
    applied_to: list[str] = Field(description="the results measured through this correction")
    card: CardFound | None = Field(
        None, description="an ID-1 card in the front view: the measurements' scale"
    )


class SkinTone(BaseModel):
    """The skin tone of the subject's face: `ok`, `unknown` with why, or `off` for the job."""

    status: Literal["ok", "unknown", "off"]
    reason: str | None = Field(None, description="why there is no reading (unknown, off)")
    view: View | None = Field(None, description="the photo the face was read in")
    lab: tuple[float, float, float] | None = Field(
        None, description="median L*, a*, b* (CIELAB, D65) of the skin sampled"
    )
    ita_degrees: float | None = Field(
        None, description="individual typology angle: atan2(L* - 50, b*) in degrees"
    )
    ita_category: Literal["very_light", "light", "intermediate", "tan", "brown", "dark"] | None = (
        Field(None, description="Del Bino's ITA category")
    )
    monk: int | None = Field(
        None, ge=1, le=10, description="nearest Monk Skin Tone swatch (1 lightest, 10 darkest)"
    )
    monk_hex: str | None = None
    monk_delta_e: float | None = Field(None, description="CIEDE2000 to that swatch")
    hue_angle: float | None = Field(None, description="h_ab in degrees")
    undertone: Literal["warm", "neutral", "cool"] | None = Field(
        None, description="from the hue angle (a heuristic: see the README)"
    )
    patch_count: int = Field(0, description="skin patches that counted (cheeks, forehead, neck)")
    pixel_count: int = 0
    confidence: float | None = Field(None, ge=0, le=1)
    notes: list[str] = Field(default_factory=list, description="why the confidence dropped")


class Scale(BaseModel):
    """Pixels to centimetres in one view."""

    source: Literal["card", "height"]
    cm_per_px: float
    relative_error: float = Field(description="its uncertainty, as a share (0.02: 2%)")
    notes: list[str] = Field(default_factory=list)


class MeasuredLine(BaseModel):
    """A segment measured in one view, in that view's pixels."""

    view: View
    start: tuple[float, float]
    end: tuple[float, float]


class Measurement(BaseModel):
    """One body measurement: a value with its error band, or `missing` with why."""

    status: Literal["ok", "missing"]
    value_cm: float | None = None
    error_cm: float | None = Field(None, description="the value is within +- this (about 1 sigma)")
    value_px: float | None = Field(None, description="in the view's pixels, even without a scale")
    error_px: float | None = None
    reason: str | None = Field(None, description="why it is missing")
    method: str | None = None
    lines: list[MeasuredLine] = Field(
        default_factory=list, description="what was measured, to draw it"
    )


class BodyMeasurements(BaseModel):
    """Body measurements: `ok` (some values may still be missing), `unknown` with why, or `off`
    for the job."""

    status: Literal["ok", "unknown", "off"]
    reason: str | None = None
    unit: Literal["cm"] = "cm"
    scale: Scale | None = Field(None, description="the front view's")
    side_scale: Scale | None = None
    values: dict[str, Measurement] = Field(default_factory=dict)
    confidence: float | None = Field(None, ge=0, le=1)
    notes: list[str] = Field(default_factory=list)


class ResultQuality(BaseModel):
    """How sure the result is (see service/quality.py)."""

    person_confidence: float = Field(description="probability that the subject is a person")
    framing: Framing
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
    person: Person | None = None
    colors: list[Colour] | None = None
    colors_note: str | None = Field(
        default=None,
        description="why `colors` is empty when it is: too little clothing was left once head, "
        "hair, skin and hands were taken out, and its colours would describe those instead",
    )
    face: Face | None = None
    view_images: dict[View, ImageFacts] | None = Field(
        None, description="a capture's other views, as ingest read them"
    )
    side_person: Person | None = Field(None, description="the subject in the side view")
    calibration: Calibration | None = None
    skin: SkinTone | None = None
    measurements: BodyMeasurements | None = None
    quality: ResultQuality | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, int] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
