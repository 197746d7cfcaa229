"""Skin tone: the colour of the subject's skin as CIELAB, its Individual Typology Angle (ITA)
and category, the nearest Monk Skin Tone, a hue angle and an undertone, with a confidence.

Method. Small square patches are placed from the face detector's keypoints and scaled by the
eye distance: both cheeks (below the eyes, beside the nose), the forehead (above the brows) and,
when the pose shows the shoulders, the neck. Within each patch only skin-like pixels count:
clipped pixels, highlights (above the patch's 95th lightness percentile) and shadows are dropped,
then pixels far (in median absolute deviations) from the patch's median in CIELAB: stray hair,
brows, glasses frames, lips. Then the patches vote: when most face patches agree (CIEDE2000),
one that does not (bangs over the forehead, a beard) is dropped, and the neck counts only if it
agrees with them (not a collar); when they do not (one cheek lit, the other in shadow) the
plausibly skin-coloured ones are pooled and the confidence drops. The optional `correct` (a white
balance) is applied to the pixels before they are converted to CIELAB (D65). The reported colour
is the median of the pixels kept in the patches that count. The confidence is a product of one
factor per doubt (a small face, few pixels, patches that differ, clipping, underexposure, skin
darker than any Monk tone, a guessed white balance, a hue outside skin's), each with a note.

- ITA = atan2(L* - 50, b*) in degrees. Conventionally ITA = arctan((L* - 50) / b*), which is
  the same angle for b* > 0, as skin's b* is; atan2 stays defined at b* <= 0. Categories after
  Del Bino et al. (2006, 2013): very light > 55 >= light > 41 >= intermediate > 28 >= tan > 10
  >= brown > -30 >= dark (each category includes its upper bound).
- Monk: the nearest (CIEDE2000, Sharma et al. 2005) of the ten Monk Skin Tone swatches (Monk,
  Google 2022).
- Hue angle h_ab = atan2(b*, a*); the undertone (warm, neutral, cool) is a heuristic threshold on
  it, set from the faces of the labelled photos, not a validated measure.

Limits. The camera's white balance and the light dominate the measurement: the same face under
tungsten and daylight differs by more than neighbouring Monk tones, so without a correction the
result describes the photo as much as the person. There is no ground truth here (no measured
skin colours of the people photographed): the thresholds are judged on how the photos look. ITA
is a colorimetric angle, not an identity: it says nothing about anyone's ethnicity or origin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, NamedTuple

import numpy as np

from silhouette.vision.colors import delta_e_2000, rgb_to_lab
from silhouette.vision.face import FaceDetection
from silhouette.vision.types import Box, Keypoint

Status = Literal["ok", "unknown"]
ItaCategory = Literal["very_light", "light", "intermediate", "tan", "brown", "dark"]
Undertone = Literal["warm", "neutral", "cool"]

# Del Bino's categories by their lower bound (exclusive), lightest first; below the last: dark.
ITA_CATEGORIES: tuple[tuple[float, ItaCategory], ...] = (
    (55.0, "very_light"),
    (41.0, "light"),
    (28.0, "intermediate"),
    (10.0, "tan"),
    (-30.0, "brown"),
)
# The Monk Skin Tone scale's ten swatches, 1 (lightest) to 10 (darkest).
MONK_HEX = (
    "#f6ede4", "#f3e7db", "#f7ead0", "#eadaba", "#d7bd96",
    "#a07e56", "#825c43", "#604134", "#3a312a", "#292420",
)  # fmt: skip

# Patch placement, in eye distances (centre to centre) from the point between the eyes, along
# the eye line ("across", towards the person's left eye) and perpendicular to it ("down").
# Cheeks: beside the nose, below the lower eyelid and the rims of glasses (about 0.35 below the
# eyes), above where a beard starts.
CHEEK_ACROSS = 0.55
CHEEK_DOWN_OF_NOSE = 0.9  # the cheek's centre, as a share of the nose tip's depth below the eyes
CHEEK_HALF_SIDE = 0.13
# Forehead: brows sit 0.35-0.5 above the eye centres; the patch starts above them.
FOREHEAD_UP = 0.75
FOREHEAD_HALF_SIDE = 0.12
# Neck: the chin lies about this far below the mouth; the patch this share of the way from
# the chin to the shoulders' midpoint (below the chin's shadow, above a collar).
CHIN_BELOW_MOUTH = 0.6
NECK_OF_CHIN_TO_SHOULDERS = 0.3
NECK_HALF_SIDE = 0.15

# Pixel filters. A channel this high was clipped by the camera: its hue and lightness are lost.
CLIPPED_VALUE = 250
HIGHLIGHT_PERCENTILE = 95.0
SHADOW_LIGHTNESS = 8.0  # L* below this is shadow or noise, whatever the skin
# Pixels further than this many robust standard deviations (1.4826 MAD) from the patch's median
# in any of L*, a*, b* are not skin; the scale is at least MIN_ROBUST_SCALE so a uniform patch
# (a studio backdrop, a smooth cheek) does not turn JPEG noise into outliers.
MAX_ROBUST_DISTANCE = 3.0
MIN_ROBUST_SCALE = 1.5
ROBUST_PASSES = 2  # the second pass re-centres on the skin once brows or hair are gone
MIN_PATCH_PIXELS = 12
# A patch whose median is further than this (CIEDE2000) from the patches it agrees with is not
# skin like theirs: bangs over the forehead, a beard, a collar. On the labelled set the patches of
# an evenly lit face differ by 2-7; bangs, beards, collars and a cheek in deep shadow by 13-38.
PATCH_AGREEMENT = 10.0

# When to give up.
MIN_EYE_DISTANCE = 6.0  # px: patches of a pixel or two
MIN_SKIN_PIXELS = 30
# Skin's chroma (C*ab) below this: a greyscale photo, no colour to measure. The labelled set's
# greyscale photos measure 0-1.1, its colour faces 11-45; the palest Monk swatch 3.8.
MIN_CHROMA = 3.0
# The face's brightest pixels (see _exposure) darker than this: too dark to measure. The
# labelled set's faces measure 196-255, copies darkened to 15% 29-38.
MIN_EXPOSURE = 50

# Confidence: each factor is 1 above its "good" bound and falls linearly to its floor.
GOOD_EYE_DISTANCE = 20.0  # px
GOOD_PIXEL_COUNT = 200
GOOD_SPREAD, BAD_SPREAD = 5.0, 12.0  # ΔE2000 from a kept patch's median to the result
GOOD_CLIPPED, BAD_CLIPPED = 0.05, 0.5  # share of the patches' pixels clipped
GOOD_EXPOSURE, BAD_EXPOSURE = 130.0, MIN_EXPOSURE  # the face's 99th percentile value, 0-255
GOOD_LIGHTNESS, BAD_LIGHTNESS = 14.0, SHADOW_LIGHTNESS  # skin L*: the darkest Monk tone is 14.6
ESTIMATED_LIGHT_FACTOR = 0.8
# Skin's hue angle lies in this range under neutral light; outside it the light (or the
# correction) coloured the face. Colorimetric surveys of skin find h_ab of about 40-70°; the
# labelled set's faces measure 27-73°, except three whose photos are visibly blue-pink balanced
# (10°, 13°, 20°); the Monk scale's own pale swatches reach 89°. Below SKIN_GAMUT_MIN_CHROMA the
# hue is too unstable to judge.
SKIN_HUE_RANGE = (25.0, 90.0)
HUE_TOLERANCE = 30.0  # degrees outside the range at which that factor reaches its floor
SKIN_GAMUT_MIN_CHROMA = 5.0
ONE_PATCH_FACTOR = 0.8
FACTOR_FLOOR = 0.2
# Undertone from the hue angle, a heuristic: redder than COOL_HUE is cool (pink), yellower
# than WARM_HUE warm (golden). The labelled set's faces in neutral light measure 36-73°, half of
# them 40-55°: that middle is neutral.
WARM_HUE, COOL_HUE = 55.0, 40.0


class SkinPatch(NamedTuple):
    name: str  # "right_cheek" | "left_cheek" | "forehead" | "neck" (the person's right/left)
    box: Box


@dataclass(frozen=True)
class SkinTone:
    """The subject's skin colour. When "unknown", only the reason, the patches that counted and
    their pixels are set; the confidence is 0."""

    status: Status
    reason: str | None  # why "unknown"
    lab: tuple[float, float, float] | None  # CIELAB D65, median of the kept pixels
    ita_degrees: float | None
    ita_category: ItaCategory | None
    monk: int | None  # 1 (lightest) - 10 (darkest)
    monk_hex: str | None
    monk_delta_e: float | None  # CIEDE2000 to that swatch
    hue_angle: float | None  # h_ab = atan2(b*, a*) in degrees, -180 to 180
    undertone: Undertone | None
    patch_count: int  # patches whose pixels count
    pixel_count: int  # pixels that count
    patches: tuple[SkinPatch, ...]  # the patches that count (for drawing)
    confidence: float  # 0-1
    notes: tuple[str, ...]  # one sentence for each reason the confidence dropped


@dataclass(frozen=True)
class PatchSample:
    """One patch's pixels: which count as skin (mask over the box) and their CIELAB values."""

    patch: SkinPatch
    kept: np.ndarray  # bool (height, width)
    lab: np.ndarray  # (kept.sum(), 3)
    clipped: int
    shadowed: int

    @property
    def median(self) -> np.ndarray:
        return np.median(self.lab, axis=0)


