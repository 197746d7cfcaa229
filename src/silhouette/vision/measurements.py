"""Body measurements from a front and a side photo: widths, depths, lengths and circumferences.

The caller passes what the pose and segment stages found in each photo, the person's silhouette
(a mask) and MediaPipe's 33 pose keypoints, and a scale: centimetres per pixel from an ID-1 card
held in the body's plane (`scale_from_card`), or the person's stated height (`scale_from_height`
finds the head top and the soles). Without a scale every width, depth and length is still given
in pixels (`value_px`) so that a later scale can convert it. Nothing here loads a model.

Definitions. Levels are image rows placed from the keypoints: the shoulder line and the hip line
are the midpoints of the two shoulder and the two hip keypoints, and a level at share t lies t of
the way from the shoulder line down to the hip line (t = 1 is the hip line). A torso row is the
run of mask pixels in that row that contains the body's midline (the line from the shoulders'
midpoint to the hips' midpoint), with an arm that touches the torso cut away (see arms below).
- shoulder_width: the silhouette's breadth across the shoulders (over the deltoids: bideltoid,
  not the bony biacromial breadth a silhouette cannot show), the outer edges of the run through
  the midline on the row of the shoulder keypoints; needs the arms down (the upper arms within
  60 degrees of hanging straight), else that row runs out along the arms.
- chest_width: the torso row at t = 0.25 (under the armpits, over the chest).
- waist_width: the narrowest torso row between t = 0.4 and t = 0.9 (rows smoothed over 2% of the
  torso length to pick it; the width reported is the chosen row's own).
- hip_width: the widest torso row between t = 0.9 and t = 1.25, above the crotch: MediaPipe's hip
  keypoints sit about at the hip joints, the widest point (the greater trochanters, buttocks) a
  little below them.
- torso_length: from the shoulders' midpoint to the hips' midpoint (joint to joint).
- inseam: from the crotch, the top of the gap between the legs on the legs' midline, straight
  down to the heels' mean height (the ankles' when the heels are not seen); legs set apart by an
  angle a understate the inner leg by 1 - cos(a) (1.5% at 10 degrees). Not given when the gap
  starts more than 0.35 torso lengths below the hip line (the crotch lies about 0.2 below it):
  thighs together or a long coat hide the crotch.
- arm_length: shoulder to elbow to wrist (joint centres, hand not included), on the longer of the
  fully seen arms: foreshortening only shortens an arm.
- chest_depth, waist_depth, hip_depth: in the side view, the run through the midline at the same
  levels as the front's chest, waist and hip rows: each level keeps its share t of the torso and
  is placed on the side view's own shoulder and hip keypoints (the two photos are framed
  differently, so rows cannot be copied).
- chest/waist/hip_circumference: the perimeter of an ellipse with semi-axes width / 2 and
  depth / 2, by Ramanujan's second approximation: within 1e-8 of the exact perimeter (relative)
  for any body's aspect ratio (depth / width from 0.4 to 1), 1e-6 even at 0.2.
Arms: an arm seen by its keypoints (shoulder, elbow, wrist, hand) whose line crosses a torso row
in that row's outer 40% touches the torso there; the row is cut where the arm begins: the row's
end (the arm's outer edge) less the arm's width, measured where the arm hangs free between the
shoulder and hip lines, or else mirrored about the arm's line (the joints lie mid-arm), at most
30% of the torso length (about 15 cm, a sleeve included). An arm line in the middle of the row
lies over the torso (a hand on the belly, the near arm of a profile) and leaves the outline alone.

Scales: each view has its own, the two photos being framed differently: its card's (given with
the view), else the stated height over the person's height in that view, else the height
measured in the other view with that view's card (a card in the front photo scales the side).
Circumferences mix the two views' scales and have no pixel value.
Confidence (0-1) is a product of factors, each with a note: no side view 0.75; a front view not
frontal 0.5, a little turned 0.75 (each sign of it); a side view not a profile 0.6, nearly 0.85;
an arm touching the torso 0.85 and no arm seen 0.9 (per view); knees bent beyond 10 degrees
down to 0.5 at 40 degrees; keypoints' mean visibility under 0.8 in proportion.

Error bands (error_cm, error_px) are about one standard deviation, combined in quadrature:
- the mask's edge: 2 px at each end of a width or height;
- keypoints: each placed within 3% of the torso length (a level made from two keypoints within
  3% / sqrt(2)); a level's error moves a width by half its change over that many rows; a side
  view's levels carry both views' keypoint errors;
- an arm cut away: 25% of the arm's width on each side cut (the torso's edge lies somewhere
  under the arm), and twice a keypoint's error when the arm's width was not seen; no arm seen
  in a view at all: 10% of the torso length, as an arm may lie against the torso unseen;
- the scale's relative error (below), applied to the value;
- circumferences: the width's and the depth's errors carried through Ramanujan's formula, and a
  model error for a body's cross-section not being an ellipse: 4% at the chest (the back is flat,
  the breasts and shoulder blades bulge), 3% at the waist (closest to an ellipse) and 4% at the
  hips (the buttocks). These are heuristics; no labelled measurements exist here to fit them.
Height scale (relative, 1 sigma): standing posture 1% (people stand 1-2 cm below their measured
stature) plus the height lost to bent knees (straight legs assumed: a knee bent by b degrees
loses 0.52 (1 - cos(b / 2)) of the stature, the legs being 52% of it); the mask's edge (2 px at
the top and at the bottom); the soles 1% (the mask's lowest row under the feet is the shoe's
sole: shoes add 1-3 cm) or 1.5% when the heel keypoints stand in for a sole the mask does not
show; hair 0.8% (the mask's top is the hair's); perspective 1%, plus 2% per half-frame the
person's centre is off the photo's centre and up to 2% more as the person fills the photo's
height from 80% to 100% (a close camera, a wide lens).
Card scale (relative, 1 sigma): the card's own reading (default 1%), the card's distance from the
body's plane (unknown: default 4%, a card held 5-15 cm in front of the body seen from 2-3 m), and
a tilted camera's changing scale with height: 3% per torso length between the card and the
middle of the torso.

Limits: there is no ground truth here. On drawn figures the geometry is exact (widths within
1-2 px); on photos accuracy depends on clothing (a loose garment widens every outline), the pose,
the camera's distance and lens, and the mask's edges: expect a few centimetres on widths and
lengths, more on circumferences. Pose checks: a front view turned by more than ~55 degrees (the
shoulder keypoints closer than 0.4 torso lengths) gives no widths or circumferences; a side view
whose shoulders are more than 0.4 torso lengths apart is not a profile and gives no depths.
Milder turns keep the values with a lower confidence and a note.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from silhouette.vision.types import Keypoint

ViewName = Literal["front", "side"]
ScaleSource = Literal["card", "height"]
Status = Literal["ok", "missing"]
Point = tuple[float, float]

MEASUREMENT_NAMES = (
    "shoulder_width", "chest_width", "waist_width", "hip_width", "torso_length", "inseam",
    "arm_length", "chest_depth", "waist_depth", "hip_depth", "chest_circumference",
    "waist_circumference", "hip_circumference",
)  # fmt: skip
TORSO_WIDTHS = ("chest_width", "waist_width", "hip_width")
DEPTHS = ("chest_depth", "waist_depth", "hip_depth")
# Circumference -> (width, depth, model error): a cross-section is not an ellipse (see above).
CIRCUMFERENCES = {
    "chest_circumference": ("chest_width", "chest_depth", 0.04),
    "waist_circumference": ("waist_width", "waist_depth", 0.03),
    "hip_circumference": ("hip_width", "hip_depth", 0.04),
}

NO_SCALE = "no scale: give height_cm or include an ID-1 card"
NO_SIDE_VIEW = "no side view"

# Levels, as shares of the way from the shoulder line (0) to the hip line (1).
CHEST_SHARE = 0.25
WAIST_BAND = (0.4, 0.9)
HIP_BAND = (0.9, 1.25)
# The side view's waist when the front cannot place one: the natural waist's usual share.
DEFAULT_WAIST_SHARE = 0.62
# Widths are smoothed over this share of the torso length to pick the waist and hip rows.
SMOOTHING_SHARE = 0.02

# Errors (about one standard deviation).
MASK_EDGE_PX = 2.0
KEYPOINT_ERROR = 0.03  # of the torso length, per keypoint
ARM_CUT_ERROR = 0.25  # of the arm's width, per side cut
ARM_UNSEEN_ERROR = 0.10  # of the torso length, when no arm's keypoints are seen
# An arm crossing a torso row beyond this share of the way from the midline to the row's end
# touches the torso's side; nearer the midline it lies over the torso.
ARM_AT_EDGE = 0.6
MIN_ARM_SAMPLES = 5
# No arm is wider across a row than this share of the torso length (about 15 cm, a sleeve
# included): a wider run beside an arm's line is the arm and the torso's side, or a bag.
MAX_ARM_WIDTH_SHARE = 0.3

# Height scale (see the module's docstring).
POSTURE_ERROR = 0.01
LEG_SHARE_OF_STATURE = 0.52
SOLE_ERROR = 0.01
HEEL_SOLE_ERROR = 0.015
# The heel keypoint sits at the back of the heel, about 1.5% of the stature above the floor.
HEEL_TO_SOLE = 0.015
HAIR_ERROR = 0.008
PERSPECTIVE_BASE = 0.01
PERSPECTIVE_OFF_CENTRE = 0.02  # per half-frame of offset
PERSPECTIVE_CLOSE = 0.02  # at a person filling the photo's height
CLOSE_FILL = 0.8
# The head top is looked for in a band this share of the eyes-to-feet height either side of the
# face's keypoints (a head is about 9% of the stature across); the soles within this share
# below the lowest foot keypoint, in the feet's columns widened by it.
HEAD_BAND_SHARE = 0.04
SOLE_REACH_SHARE = 0.05
FEET_MARGIN_SHARE = 0.05
# The crotch lies about 0.2 torso lengths below the hip joints (crotch height 47% of the
# stature, hip joints 53%, shoulder-to-hip 29%); a gap between the legs starting more than this
# far below the hip line is where touching thighs part, or a long coat's hem.
CROTCH_MAX_BELOW_HIPS = 0.35

# Card scale.
CARD_READING_ERROR = 0.01
CARD_OFF_PLANE_ERROR = 0.04
CARD_TILT_PER_TORSO = 0.03
CARD_TILT_UNKNOWN = 0.02  # no torso keypoints to place the card against

# Pose checks. A frontal adult's shoulder keypoints are about 0.7 torso lengths apart (joints
# about 20% of the stature apart, shoulder-to-hip midpoints about 29%); turning by a shrinks
# that by cos(a). A frontal person's shoulder keypoints are also 1.3-1.8 times as far apart as
# the hip keypoints; less, and the shoulders are turned more than the hips.
FRONTAL_MIN = 0.4  # ~55 degrees: widths are not given
FRONTAL_SURE = 0.55  # ~38 degrees: given, with a lower confidence
SHOULDERS_OVER_HIPS_MIN = 1.1
# MediaPipe's depth (z) is coarse, and scaled to the crop a person was found in: a turn it
# shows only lowers the confidence, and only beyond this angle.
Z_TURN_DEGREES = 45.0
PROFILE_SURE = 0.25  # shoulders' x apart / torso length, below: a profile
PROFILE_MAX = 0.4  # above: both shoulders are seen, not a profile
KNEE_BEND_ALLOWED = 10.0  # degrees off straight
GOOD_VISIBILITY = 0.8
BODY_LANDMARK_PAIRS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
FEET = ("left_heel", "right_heel", "left_foot_index", "right_foot_index")
HEAD = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")

# How much each problem lowers the confidence (multiplied together).
NO_SIDE_VIEW_FACTOR = 0.75
NOT_FRONTAL_FACTOR = 0.5
TURNED_FACTOR = 0.75
NOT_PROFILE_FACTOR = 0.6
NEAR_PROFILE_FACTOR = 0.85
ARMS_TOUCHING_FACTOR = 0.85
ARMS_UNSEEN_FACTOR = 0.9


@dataclass(frozen=True)
class Scale:
    """Centimetres per pixel in one photo, its relative error (1 sigma) and where it came from."""

    cm_per_px: float
    relative_error: float
    source: ScaleSource
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BodyView:
    """One photo of the body: the person's silhouette (H, W; any nonzero pixel is the person),
    the pose keypoints in its pixels, and its scale when one is known (a card's)."""

    mask: np.ndarray
    keypoints: Sequence[Keypoint]
    cm_per_px: float | None = None
    scale_error: float = 0.0  # relative
    scale_source: ScaleSource = "card"

    def __post_init__(self) -> None:
        if self.mask.ndim != 2:
            raise ValueError(f"the mask must be (H, W), not {self.mask.shape}")
        object.__setattr__(self, "mask", self.mask.astype(bool, copy=False))


@dataclass(frozen=True)
class Line:
    """A line drawn for a measurement, in the pixels of one view."""

    view: ViewName
    start: Point
    end: Point


@dataclass(frozen=True)
class Measurement:
    """One measurement. `error_cm` / `error_px` are +- about one standard deviation. A value
    without a scale is "missing" in centimetres but keeps `value_px` (widths, depths, lengths;
    circumferences mix two views' scales and have none)."""

    name: str
    value_cm: float | None
    error_cm: float | None
    value_px: float | None
    error_px: float | None
    status: Status
    reason: str
    method: str
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class BodyMeasurements:
    """Every measurement in MEASUREMENT_NAMES' order, the views' scales, how far to trust them
    (0-1) and a plain sentence for each problem found."""

    measurements: list[Measurement]
    scale: Scale | None
    side_scale: Scale | None
    confidence: float
    notes: list[str]

    def get(self, name: str) -> Measurement:
        return next(m for m in self.measurements if m.name == name)


@dataclass(frozen=True)
class Stature:
    """The person's height in one photo: the head's top and the soles (pixel edges), the
    height in pixels and its relative error (1 sigma) with what it is made of."""

    head_top: Point
    sole: Point
    pixels: float
    relative_error: float
    notes: tuple[str, ...]


# --- scales ---------------------------------------------------------------------------------------


def scale_from_height(
    mask: np.ndarray, keypoints: Sequence[Keypoint], height_cm: float
) -> Scale | None:
    """The scale of a full-body photo of a person `height_cm` tall; None when the head's top
    or the feet are not seen (`measure_stature` says why)."""
    stature = measure_stature(mask, keypoints)
    return None if isinstance(stature, str) else _height_scale(stature, height_cm)


def scale_from_card(
    mm_per_px: float,
    card_centre_y: float,
    keypoints: Sequence[Keypoint],
    reading_error: float = CARD_READING_ERROR,
    off_plane_error: float = CARD_OFF_PLANE_ERROR,
) -> Scale:
    """The scale given by an ID-1 card held in the body's plane, its centre at row
    `card_centre_y`: exact at the card, less so the farther the card is from the torso's middle
    (a tilted camera) and from the body's plane (unknown: `off_plane_error`)."""
    frame = _Frame.of(_Pose.of(keypoints))
    if frame is None:
        tilt, tilt_note = CARD_TILT_UNKNOWN, "no torso keypoints to place the card against"
    else:
        torsos_away = abs(card_centre_y - frame.level(0.5)) / frame.length
        tilt = CARD_TILT_PER_TORSO * torsos_away
        tilt_note = f"the card is {torsos_away:.1f} torso lengths from the torso's middle"
    error = math.hypot(reading_error, off_plane_error, tilt)
    notes = (
        f"card scale: +-{error:.1%} (reading {reading_error:.1%}, distance from the body's "
        f"plane {off_plane_error:.1%}, camera tilt {tilt:.1%}: {tilt_note})",
    )
    return Scale(mm_per_px / 10.0, error, "card", notes)


def measure_stature(mask: np.ndarray, keypoints: Sequence[Keypoint]) -> Stature | str:
    """The person's height in pixels from the head's top (the mask's topmost row in the head's
    columns, connected down to the eyes) to the soles (the mask's lowest row under the feet,
    connected to the feet keypoints), or why it cannot be found.

    The mask's sole is preferred to the heel keypoints: stature is measured to the floor, and
    the heel keypoint's height above it varies with shoes and with the model's guess (feet are
    its least precise points). When the mask shows no sole there (it ends above the feet, or
    runs on into a shadow) the lowest foot keypoint plus HEEL_TO_SOLE of the height is used."""
    mask = mask.astype(bool, copy=False)
    pose = _Pose.of(keypoints)
    feet = [point for name in FEET if (point := pose.get(name))]
    if not feet:
        return "the feet are not visible (heels and toes not seen inside the photo)"
    face = [point for name in HEAD if (point := pose.get(name))]
    if not face:
        return "the head is not visible"
    foot_y = max(point.y for point in feet)
    eye_y = min(point.y for point in face)
    reach = foot_y - eye_y
    if reach <= 0:
        return "the feet are not below the head: the person is not standing"
    head_x = statistics.fmean(point.x for point in face)
    top = _head_top(mask, head_x, HEAD_BAND_SHARE * reach, eye_y)
    if top is None:
        return "the mask does not reach up over the eyes: the head's top is not found"
    if top[1] <= 0:
        return "the head's top is cut off by the photo's top edge"
    feet_x = [point.x for point in feet] + [
        point.x for name in ("left_ankle", "right_ankle") if (point := pose.get(name))
    ]
    sole = _sole(mask, feet_x, foot_y, FEET_MARGIN_SHARE * reach, SOLE_REACH_SHARE * reach)
    if sole == "cut":
        return "the feet reach the photo's bottom edge: they may be cut off"
    notes: list[str] = []
    if sole is None:
        sole_y, sole_error = foot_y + HEEL_TO_SOLE * (foot_y - top[1]), HEEL_SOLE_ERROR
        sole_x = statistics.fmean(point.x for point in feet)
        notes.append(
            "the mask shows no sole under the feet (it ends above them, or runs on below them "
            "into a shadow): the lowest heel or toe keypoint stands in"
        )
    else:
        (sole_x, sole_y), sole_error = sole, SOLE_ERROR
    pixels = sole_y - top[1]
    bend = _knee_bend(pose)
    posture = POSTURE_ERROR + LEG_SHARE_OF_STATURE * (1 - math.cos(math.radians(bend / 2)))
    edges = math.hypot(MASK_EDGE_PX, MASK_EDGE_PX) / pixels
    perspective = _perspective_error(
        mask.shape, (top[0] + sole_x) / 2, (top[1] + sole_y) / 2, pixels
    )
    error = math.hypot(posture, edges, sole_error, HAIR_ERROR, perspective)
    notes.append(
        f"height in the photo {pixels:.0f} px +-{error:.1%} (posture {posture:.1%}, mask edges "
        f"{edges:.1%}, soles {sole_error:.1%}, hair {HAIR_ERROR:.1%}, perspective "
        f"{perspective:.1%})"
    )
    if bend > KNEE_BEND_ALLOWED:
        notes.append(f"the knees are bent by {bend:.0f} degrees: the height comes out short")
    return Stature(top, (sole_x, sole_y), pixels, error, tuple(notes))


def _height_scale(
    stature: Stature, height_cm: float, height_error: float = 0.0, how: str = ""
) -> Scale:
    notes = stature.notes + ((how,) if how else ())
    error = math.hypot(stature.relative_error, height_error)
    return Scale(height_cm / stature.pixels, error, "height", notes)


def _head_top(mask: np.ndarray, centre_x: float, half_width: float, eye_y: float) -> Point | None:
    """The top of the mask rows that run unbroken up from the eyes in the head's columns."""
    left, right = max(0, int(centre_x - half_width)), int(centre_x + half_width) + 1
    band = mask[: int(eye_y) + 1, left:right]
    rows = band.any(axis=1)
    if rows.size == 0 or not rows[-1]:
        return None
    gaps = np.flatnonzero(~rows)
    top = int(gaps[-1]) + 1 if gaps.size else 0
    return float(left + np.flatnonzero(band[top]).mean() + 0.5), float(top)


def _sole(
    mask: np.ndarray, feet_x: list[float], foot_y: float, margin: float, reach: float
) -> Point | Literal["cut"] | None:
    """The bottom edge of the mask rows that run unbroken down from the lowest foot keypoint
    under the feet: None when the mask has no foot there or runs on past `reach` (a shadow),
    "cut" when the feet run into the photo's bottom edge."""
    height = mask.shape[0]
    left, right = max(0, int(min(feet_x) - margin)), int(max(feet_x) + margin) + 1
    start = int(foot_y)
    end = min(height, int(foot_y + reach) + 1)
    rows = mask[start:end, left:right].any(axis=1)
    if rows.size == 0 or not rows[0]:
        return None
    gaps = np.flatnonzero(~rows)
    if not gaps.size:
        return "cut" if end == height else None
    last = start + int(gaps[0]) - 1
    return float(left + np.flatnonzero(mask[last, left:right]).mean() + 0.5), float(last + 1)


def _perspective_error(
    shape: tuple[int, ...], centre_x: float, centre_y: float, pixels: float
) -> float:
    """A heuristic for perspective: a person off the photo's centre is seen at an angle, and
    one filling the photo's height was taken from close by or with a wide lens."""
    height, width = shape[:2]
    off_centre = max(
        abs(centre_x - width / 2) / (width / 2), abs(centre_y - height / 2) / (height / 2)
    )
    closeness = min(1.0, max(0.0, (pixels / height - CLOSE_FILL) / (1 - CLOSE_FILL)))
    return PERSPECTIVE_BASE + PERSPECTIVE_OFF_CENTRE * off_centre + PERSPECTIVE_CLOSE * closeness


# --- keypoints, torso and arms --------------------------------------------------------------------


@dataclass(frozen=True)
class _Pose:
    """The keypoints seen inside the photo (visibility at least VISIBLE), by name."""

    points: dict[str, Keypoint]

    @classmethod
    def of(cls, keypoints: Sequence[Keypoint]) -> _Pose:
        return cls({point.name: point for point in keypoints if point.usable})

    def get(self, name: str) -> Keypoint | None:
        return self.points.get(name)

    def both(self, part: str) -> tuple[Keypoint, Keypoint] | None:
        left, right = self.get(f"left_{part}"), self.get(f"right_{part}")
        return (left, right) if left and right else None

    def middle(self, part: str) -> Point | None:
        """The midpoint of the left and right `part`, or the one seen (a profile's far side)."""
        seen = [p for p in (self.get(f"left_{part}"), self.get(f"right_{part}")) if p]
        if not seen:
            return None
        return statistics.fmean(p.x for p in seen), statistics.fmean(p.y for p in seen)


@dataclass(frozen=True)
class _Frame:
    """The torso's axis: the shoulders' and the hips' midpoints."""

    shoulder: Point
    hip: Point

    @classmethod
    def of(cls, pose: _Pose) -> _Frame | None:
        shoulder, hip = pose.middle("shoulder"), pose.middle("hip")
        if shoulder is None or hip is None or hip[1] <= shoulder[1]:
            return None
        return cls(shoulder, hip)

    @property
    def length(self) -> float:
        return math.dist(self.shoulder, self.hip)

    def level(self, share: float) -> float:
        """The row `share` of the way from the shoulder line to the hip line."""
        return self.shoulder[1] + share * (self.hip[1] - self.shoulder[1])

    def share(self, y: float) -> float:
        return (y - self.shoulder[1]) / (self.hip[1] - self.shoulder[1])

    def centre_x(self, y: float) -> float:
        """The body's midline at row y (extended beyond the shoulders and hips)."""
        share = self.share(y)
        return self.shoulder[0] + share * (self.hip[0] - self.shoulder[0])

    @property
    def level_error(self) -> float:
        """A level's error in rows: placed from two keypoints' midpoints."""
        return KEYPOINT_ERROR * self.length / math.sqrt(2)


@dataclass(frozen=True)
class _Arm:
    """An arm's line (shoulder, elbow, then wrist and hand when seen) and its width across a
    row where it hangs free of the torso (None when it never does)."""

    points: tuple[Point, ...]
    width: float | None

    def xs_at(self, y: float) -> list[float]:
        """Where the arm's line crosses row y (several times for a bent arm)."""
        crossings = []
        for (x1, y1), (x2, y2) in zip(self.points, self.points[1:], strict=False):
            if min(y1, y2) <= y <= max(y1, y2) and y1 != y2:
                crossings.append(x1 + (y - y1) / (y2 - y1) * (x2 - x1))
        return crossings


def _arm_lines(pose: _Pose) -> list[tuple[Point, ...]]:
    """Each arm seen at least from the shoulder to the elbow, as far down as it is seen."""
    lines = []
    for side in ("left", "right"):
        chain = []
        for joint in ("shoulder", "elbow", "wrist"):
            point = pose.get(f"{side}_{joint}")
            if point is None:
                break
            chain.append((point.x, point.y))
        hand = [p for n in ("index", "pinky") if (p := pose.get(f"{side}_{n}"))]
        if len(chain) == 3 and hand:
            chain.append((statistics.fmean(p.x for p in hand), statistics.fmean(p.y for p in hand)))
        if len(chain) >= 2:
            lines.append(tuple(chain))
    return lines


def _arms(mask: np.ndarray, pose: _Pose, frame: _Frame) -> list[_Arm]:
    """The arms seen, each with its width measured in the rows between the shoulder and hip
    lines where it hangs free of the torso (its run does not reach the midline); lower down a
    hand's run may be a thigh's."""
    arms = []
    for line in _arm_lines(pose):
        probe = _Arm(line, None)
        widths = []
        top = max(min(y for _, y in line), frame.shoulder[1])
        bottom = min(max(y for _, y in line), frame.hip[1])
        for y in range(max(0, math.ceil(top)), min(mask.shape[0], int(bottom) + 1)):
            centre = frame.centre_x(y)
            for x in probe.xs_at(y):
                run = _run_at(mask[y], x)
                if run and not run[0] <= centre < run[1]:
                    widths.append(run[1] - run[0])
        width = (
            min(float(statistics.median(widths)), MAX_ARM_WIDTH_SHARE * frame.length)
            if len(widths) >= MIN_ARM_SAMPLES
            else None
        )
        arms.append(_Arm(line, width))
    return arms


def _knee_bend(pose: _Pose) -> float:
    """How far the more bent knee is from straight, in degrees (0 when no leg is seen)."""
    bends = [0.0]
    for side in ("left", "right"):
        hip, knee, ankle = (pose.get(f"{side}_{joint}") for joint in ("hip", "knee", "ankle"))
        if hip and knee and ankle:
            up = (hip.x - knee.x, hip.y - knee.y)
            down = (ankle.x - knee.x, ankle.y - knee.y)
            norms = math.hypot(*up) * math.hypot(*down)
            if norms:
                cosine = (up[0] * down[0] + up[1] * down[1]) / norms
                bends.append(180.0 - math.degrees(math.acos(max(-1.0, min(1.0, cosine)))))
    return max(bends)


# --- rows of the mask -----------------------------------------------------------------------------


def _run_at(row: np.ndarray, x: float) -> tuple[int, int] | None:
    """The run of mask pixels in `row` that contains column x, as pixel edges [start, end)."""
    column = int(x)
    if not 0 <= column < row.size or not row[column]:
        return None
    background = np.flatnonzero(~row)
    before, after = background[background < column], background[background > column]
    start = int(before[-1]) + 1 if before.size else 0
    end = int(after[0]) if after.size else row.size
    return start, end


@dataclass(frozen=True)
class _Slice:
    """A torso row: its edges (pixel edges, arms cut away), the error the cuts add, and whether
    an arm touched the torso there."""

    y: int
    left: float
    right: float
    cut_error: float
    arm_touching: bool

    @property
    def width(self) -> float:
        return self.right - self.left


def _torso_slice(mask: np.ndarray, y: int, frame: _Frame, arms: list[_Arm]) -> _Slice | None:
    if not 0 <= y < mask.shape[0]:
        return None
    centre = frame.centre_x(y)
    run = _run_at(mask[y], centre)
    if run is None:
        return None
    edges = [float(run[0]), float(run[1])]
    cuts = []
    for arm in arms:
        for x in arm.xs_at(y):
            if not run[0] < x < run[1]:
                continue  # hanging free of the torso
            side = 1 if x > centre else 0  # which end of the run the arm is at
            if abs(x - centre) <= ARM_AT_EDGE * abs(run[side] - centre):
                continue  # over the torso, inside its outline
            inner, error = _arm_inner_edge(arm, x, run[side], frame)
            # The cut never crosses the midline; of two arms' cuts the deeper one holds.
            inner = max(centre + 1, inner) if side else min(centre - 1, inner)
            edges[side] = min(edges[side], inner) if side else max(edges[side], inner)
            cuts.append(error)
    left, right = edges
    return _Slice(y, left, right, math.hypot(*cuts) if cuts else 0.0, bool(cuts))


def _arm_inner_edge(arm: _Arm, x: float, outer: float, frame: _Frame) -> tuple[float, float]:
    """Where an arm touching the torso begins, from the row's end (the arm's outer edge): its
    width in, when seen hanging free; else mirrored about its line (the joints lie mid-arm),
    which carries the line's error twice. And the error of that edge: the torso's own edge lies
    somewhere under the arm."""
    towards = 1.0 if outer > x else -1.0
    if arm.width is not None:
        return outer - towards * arm.width, ARM_CUT_ERROR * arm.width
    width = min(2 * abs(outer - x), MAX_ARM_WIDTH_SHARE * frame.length)
    return outer - towards * width, math.hypot(
        ARM_CUT_ERROR * width, 2 * KEYPOINT_ERROR * frame.length
    )


def _level_error(width_at: Callable[[int], float | None], y: int, rows: float) -> float:
    """Half the change in width over +- `rows` (a level's error) around row y."""
    here = width_at(y)
    above, below = width_at(round(y - rows)), width_at(round(y + rows))
    if above is not None and below is not None:
        return abs(below - above) / 2
    other = above if above is not None else below
    return abs(other - here) if other is not None and here is not None else 0.0


def _smoothed(values: list[float], window: int) -> list[float]:
    half = window // 2
    return [statistics.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]


@dataclass(frozen=True)
class _Pixels:
    """A measurement in pixels, before a scale."""

    value: float
    error: float
    lines: tuple[Line, ...]
    method: str


Found = _Pixels | str  # a pixel measurement, or why it is missing


class _Torso:
    """One view's torso rows (arms cut away), measured at levels."""

    def __init__(self, view: ViewName, mask: np.ndarray, frame: _Frame, arms: list[_Arm]):
        self.view, self.mask, self.frame, self.arms = view, mask, frame, arms
        # No arm seen at all: one may lie against the torso, uncut.
        self.unseen_arm_error = 0.0 if arms else ARM_UNSEEN_ERROR * frame.length
        self.touching = False

    def slice(self, y: int) -> _Slice | None:
        return _torso_slice(self.mask, y, self.frame, self.arms)

    def width(self, y: int) -> float | None:
        found = self.slice(y)
        return found.width if found else None

    def rows(self, band: tuple[float, float]) -> range:
        return range(round(self.frame.level(band[0])), round(self.frame.level(band[1])) + 1)

    def extreme(self, rows: range, widest: bool) -> int | None:
        """The row of the narrowest (widest) torso row, on widths smoothed over a few rows."""
        measured = [(y, w) for y in rows if (w := self.width(y)) is not None]
        if not measured:
            return None
        window = max(1, round(SMOOTHING_SHARE * self.frame.length))
        smooth = _smoothed([w for _, w in measured], window)
        pick = max if widest else min
        return measured[smooth.index(pick(smooth))][0]

    def measure(self, y: int, level_rows: float, what: str) -> Found:
        """The torso's width (depth) on row y, its error and the line to draw."""
        found = self.slice(y)
        if found is None:
            return f"the mask has no {what} at that level in the {self.view} view"
        self.touching |= found.arm_touching
        error = math.hypot(
            MASK_EDGE_PX,
            MASK_EDGE_PX,
            found.cut_error,
            self.unseen_arm_error,
            _level_error(self.width, y, level_rows),
        )
        method = f"torso row {found.y} at {self.frame.share(y):.2f} of shoulders to hips"
        if found.arm_touching:
            method += ", an arm touching the torso cut away"
        line = Line(self.view, (found.left, y), (found.right, y))
        return _Pixels(found.width, error, (line,), method)


# --- findings: notes and confidence ---------------------------------------------------------------


@dataclass
class _Findings:
    notes: list[str] = field(default_factory=list)
    confidence: float = 1.0

    def add(self, note: str, factor: float = 1.0) -> None:
        self.notes.append(note)
        self.confidence *= factor


def _check_knees(pose: _Pose, view: ViewName, findings: _Findings) -> None:
    """Bent knees lower the confidence: every level and the height assume straight legs."""
    bend = _knee_bend(pose)
    if bend > KNEE_BEND_ALLOWED:
        findings.add(
            f"The knees are bent by {bend:.0f} degrees in the {view} view.",
            max(0.5, 1 - (bend - KNEE_BEND_ALLOWED) / 60),
        )


def _check_visibility(keypoints: Sequence[Keypoint], view: ViewName, findings: _Findings) -> None:
    """Keypoints the model is unsure of lower the confidence: every level comes from them."""
    by_name = {point.name: point for point in keypoints}
    # Per pair the better seen side: a profile's far side is hidden by design.
    seen = [
        max((by_name[f"{side}_{part}"].visibility for side in ("left", "right")), default=0.0)
        if f"left_{part}" in by_name and f"right_{part}" in by_name
        else 0.0
        for part in BODY_LANDMARK_PAIRS
    ]
    mean = statistics.fmean(seen)
    if mean < GOOD_VISIBILITY:
        findings.add(
            f"The body's keypoints are seen uncertainly in the {view} view "
            f"(mean visibility {mean:.2f}).",
            max(0.3, mean / GOOD_VISIBILITY),
        )


def _frontal_problem(pose: _Pose, frame: _Frame, width: int, findings: _Findings) -> str | None:
    """Why the front view's widths cannot be used (the body is turned), or None; a milder turn
    only lowers the confidence."""
    shoulders, hips = pose.both("shoulder"), pose.both("hip")
    assert shoulders is not None  # the front view needs both shoulders
    apart = abs(shoulders[0].x - shoulders[1].x)
    ratio = apart / frame.length
    if ratio < FRONTAL_MIN:
        findings.add(
            f"The front view is not frontal: the shoulders are {ratio:.2f} torso lengths apart "
            f"(a frontal body about 0.7); its widths are not given.",
            NOT_FRONTAL_FACTOR,
        )
        return f"the front view is not frontal (shoulders {ratio:.2f} torso lengths apart)"
    if ratio < FRONTAL_SURE:
        findings.add(
            f"The body may be turned in the front view: the shoulders are {ratio:.2f} torso "
            f"lengths apart (a frontal body about 0.7); widths come out narrow.",
            TURNED_FACTOR,
        )
    if hips and apart < SHOULDERS_OVER_HIPS_MIN * abs(hips[0].x - hips[1].x):
        findings.add(
            "The shoulders look turned against the hips in the front view (their keypoints are "
            "hardly farther apart than the hips').",
            TURNED_FACTOR,
        )
    # z is relative to the crop MediaPipe saw; taken as the whole photo's width, a rough angle.
    z_turn = math.degrees(
        math.atan2(abs(shoulders[0].z - shoulders[1].z) * width, max(apart, 1e-6))
    )
    if z_turn > Z_TURN_DEGREES:
        findings.add(
            f"MediaPipe's depth puts one shoulder nearer the camera (turned about {z_turn:.0f} "
            "degrees; a coarse estimate).",
            TURNED_FACTOR,
        )
    return None


def _profile_problem(pose: _Pose, frame: _Frame, findings: _Findings) -> str | None:
    shoulders = pose.both("shoulder")
    if shoulders is None:
        return None  # the far shoulder hidden: a profile
    ratio = abs(shoulders[0].x - shoulders[1].x) / frame.length
    if ratio > PROFILE_MAX:
        findings.add(
            f"The side view is not a profile: both shoulders are seen {ratio:.2f} torso lengths "
            "apart; its depths are not given.",
            NOT_PROFILE_FACTOR,
        )
        return "the side view is not a profile: both shoulders are seen apart"
    if ratio > PROFILE_SURE:
        findings.add(
            f"The side view is not quite a profile (shoulders {ratio:.2f} torso lengths apart): "
            "depths come out wide.",
            NEAR_PROFILE_FACTOR,
        )
    return None


def _note_arms(torso: _Torso, findings: _Findings) -> None:
    if torso.touching:
        findings.add(
            f"An arm touches the torso in the {torso.view} view: it is cut away at its inner "
            "edge and the error widened; arms held a little away from the body measure better.",
            ARMS_TOUCHING_FACTOR,
        )
    if torso.unseen_arm_error:
        findings.add(
            f"No arm is seen in the {torso.view} view: an arm against the torso cannot be cut "
            "away, so the error is widened.",
            ARMS_UNSEEN_FACTOR,
        )


# --- the front view -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Levels:
    """The front's chest, waist and hip rows as shares of shoulders-to-hips, for the side."""

    chest: float
    waist: float
    hip: float


def _front(view: BodyView, findings: _Findings) -> tuple[dict[str, Found], _Levels | None]:
    pose = _Pose.of(view.keypoints)
    names = ("shoulder_width", *TORSO_WIDTHS, "torso_length", "inseam", "arm_length")
    if pose.both("shoulder") is None:
        findings.add("The shoulders are not seen in the front view: no front measurement.")
        return dict.fromkeys(names, "shoulders not visible in the front view"), None
    _check_knees(pose, "front", findings)
    _check_visibility(view.keypoints, "front", findings)
    found: dict[str, Found] = {"arm_length": _arm_length(pose)}
    frame = _Frame.of(pose) if pose.both("hip") else None
    if frame is None:
        findings.add("The hips are not seen in the front view: no torso widths or lengths.")
        reason = "hips not visible in the front view"
        found |= dict.fromkeys(("shoulder_width", *TORSO_WIDTHS, "torso_length", "inseam"), reason)
        found["shoulder_width"] = _shoulder_width(view.mask, pose, None)
        return found, None
    turned = _frontal_problem(pose, frame, view.mask.shape[1], findings)
    torso = _Torso("front", view.mask, frame, _arms(view.mask, pose, frame))
    crotch = _crotch(view.mask, pose, frame)
    widths, levels = _torso_widths(torso, crotch)
    _note_arms(torso, findings)
    found |= widths
    found["shoulder_width"] = _shoulder_width(view.mask, pose, frame)
    found["torso_length"] = _Pixels(
        frame.length,
        KEYPOINT_ERROR * frame.length,
        (Line("front", frame.shoulder, frame.hip),),
        "shoulders' midpoint to hips' midpoint",
    )
    found["inseam"] = _inseam(pose, frame, crotch)
    if turned:
        found |= dict.fromkeys(("shoulder_width", *TORSO_WIDTHS), turned)
    return found, levels


def _shoulder_width(mask: np.ndarray, pose: _Pose, frame: _Frame | None) -> Found:
    shoulders = pose.both("shoulder")
    assert shoulders is not None
    if _arms_raised(pose):
        return "arms raised: the shoulders' row runs out along the arms"
    y = round(statistics.fmean(p.y for p in shoulders))
    centre = statistics.fmean(p.x for p in shoulders)
    run = _run_at(mask[y], centre) if 0 <= y < mask.shape[0] else None
    if run is None:
        return "the mask does not cover the shoulders' row"

    def width_at(row: int) -> float | None:
        found = _run_at(mask[row], centre) if 0 <= row < mask.shape[0] else None
        return found[1] - found[0] if found else None

    level_rows = (
        frame.level_error if frame else KEYPOINT_ERROR * abs(shoulders[0].x - shoulders[1].x)
    )
    error = math.hypot(MASK_EDGE_PX, MASK_EDGE_PX, _level_error(width_at, y, level_rows))
    line = Line("front", (float(run[0]), y), (float(run[1]), y))
    return _Pixels(run[1] - run[0], error, (line,), "outer edges on the shoulder keypoints' row")


def _arms_raised(pose: _Pose) -> bool:
    """An upper arm more than 60 degrees from hanging straight down."""
    for side in ("left", "right"):
        shoulder, elbow = pose.get(f"{side}_shoulder"), pose.get(f"{side}_elbow")
        if shoulder and elbow:
            length = math.dist((shoulder.x, shoulder.y), (elbow.x, elbow.y))
            if elbow.y - shoulder.y < math.cos(math.radians(60)) * length:
                return True
    return False


def _torso_widths(torso: _Torso, crotch: float | str) -> tuple[dict[str, Found], _Levels]:
    level_rows = torso.frame.level_error
    chest_y = round(torso.frame.level(CHEST_SHARE))
    waist_y = torso.extreme(torso.rows(WAIST_BAND), widest=False)
    hip_rows = torso.rows(HIP_BAND)
    if not isinstance(crotch, str):
        hip_rows = range(hip_rows.start, min(hip_rows.stop, int(crotch)))
    hip_y = torso.extreme(hip_rows, widest=True)
    found: dict[str, Found] = {"chest_width": torso.measure(chest_y, level_rows, "chest")}
    found["waist_width"] = (
        "the mask has no torso between the chest and the hips in the front view"
        if waist_y is None
        else torso.measure(waist_y, level_rows, "waist")
    )
    found["hip_width"] = (
        "the mask has no torso at the hips in the front view"
        if hip_y is None
        else torso.measure(hip_y, level_rows, "hips")
    )
    frame = torso.frame
    levels = _Levels(
        CHEST_SHARE,
        DEFAULT_WAIST_SHARE if waist_y is None else frame.share(waist_y),
        1.0 if hip_y is None else frame.share(hip_y),
    )
    return found, levels


def _crotch(mask: np.ndarray, pose: _Pose, frame: _Frame) -> float | str:
    """The crotch's row (the top edge of the gap between the legs): up the legs' midline from
    halfway down the legs to the first mask pixel; or why it is not seen."""
    feet = pose.middle("heel") or pose.middle("ankle")
    if feet is None:
        return "the feet are not visible in the front view"
    start = round((frame.hip[1] + feet[1]) / 2)

    def legs_midline(y: float) -> int:
        share = (y - frame.hip[1]) / (feet[1] - frame.hip[1])
        x = int(frame.hip[0] + share * (feet[0] - frame.hip[0]))
        return min(max(x, 0), mask.shape[1] - 1)

    if not 0 <= start < mask.shape[0] or mask[start, legs_midline(start)]:
        return "no gap between the legs in the front view (legs together, or a skirt)"
    y = start
    while y > frame.hip[1] and not mask[y - 1, legs_midline(y - 1)]:
        y -= 1
    below_hips = (y - frame.hip[1]) / frame.length
    if below_hips > CROTCH_MAX_BELOW_HIPS:
        return (
            f"the gap between the legs starts {below_hips:.2f} torso lengths below the hips "
            "(the crotch is about 0.2): thighs together or a long garment hide the crotch"
        )
    if y <= frame.hip[1]:
        return "the gap between the legs reaches the hips: the mask is split"
    return float(y)


def _inseam(pose: _Pose, frame: _Frame, crotch: float | str) -> Found:
    if isinstance(crotch, str):
        return crotch
    heels = [p for n in ("left_heel", "right_heel") if (p := pose.get(n))]
    ankles = [p for n in ("left_ankle", "right_ankle") if (p := pose.get(n))]
    feet, what = (heels, "heels") if heels else (ankles, "ankles")
    foot_y = statistics.fmean(p.y for p in feet)
    x = frame.hip[0]
    error = math.hypot(MASK_EDGE_PX, KEYPOINT_ERROR * frame.length / math.sqrt(len(feet)))
    line = Line("front", (x, crotch), (x, foot_y))
    return _Pixels(foot_y - crotch, error, (line,), f"crotch straight down to the {what}' height")


def _arm_length(pose: _Pose) -> Found:
    arms = [line[:3] for line in _arm_lines(pose) if len(line) >= 3]  # to the wrist
    if not arms:
        return "no arm is seen from the shoulder to the wrist in the front view"
    arm = max(arms, key=lambda line: math.dist(line[0], line[1]) + math.dist(line[1], line[2]))
    length = math.dist(arm[0], arm[1]) + math.dist(arm[1], arm[2])
    frame = _Frame.of(pose)
    scale = frame.length if frame else length / 1.2  # an arm is about 1.2 torso lengths
    error = KEYPOINT_ERROR * scale * math.sqrt(2)
    lines = (Line("front", arm[0], arm[1]), Line("front", arm[1], arm[2]))
    return _Pixels(length, error, lines, "shoulder to elbow to wrist, the longer arm")


# --- the side view --------------------------------------------------------------------------------


def _side(view: BodyView, levels: _Levels | None, findings: _Findings) -> dict[str, Found]:
    pose = _Pose.of(view.keypoints)
    frame = _Frame.of(pose)
    if frame is None:
        findings.add("The shoulders or hips are not seen in the side view: no depths.")
        return dict.fromkeys(DEPTHS, "shoulders or hips not visible in the side view")
    _check_knees(pose, "side", findings)
    _check_visibility(view.keypoints, "side", findings)
    problem = _profile_problem(pose, frame, findings)
    if problem:
        return dict.fromkeys(DEPTHS, problem)
    if levels is None:
        findings.add(
            "The front view gives no levels: the side's depths are taken at the usual shares of "
            "shoulders to hips."
        )
        levels = _Levels(CHEST_SHARE, DEFAULT_WAIST_SHARE, 1.0)
    torso = _Torso("side", view.mask, frame, _arms(view.mask, pose, frame))
    # Levels carry the front's and the side's keypoint errors.
    level_rows = frame.level_error * math.sqrt(2)
    found: dict[str, Found] = {
        name: torso.measure(round(frame.level(share)), level_rows, name.split("_")[0])
        for name, share in zip(DEPTHS, (levels.chest, levels.waist, levels.hip), strict=True)
    }
    _note_arms(torso, findings)
    return found


# --- scales for both views ------------------------------------------------------------------------


def _given_scale(view: BodyView) -> Scale | None:
    if view.cm_per_px is None:
        return None
    return Scale(view.cm_per_px, view.scale_error, view.scale_source, ("given with the photo",))


def _scales(
    front: BodyView, side: BodyView | None, height_cm: float | None, findings: _Findings
) -> tuple[Scale | str, Scale | str | None]:
    """Each view's scale, or why it has none. A view without its own scale is scaled by the
    stated height, or else by the height measured in the other view with that view's card."""
    views = {"front": front, "side": side}
    statures = {
        name: measure_stature(view.mask, view.keypoints)
        for name, view in views.items()
        if view is not None
    }
    given = {name: _given_scale(view) for name, view in views.items() if view is not None}
    height: tuple[float, float, str] | None = None
    if height_cm is not None:
        height = (height_cm, 0.0, "")
    else:
        for name, scale in given.items():
            stature = statures[name]
            if scale and isinstance(stature, Stature):
                cm = stature.pixels * scale.cm_per_px
                error = math.hypot(scale.relative_error, stature.relative_error)
                height = (
                    cm,
                    error,
                    f"scaled by the height measured in the {name} view ({cm:.1f} cm)",
                )
                break
    scales: dict[str, Scale | str] = {}
    for name, stature in statures.items():
        scale = given[name]
        if scale is not None:
            scales[name] = scale
        elif height is None:
            scales[name] = NO_SCALE
        elif isinstance(stature, str):
            scales[name] = f"no scale: {stature} in the {name} view"
        else:
            scales[name] = _height_scale(stature, *height)
            if height[2]:
                findings.add(f"The {name} view is {height[2]}.")
    return scales["front"], scales.get("side")


# --- centimetres and circumferences ---------------------------------------------------------------


def _in_cm(name: str, found: Found, scale: Scale | str) -> Measurement:
    if isinstance(found, str):
        return Measurement(name, None, None, None, None, "missing", found, "", ())
    if isinstance(scale, str):
        return Measurement(
            name, None, None, found.value, found.error, "missing", scale, found.method, found.lines
        )
    value = found.value * scale.cm_per_px
    error = math.hypot(found.error * scale.cm_per_px, value * scale.relative_error)
    return Measurement(
        name, value, error, found.value, found.error, "ok", "", found.method, found.lines
    )


def ellipse_perimeter(a: float, b: float) -> float:
    """Ramanujan's second approximation of an ellipse's perimeter from its semi-axes."""
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def _circumference(name: str, width: Measurement, depth: Measurement, model: float) -> Measurement:
    for part in (depth, width):
        if part.value_cm is None or part.error_cm is None:
            reason = part.reason or f"no {part.name}"
            return Measurement(name, None, None, None, None, "missing", reason, "", ())
    a, b = width.value_cm / 2, depth.value_cm / 2
    value = ellipse_perimeter(a, b)
    step = 1e-3 * (a + b)
    by_a = (ellipse_perimeter(a + step, b) - ellipse_perimeter(a - step, b)) / (2 * step)
    by_b = (ellipse_perimeter(a, b + step) - ellipse_perimeter(a, b - step)) / (2 * step)
    error = math.hypot(by_a * width.error_cm / 2, by_b * depth.error_cm / 2, model * value)
    method = f"ellipse on the {width.name} and the {depth.name} (Ramanujan), model +-{model:.0%}"
    return Measurement(name, value, error, None, None, "ok", "", method, width.lines + depth.lines)


# --- everything -----------------------------------------------------------------------------------


def measure_body(
    front: BodyView, side: BodyView | None = None, height_cm: float | None = None
) -> BodyMeasurements:
    """Every measurement the two views allow (see the module's docstring)."""
    findings = _Findings()
    front_scale, side_scale = _scales(front, side, height_cm, findings)
    front_found, levels = _front(front, findings)
    if side is None:
        findings.add("No side view: depths and circumferences need one.", NO_SIDE_VIEW_FACTOR)
        side_found: dict[str, Found] = dict.fromkeys(DEPTHS, NO_SIDE_VIEW)
    else:
        side_found = _side(side, levels, findings)
    measured = {name: _in_cm(name, f, front_scale) for name, f in front_found.items()}
    measured |= {
        name: _in_cm(name, f, side_scale or NO_SIDE_VIEW) for name, f in side_found.items()
    }
    for name, (width, depth, model) in CIRCUMFERENCES.items():
        measured[name] = _circumference(name, measured[width], measured[depth], model)
    for name, scale in (("front", front_scale), ("side", side_scale)):
        if isinstance(scale, str):
            findings.add(f"The {name} view's values are in pixels only ({scale}).")
    return BodyMeasurements(
        measurements=[measured[name] for name in MEASUREMENT_NAMES],
        scale=front_scale if isinstance(front_scale, Scale) else None,
        side_scale=side_scale if isinstance(side_scale, Scale) else None,
        confidence=max(0.0, min(1.0, findings.confidence)),
        notes=findings.notes,
    )