def skin_tone(
    image: np.ndarray,
    face: FaceDetection | None,
    keypoints: Sequence[Keypoint] | None = None,
    correct: Callable[[np.ndarray], np.ndarray] | None = None,
    light_estimated: bool = False,
) -> SkinTone:
    """image: RGB uint8 (H, W, 3). face: the subject's face (None: "unknown"). keypoints: the
    subject's 33 pose landmarks, for the neck. correct: maps (N, 3) uint8 sRGB pixels to
    white-balanced ones. light_estimated: that correction is only a guess (grey world)."""
    if face is None:
        return _unknown("no face found")
    eye_distance = _eye_distance(face)
    if eye_distance < MIN_EYE_DISTANCE:
        return _unknown("face too small to sample skin")
    exposure = _exposure(image, face.box)
    if exposure < MIN_EXPOSURE:
        return _unknown("light too dark")
    samples = sample_patches(image, face, keypoints, correct)
    if not samples:
        return _unknown("face too close to the photo's edge to sample skin")
    kept = _agreeing([sample for sample in samples if len(sample.lab) >= MIN_PATCH_PIXELS])
    patches = tuple(sample.patch for sample in kept)
    pixels = np.concatenate([sample.lab for sample in kept]) if kept else np.empty((0, 3))
    if len(pixels) < MIN_SKIN_PIXELS:
        return _unknown(_why_so_few(samples), patches, len(pixels))
    lab = np.median(pixels, axis=0)
    if math.hypot(lab[1], lab[2]) < MIN_CHROMA:
        return _unknown("no colour information (a greyscale photo)", patches, len(pixels))
    confidence, notes = _confidence(
        lab, samples, kept, eye_distance, exposure, light_estimated, len(pixels)
    )
    return _measured(lab, patches, len(pixels), confidence, notes)


def sample_patches(
    image: np.ndarray,
    face: FaceDetection,
    keypoints: Sequence[Keypoint] | None = None,
    correct: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[PatchSample]:
    """The patches inside the photo with the pixels each keeps as skin, before the patches are
    compared with each other (for drawing: `kept` marks those pixels in each patch's box)."""
    height, width = image.shape[:2]
    samples = []
    for patch in _patches(face, keypoints):
        box = patch.box
        if box.x < 0 or box.y < 0 or box.x + box.width > width or box.y + box.height > height:
            continue
        samples.append(_skin_pixels(patch, image[box.slices], correct))
    return samples


def ita_category(ita_degrees: float) -> ItaCategory:
    """Del Bino's category; each includes its upper bound (ITA 55 is light, 41 intermediate)."""
    for lower_bound, category in ITA_CATEGORIES:
        if ita_degrees > lower_bound:
            return category
    return "dark"


def monk_tone(lab: np.ndarray) -> tuple[int, float]:
    """The nearest Monk Skin Tone (1-10) and its CIEDE2000 distance."""
    distances = delta_e_2000(_monk_lab(), np.asarray(lab, dtype=np.float64))
    index = int(np.argmin(distances))
    return index + 1, float(distances[index])


@cache
def _monk_lab() -> np.ndarray:
    rgb = np.array([[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in MONK_HEX], np.uint8)
    return rgb_to_lab(rgb)


def _eye_distance(face: FaceDetection) -> float:
    right_eye, left_eye = face.keypoints[0], face.keypoints[1]
    return float(np.hypot(*(left_eye - right_eye)))


def _patches(face: FaceDetection, keypoints: Sequence[Keypoint] | None) -> list[SkinPatch]:
    """Cheeks, forehead and (when the pose shows it) the neck, as boxes in image pixels."""
    right_eye, left_eye, nose, mouth = face.keypoints[:4]
    eye_distance = _eye_distance(face)
    between_eyes = (right_eye + left_eye) / 2
    across = (left_eye - right_eye) / eye_distance
    down = np.array([-across[1], across[0]])  # the eye line turned 90°: towards the mouth
    nose_depth = float((nose - between_eyes) @ down) / eye_distance

    def square(along: float, below: float, half_side: float) -> Box:
        centre = between_eyes + eye_distance * (along * across + below * down)
        return _square(centre, half_side * eye_distance)

    cheek_down = CHEEK_DOWN_OF_NOSE * nose_depth
    patches = [
        SkinPatch("right_cheek", square(-CHEEK_ACROSS, cheek_down, CHEEK_HALF_SIDE)),
        SkinPatch("left_cheek", square(CHEEK_ACROSS, cheek_down, CHEEK_HALF_SIDE)),
        SkinPatch("forehead", square(0.0, -FOREHEAD_UP, FOREHEAD_HALF_SIDE)),
    ]
    shoulders = _shoulders_midpoint(keypoints)
    if shoulders is not None:
        chin = mouth + CHIN_BELOW_MOUTH * eye_distance * down
        neck = chin + NECK_OF_CHIN_TO_SHOULDERS * (shoulders - chin)
        # Only when the shoulders lie below the chin (a head bent over them hides the neck).
        if (shoulders - chin) @ down > 2 * NECK_HALF_SIDE * eye_distance:
            patches.append(SkinPatch("neck", _square(neck, NECK_HALF_SIDE * eye_distance)))
    return patches


def _shoulders_midpoint(keypoints: Sequence[Keypoint] | None) -> np.ndarray | None:
    """Between the shoulders, when the pose sees both."""
    points = {point.name: point for point in keypoints or ()}
    shoulders = [points.get(name) for name in ("left_shoulder", "right_shoulder")]
    if not all(point is not None and point.usable for point in shoulders):
        return None
    return np.mean([[point.x, point.y] for point in shoulders if point is not None], axis=0)


def _square(centre: np.ndarray, half_side: float) -> Box:
    half = max(1, round(half_side))
    left, top = round(centre[0]) - half, round(centre[1]) - half
    return Box(left, top, 2 * half, 2 * half)


def _skin_pixels(
    patch: SkinPatch, pixels: np.ndarray, correct: Callable[[np.ndarray], np.ndarray] | None
) -> PatchSample:
    rgb = pixels.reshape(-1, 3)
    unclipped = rgb.max(axis=1) < CLIPPED_VALUE
    valid = rgb[unclipped]
    if correct is not None and len(valid):
        valid = correct(valid)
    lab = rgb_to_lab(valid) if len(valid) else np.empty((0, 3))
    lit = lab[:, 0] >= SHADOW_LIGHTNESS
    keep = lit.copy()
    if keep.any():
        keep &= lab[:, 0] <= np.percentile(lab[lit, 0], HIGHLIGHT_PERCENTILE)
    keep = _robust_inliers(lab, keep)
    kept = np.zeros(len(rgb), dtype=bool)
    kept[np.flatnonzero(unclipped)[keep]] = True
    return PatchSample(
        patch=patch,
        kept=kept.reshape(pixels.shape[:2]),
        lab=lab[keep],
        clipped=int((~unclipped).sum()),
        shadowed=int((~lit).sum()),
    )


def _why_so_few(samples: list[PatchSample]) -> str:
    """Why the patches kept too few pixels: most of them in shadow, most clipped, or neither."""
    half = sum(sample.kept.size for sample in samples) / 2
    if sum(sample.shadowed for sample in samples) > half:
        return "light too dark"
    if sum(sample.clipped for sample in samples) > half:
        return "skin overexposed (clipped)"
    return "too few skin pixels"


def _robust_inliers(lab: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """`keep` narrowed to the pixels near the patch's median in every channel of CIELAB."""
    candidates = keep
    for _ in range(ROBUST_PASSES):
        if not keep.any():
            break
        median = np.median(lab[keep], axis=0)
        deviation = np.abs(lab - median)
        scale = np.maximum(1.4826 * np.median(deviation[keep], axis=0), MIN_ROBUST_SCALE)
        keep = candidates & np.all(deviation <= MAX_ROBUST_DISTANCE * scale, axis=1)
    return keep


def _agreeing(samples: list[PatchSample]) -> list[PatchSample]:
    """The patches that agree with the face patch most face patches agree with, when a majority
    of the face patches agree (bangs or a beard are outvoted); the neck only follows (a collar or
    a dark jacket must not outvote a cheek). Without a majority (one cheek lit, the other in
    shadow) the face patches of a plausible skin colour are pooled, their spread left to lower
    the confidence: neither side alone is the skin's colour. Equal votes go to the lighter
    patch: hair and shade are darker than lit skin."""
    on_face = [sample for sample in samples if sample.patch.name != "neck"] or samples
    if not on_face:
        return []
    medians = np.array([sample.median for sample in on_face])
    agree = delta_e_2000(medians[:, None, :], medians[None, :, :]) <= PATCH_AGREEMENT
    votes = agree.sum(axis=1)
    if 2 * votes.max() <= len(on_face):
        plausible = [sample for sample in on_face if _plausible_skin(sample.median)]
        return plausible or on_face
    anchor = max(range(len(on_face)), key=lambda i: (votes[i], float(medians[i, 0])))
    return [
        sample
        for sample in samples
        if delta_e_2000(sample.median, medians[anchor]) <= PATCH_AGREEMENT
    ]


def _plausible_skin(lab: np.ndarray) -> bool:
    """Coloured like skin under neutral light: its hue within skin's range."""
    chroma, hue = math.hypot(lab[1], lab[2]), _hue_angle(lab)
    return chroma >= SKIN_GAMUT_MIN_CHROMA and SKIN_HUE_RANGE[0] <= hue <= SKIN_HUE_RANGE[1]


def _exposure(image: np.ndarray, face: Box) -> float:
    """The face box's 99th percentile of the brightest channel: eye whites, teeth and sheen,
    near white in any well-exposed face whatever its skin (sampled, a face may be megapixels;
    the whole photo when the box lies outside it)."""
    height, width = image.shape[:2]
    left, top = max(0, face.x), max(0, face.y)
    right, bottom = min(width, face.x + face.width), min(height, face.y + face.height)
    region = image[top:bottom, left:right] if right > left and bottom > top else image
    step = max(1, max(region.shape[:2]) // 256)
    return float(np.percentile(region[::step, ::step].max(axis=2), 99))


def _confidence(
    lab: np.ndarray,
    samples: list[PatchSample],
    kept: list[PatchSample],
    eye_distance: float,
    exposure: float,
    light_estimated: bool,
    pixel_count: int,
) -> tuple[float, tuple[str, ...]]:
    """The product of one factor per doubt, with a sentence for each factor below 1."""
    chroma, hue = math.hypot(lab[1], lab[2]), _hue_angle(lab)
    spread = max(float(delta_e_2000(sample.median, lab)) for sample in kept)
    clipped = sum(s.clipped for s in samples) / sum(s.kept.size for s in samples)
    hue_outside = max(SKIN_HUE_RANGE[0] - hue, hue - SKIN_HUE_RANGE[1], 0.0)
    small = f"The face is small ({eye_distance:.0f} px between the eyes)."
    spread_note = f"The patches' colours differ (ΔE2000 up to {spread:.1f})."
    dark_skin = f"The skin (L* {lab[0]:.0f}) is darker than the darkest Monk tone: underexposed?"
    coloured = f"The skin's hue ({hue:.0f}°) is outside skin's usual range: coloured light?"
    in_gamut = _ramp(hue_outside, HUE_TOLERANCE, 0.0) if chroma >= SKIN_GAMUT_MIN_CHROMA else 1.0
    factors = [
        (_ramp(eye_distance, 0.0, GOOD_EYE_DISTANCE), small),
        (_ramp(pixel_count, 0, GOOD_PIXEL_COUNT), f"Few skin pixels ({pixel_count})."),
        (ONE_PATCH_FACTOR if len(kept) == 1 else 1.0, "Skin was measured in one patch only."),
        (_ramp(spread, BAD_SPREAD, GOOD_SPREAD), spread_note),
        (
            _ramp(clipped, BAD_CLIPPED, GOOD_CLIPPED),
            f"{clipped:.0%} of the patches' pixels are clipped.",
        ),
        (_ramp(exposure, BAD_EXPOSURE, GOOD_EXPOSURE), "The face is underexposed."),
        (_ramp(lab[0], BAD_LIGHTNESS, GOOD_LIGHTNESS), dark_skin),
        (ESTIMATED_LIGHT_FACTOR if light_estimated else 1.0, "The light's colour is a guess."),
        (in_gamut, coloured),
    ]
    confidence = 1.0
    notes = []
    for factor, note in factors:
        factor = max(FACTOR_FLOOR, min(1.0, factor))
        if factor < 1.0:
            confidence *= factor
            notes.append(note)
    return round(confidence, 3), tuple(notes)


def _ramp(value: float, bad: float, good: float) -> float:
    """0 at `bad`, 1 at `good`, linear between (`bad` may be the larger)."""
    return min(1.0, max(0.0, (value - bad) / (good - bad)))


def _hue_angle(lab: np.ndarray) -> float:
    return math.degrees(math.atan2(lab[2], lab[1]))


def _undertone(hue: float) -> Undertone:
    if hue > WARM_HUE:
        return "warm"
    return "cool" if hue < COOL_HUE else "neutral"


def _measured(
    lab: np.ndarray,
    patches: tuple[SkinPatch, ...],
    pixel_count: int,
    confidence: float,
    notes: tuple[str, ...],
) -> SkinTone:
    lightness, a, b = (float(value) for value in lab)
    ita = math.degrees(math.atan2(lightness - 50.0, b))
    monk, monk_delta_e = monk_tone(lab)
    hue = _hue_angle(lab)
    return SkinTone(
        status="ok",
        reason=None,
        lab=(round(lightness, 2), round(a, 2), round(b, 2)),
        ita_degrees=round(ita, 2),
        ita_category=ita_category(ita),
        monk=monk,
        monk_hex=MONK_HEX[monk - 1],
        monk_delta_e=round(monk_delta_e, 2),
        hue_angle=round(hue, 2),
        undertone=_undertone(hue),
        patch_count=len(patches),
        pixel_count=pixel_count,
        patches=patches,
        confidence=confidence,
        notes=notes,
    )


def _unknown(reason: str, patches: tuple[SkinPatch, ...] = (), pixel_count: int = 0) -> SkinTone:
    return SkinTone(
        status="unknown",
        reason=reason,
        lab=None,
        ita_degrees=None,
        ita_category=None,
        monk=None,
        monk_hex=None,
        monk_delta_e=None,
        hue_angle=None,
        undertone=None,
        patch_count=len(patches),
        pixel_count=pixel_count,
        patches=patches,
        confidence=0.0,
        notes=(),
    )
