"""Colour calibration and ID-1 card detection: the white balance of a photo, and a scale in mm.

**The card** (`find_card`): an ISO/IEC 7810 ID-1 card (a bank card, an ID card: 85.60 x 53.98 mm,
corners rounded with r = 3.18 mm). Candidates come from straight edges: LSD segments of the
CIELAB channels of the photo shrunk to at most 1024 px, collinear pieces joined, and cycles of
four segments meeting near their ends. (Closed contours of Canny, adaptive and Otsu
maps came first, but a card's outline is seldom a contour of its own: it touches other edges,
and a stripe or print across the card splits it.) Each candidate is refined on the full-size
photo: each side is located to a fraction of a pixel from the colour step across it (probes
along its normal, clear of the rounded corners) and fitted with a robust line; the corners are
the intersections of those lines, where the card's straight sides meet, which is what its
nominal size measures. A quadrilateral counts as a card when
- it covers 0.2%-40% of the photo and its long side is at least 60 px;
- each side is found along 70% of its length, straight and not faint;
- a plausible pinhole camera sees it as a rectangle, tilted at most 45 degrees, of the card's
  aspect within 5% (see _card_view: one view leaves the aspect partly open, so a book of
  aspect 1.5 or even an A4 sheet, suitably tilted, can pass);
- when the card is at least 2.5 px/mm, at most one corner is sharp: a book, a frame, a screen or
  the edge of a stripe across a card is refused. Smaller, the rounding cannot be seen.
- no second straight edge runs along one of its sides just outside it: then it is likely
  print on a card (the edge of a magnetic stripe, 5.5 mm inside the card's own edge).
The most confident candidate left is the card.
The homography maps card mm to photo px; `mm_per_px` is taken at the card's centre from its
Jacobian. **It holds only in the card's plane, near the card**: anything in front of it, behind
it or far across the photo under perspective has another scale.
Limits: each side needs contrast with what lies beside it along most of its length (a white
card on white paper is not found; nor is a card whose edge beside a dark stripe vanishes into a
dark background); a white object touching a white card can be taken into its outline.

**The white balance** (`calibrate`), from the best evidence available, looked for first in a
separate `reference` photo taken in the same light and then in the photo itself:
1. a ColorChecker Classic (24 patches) found by `cv2.mcc`: a 3x3 matrix on linear sRGB fitted by
   `cv2.ccm` from the patches to their published sRGB values (`residual_delta_e` says how well);
2. the white of an ID-1 card: a Bradford chromatic adaptation from the card white to D65. This
   assumes the card's white is neutral: a cream or pale-tinted card shifts every colour by its
   tint, and a pale coloured card cannot be told from a white card in tinted light. A coloured
   card still gives a scale, but no white;
3. otherwise an estimate (`estimated=True`): shades of grey (Finlayson & Trezzi, 2004), the 6-norm
   of linear RGB over the pixels neither clipped nor nearly black, adapted to D65 the same way.
   It assumes the scene averages to grey; the 6-norm leans towards bright surfaces, more often
   lit whites and greys than the mean is (Finlayson and Trezzi found p = 6 better than grey
   world, p = 1, and max-RGB, p = infinity). A photo dominated by one colour (a field of grass,
   an orange suit) still misleads it, so its correction is capped: the white point moves by at
   most DeltaE2000 15, the distance from D65 to a 4700 K or a 10000 K light. A stronger real cast
   (tungsten, 2856 K, is 26 away) is then under-corrected rather than a colourful scene greyed.
Cards and estimates correct white balance only: each matrix keeps the luminance of the scene's
white, so the photo's exposure is unchanged. The chart's matrix is scaled the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

import cv2
import numpy as np

from silhouette.vision.colors import delta_e_2000, rgb_to_lab

# ISO/IEC 7810 ID-1: 85.60 x 53.98 mm, corner radius 3.18 mm.
CARD_WIDTH_MM = 85.60
CARD_HEIGHT_MM = 53.98
CARD_ASPECT = CARD_WIDTH_MM / CARD_HEIGHT_MM
CARD_CORNER_RADIUS_MM = 3.18
# Along a corner's diagonal, the arc lies r(sqrt 2 - 1) inside the point where the sides meet.
CARD_CORNER_INSET_MM = CARD_CORNER_RADIUS_MM * (np.sqrt(2) - 1)
UNIT_SQUARE = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
CARD_CORNERS_MM = np.array(
    [[0, 0], [CARD_WIDTH_MM, 0], [CARD_WIDTH_MM, CARD_HEIGHT_MM], [0, CARD_HEIGHT_MM]],
    dtype=np.float64,
)

# --- card detection
DETECTION_LONG_SIDE = 1024  # candidates are looked for in the photo shrunk to this
MIN_AREA_SHARE, MAX_AREA_SHARE = 0.002, 0.40
MIN_LONG_SIDE_PX = 60.0  # below this the corners are too few pixels apart to measure a scale
ASPECT_TOLERANCE = 0.05  # relative (see _card_view)
COARSE_ASPECT_TOLERANCE = 0.15  # for the unrefined quads
MAX_SKEW_DEGREES = 4.0
MAX_TILT_DEGREES = 45.0
# Focal lengths (in photo diagonals) a photo may have been taken with: a phone's main camera
# about 0.6 (26 mm equivalent), a short telephoto or a cropped photo up to 3.
FOCAL_LENGTH_RANGE = (0.4, 3.0)
# Candidates (see _candidate_quads): segments at least this share of the smallest card's short
# side, the longest MAX_SEGMENTS of them;
SEGMENT_MIN_SHARE = 0.4
MAX_SEGMENTS = 600
# pieces of one line joined: within this angle (a short piece's is rough), ends this close to
# the longer one's line, the gap under this share of their summed lengths;
MERGE_ANGLE_DEGREES = 6.0
MERGE_OFFSET_PX = 2.5
MERGE_GAP_SHARE = 0.8
# two segments meet at a corner where their lines cross past an end (a rounded or hidden
# corner) by at most this, plus this share of the longer one, or inside it by this share;
CORNER_BEYOND_PX = 3.0
CORNER_BEYOND_SHARE = 0.5
CORNER_INSIDE_SHARE = 0.3
LINKS_PER_END = 8  # the closest corners at each end
# four segments closing a quad must cover this share of its perimeter; the best covered
# distinct quads are refined.
MIN_QUAD_COVERAGE = 0.5
MAX_QUADS = 100
SAME_QUAD_PX = 3.0  # quads whose corners are all this close are one
SIDE_SPAN = (0.12, 0.88)  # probe each side here: clear of the rounded corners
COARSE_PROBES, FINE_PROBES = 24, 48  # per side
FINE_REACH_PX = 2.5  # the second pass looks this far either side of the first line
PROBE_STEP_PX = 0.25
MIN_EDGE_STEP = 12.0  # RGB distance across 1 px that counts as an edge (of 441)
EDGE_INLIER_PX = 1.0
# The median colour step across a card's faintest side must reach this: fainter outlines (a
# card on a table of its colour) are located loosely, and are what a doorway in shade is like.
MIN_SIDE_CONTRAST = 30.0
MIN_SIDE_SUPPORT = 0.7  # share of a side's probes that must find it
MAX_FIT_ERROR_PX = 1.5
MIN_PX_PER_MM_FOR_CORNERS = 2.5  # the rounding (1.3 mm) is then over 3 px deep
SHARP_CORNER_MM = 0.45  # a corner's outline less deep than this is sharp
ROUNDED_CORNER_TOLERANCE_MM = 0.6  # and within this of an ID-1 card's depth, rounded like one
OUTSIDE_EDGE_MM = 8.0  # how far outside its sides a card-like quad's print-edge twin is sought
# The white: in the card rectified at 5 px/mm, 4 mm clear of the edges and rounded corners.
RECTIFIED_SIZE = (428, 270)
RECTIFIED_MARGIN_PX = 20
CLIPPED_LEVEL = 250  # a pixel with any channel at or above this may have been clipped
WHITE_BRIGHTNESS = 0.6  # share of the card's bright level (linear) the white must reach
WHITE_CHROMA_SPREAD = 0.02  # rg-chromaticity distance from the white's median
MIN_WHITE_SHARE = 0.15
MIN_WHITE_LUMINANCE = 0.05  # linear; darker "whites" are mostly noise
# A white that is a plausible light: near the Planckian locus, between these temperatures.
PLAUSIBLE_CCT_K = (2000.0, 20000.0)
MAX_WHITE_DUV = 0.03
# Colour temperature means little further than this from the Planckian locus (CIE 15).
MAX_CCT_DUV = 0.05

# --- grey world
GREY_WORLD_NORM = 6
GREY_WORLD_SAMPLES = 250_000
GREY_WORLD_MIN_LUMINANCE = 0.01  # linear (sRGB ~25): darker pixels are noise
GREY_WORLD_MAX_SHIFT = 15.0  # DeltaE2000 the estimated white point may be moved

# --- colour checker
CHECKER_LONG_SIDE = 2000  # the chart is looked for in the photo shrunk to this
MIN_CHECKER_PATCHES = 12
MAX_CHECKER_RESIDUAL = 10.0  # mean DeltaE2000: a worse fit is not a chart
# ColorChecker Classic in sRGB (D65), row by row from dark skin to black: X-Rite's published
# values (as listed in the Wikipedia article "ColorChecker"). Cross-checked against cv2.ccm's own
# COLORCHECKER_Macbeth (CIELAB D50): a 3x3 fit between the two leaves a mean DeltaE2000 of 0.9.
COLOR_CHECKER_SRGB = np.array(
    [
        (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177),
        (103, 189, 170), (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108),
        (157, 188, 64), (224, 163, 46), (56, 61, 150), (70, 148, 73), (175, 54, 60),
        (231, 199, 31), (187, 86, 149), (8, 133, 161), (243, 243, 242), (200, 200, 200),
        (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52),
    ],
    dtype=np.float64,
)  # fmt: skip

# --- colorimetry
# sRGB (IEC 61966-2-1): ITU-R BT.709 primaries and the D65 white point, xy.
SRGB_PRIMARIES_XY = np.array([[0.64, 0.33], [0.30, 0.60], [0.15, 0.06]])
D65_XY = np.array([0.3127, 0.3290])
# Bradford cone response matrix (Lam 1985; as in CIECAM97s and ICC.1 Annex E).
BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)


def _xyz_of_xy(xy: np.ndarray) -> np.ndarray:
    """XYZ at Y = 1 of a chromaticity."""
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _rgb_to_xyz_matrix() -> np.ndarray:
    """Linear sRGB -> XYZ, derived from the primaries and D65 so that RGB 1 is exactly D65."""
    primaries = np.stack([_xyz_of_xy(xy) for xy in SRGB_PRIMARIES_XY], axis=1)
    weights = np.linalg.solve(primaries, _xyz_of_xy(D65_XY))
    return primaries * weights


D65_XYZ = _xyz_of_xy(D65_XY)
XYZ_FROM_RGB = _rgb_to_xyz_matrix()
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
LUMINANCE = XYZ_FROM_RGB[1]  # Y of linear sRGB: 0.2126, 0.7152, 0.0722


@dataclass(frozen=True, eq=False)
class CardDetection:
    """An ID-1 card in a photo.

    corners: (4, 2) image px, the points where the card's straight sides meet, ordered top-left,
        top-right, bottom-right, bottom-left in the card's own frame with its long side
        horizontal (clockwise on screen); of the two long sides the one higher in the photo is
        the top.
    homography: (3, 3) card mm -> image px, (0, 0) at the top-left corner.
    mm_per_px: the scale at the card's centre, the geometric mean of the two axes' scales there.
        Valid only in the card's plane, near the card.
    fit_error_px: RMS distance (px) of the edge points found along the sides from the fitted sides.
    confidence: 0-1, a ranking score (aspect, straightness, how much of the sides was found,
        rounded corners seen), not a probability.
    white_rgb: the card's white as the median of its white pixels in linear sRGB (0-1; the
        median commutes with the transfer curve, and linear is what adaptation needs), or None
        when the card has too little unclipped, near-neutral white (a coloured card).
    white_share: the share of the card (clear of its edges) that is white.
    """

    corners: np.ndarray
    homography: np.ndarray
    mm_per_px: float
    fit_error_px: float
    confidence: float
    white_rgb: tuple[float, float, float] | None
    white_share: float


@dataclass(frozen=True, eq=False)
class ColourCalibration:
    """How to correct a photo's colours.

    source: what decided the white: a colour chart, a card's white, or a grey-world estimate.
    estimated: True for the grey-world estimate (an assumption about the scene, not a
        measurement).
    matrix: (3, 3), applied to linear sRGB column vectors (see `apply`).
    white_before_lab: the scene's white as found, CIELAB D65 at L* = 100.
    white_shift_delta_e: DeltaE2000 by which the correction moves the white point: from the
        found white to neutral at the same lightness (for a capped estimate, the capped move).
    cct_before_k: the found white's correlated colour temperature (McCamy's approximation), or
        None when the white is too far from the Planckian locus for one to mean anything.
    card: the ID-1 card found, if no chart was; kept when its white was unusable, for its scale.
    found_in: where the chart or card was found (None when neither was).
    residual_delta_e: for a chart, the mean DeltaE2000 of its patches corrected by the fitted
        matrix (at the chart's own exposure) from their reference values; otherwise None.
    """

    source: Literal["colour_checker", "card", "grey_world"]
    estimated: bool
    matrix: np.ndarray
    white_before_lab: tuple[float, float, float]
    white_shift_delta_e: float
    cct_before_k: float | None
    card: CardDetection | None
    found_in: Literal["reference", "image"] | None
    residual_delta_e: float | None


@dataclass(frozen=True, eq=False)
class CheckerFit:
    """A colour chart's correction: `matrix` (3x3, linear sRGB column vectors) maps the measured
    patches to their references with a mean DeltaE2000 of `residual_delta_e` over the
    `patches_used` patches that were measured and not clipped."""

    matrix: np.ndarray
    residual_delta_e: float
    patches_used: int


# ---------------------------------------------------------------- public API


def find_card(image: np.ndarray) -> CardDetection | None:
    """The most card-like ID-1 card in an RGB uint8 photo, or None (see the module docstring).

    The scale (`mm_per_px`) holds only in the card's plane, near the card."""
    rgb = _as_rgb(image)
    height, width = rgb.shape[:2]
    shrink = min(1.0, DETECTION_LONG_SIDE / max(height, width))
    small = (
        rgb
        if shrink == 1.0
        else cv2.resize(rgb, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    )
    cards = [_fit_card(rgb, quad / shrink, shrink) for quad in _candidate_quads(small, shrink)]
    card = max((c for c in cards if c is not None), key=lambda c: c.confidence, default=None)
    if card is None:
        return None
    white, white_share = _card_white(rgb, card.homography)
    return replace(card, white_rgb=white, white_share=white_share)


def calibrate(image: np.ndarray, reference: np.ndarray | None = None) -> ColourCalibration:
    """The white balance for `image`: from a colour chart, else a card's white, each looked for
    in `reference` (a photo taken in the same light) and then in `image`; else a capped
    shades-of-grey estimate of `image` (see the module docstring)."""
    photos: list[tuple[Literal["reference", "image"], np.ndarray]] = [("image", _as_rgb(image))]
    if reference is not None:
        photos.insert(0, ("reference", _as_rgb(reference)))

    for found_in, photo in photos:
        measured = _measure_checker(photo)
        if measured is None:
            continue
        fit = fit_checker_matrix(measured)
        if fit is not None and fit.residual_delta_e <= MAX_CHECKER_RESIDUAL:
            return _checker_calibration(fit, found_in)

    first_card: tuple[Literal["reference", "image"], CardDetection] | None = None
    for found_in, photo in photos:
        card = find_card(photo)
        if card is None:
            continue
        if card.white_rgb is not None:
            return _white_calibration("card", np.array(card.white_rgb), card, found_in)
        first_card = first_card or (found_in, card)

    card_found_in, card = first_card if first_card else (None, None)
    return _grey_world_calibration(photos[-1][1], card, card_found_in)


def grey_world(image: np.ndarray) -> ColourCalibration:
    """The capped shades-of-grey estimate alone, without looking for a chart or a card (for a
    photo nobody asked to be measured: the search costs 0.1-0.6 s)."""
    return _grey_world_calibration(_as_rgb(image), None, None)


def apply(image: np.ndarray, calibration: ColourCalibration) -> np.ndarray:
    """`image` (RGB uint8) corrected: sRGB decoded to linear, the matrix, clipped, re-encoded."""
    return correct_rgb(_as_rgb(image), calibration)


def correct_rgb(rgb: np.ndarray, calibration: ColourCalibration) -> np.ndarray:
    """sRGB colours (..., 3) on the 0-255 scale corrected: uint8 in, uint8 out (rounded); float
    in, float out (0-255, not rounded)."""
    return correct_with_matrix(rgb, calibration.matrix)


def correct_with_matrix(rgb: np.ndarray, matrix: np.ndarray | list[list[float]]) -> np.ndarray:
    """`correct_rgb` by a correction matrix alone (as a result's `calibration` records it)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    values = np.asarray(rgb)
    if values.dtype == np.uint8:
        linear = _SRGB_DECODE_TABLE[values]
    else:
        linear = srgb_to_linear(values.astype(np.float32) / 255)
    corrected = np.clip(linear @ matrix.T, 0, 1)
    encoded = linear_to_srgb(corrected) * 255
    if values.dtype == np.uint8:
        return np.round(encoded).astype(np.uint8)
    return encoded


def fit_checker_matrix(measured_rgb: np.ndarray) -> CheckerFit | None:
    """The 3x3 correction (linear sRGB) from a ColorChecker Classic's 24 measured colours (sRGB
    0-255, chart order from dark skin to black; NaN for a patch not measured) to their reference
    values, fitted by `cv2.ccm` minimising DeltaE2000. Patches with a channel at or above the
    clipping level are left out; None when fewer than 12 are left."""
    measured = np.asarray(measured_rgb, dtype=np.float64).reshape(24, 3)
    usable = np.isfinite(measured).all(axis=1) & (np.nan_to_num(measured) < CLIPPED_LEVEL).all(1)
    if usable.sum() < MIN_CHECKER_PATCHES:
        return None
    source = srgb_to_linear(measured[usable] / 255).reshape(-1, 1, 3)
    targets = (COLOR_CHECKER_SRGB[usable] / 255).reshape(-1, 1, 3)
    model = cv2.ccm.ColorCorrectionModel(source, targets, cv2.ccm.COLOR_SPACE_S_RGB)
    model.setLinear(cv2.ccm.LINEARIZATION_IDENTITY)  # the source is linearised above, exactly
    model.setCCM_TYPE(cv2.ccm.CCM_3X3)
    model.setDistance(cv2.ccm.DISTANCE_CIE2000)
    model.run()
    matrix = np.asarray(model.getCCM(), dtype=np.float64).T  # cv2.ccm multiplies row vectors
    corrected = linear_to_srgb(np.clip(source.reshape(-1, 3) @ matrix.T, 0, 1)) * 255
    residual = delta_e_2000(rgb_to_lab(corrected), rgb_to_lab(COLOR_CHECKER_SRGB[usable]))
    return CheckerFit(_frozen(matrix), float(residual.mean()), int(usable.sum()))


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """The sRGB decoding curve (IEC 61966-2-1) on values in 0-1."""
    values = np.asarray(values)
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """The sRGB encoding curve (IEC 61966-2-1) on linear values in 0-1."""
    values = np.clip(np.asarray(values), 0, None)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


def bradford_to_d65(white_rgb: np.ndarray) -> np.ndarray:
    """The 3x3 matrix (linear sRGB) adapting `white_rgb` (linear sRGB, any scale) to D65 by the
    Bradford transform, keeping its luminance: M = RGB<-XYZ . B^-1 . diag(D65 / white cones)
    . B . XYZ<-RGB, so M @ white = Y(white) * (1, 1, 1)."""
    white_xyz = XYZ_FROM_RGB @ np.asarray(white_rgb, dtype=np.float64)
    white_cones = BRADFORD @ (white_xyz / white_xyz[1])
    gains = np.diag((BRADFORD @ D65_XYZ) / white_cones)
    return RGB_FROM_XYZ @ np.linalg.inv(BRADFORD) @ gains @ BRADFORD @ XYZ_FROM_RGB


def white_lab(white_rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of a white given in linear sRGB (any scale), at L* = 100."""
    white = np.asarray(white_rgb, dtype=np.float64)
    lab = rgb_to_lab(linear_to_srgb(np.clip(white / white.max(), 0, 1)) * 255)
    # Scaling XYZ by k scales L* + 16, a* and b* by k^(1/3) (a white is above CIELAB's linear
    # segment), so this is the same chromaticity at Y = Yn.
    lightening = 116 / (lab[0] + 16)
    return np.array([100.0, lab[1] * lightening, lab[2] * lightening])


def correlated_colour_temperature(white_rgb: np.ndarray) -> float | None:
    """McCamy's (1992) CCT of a white (linear sRGB), or None more than Duv 0.05 off the locus."""
    x, y = _chromaticity_xy(white_rgb)
    if _planckian_distance(x, y) > MAX_CCT_DUV:
        return None
    n = (x - 0.3320) / (0.1858 - y)
    return float(449 * n**3 + 3525 * n**2 + 6823.3 * n + 5520.33)


# ---------------------------------------------------------------- card: candidates


def _candidate_quads(small: np.ndarray, shrink: float) -> list[np.ndarray]:
    """Quadrilaterals (4, 2), clockwise on screen, in the shrunk photo whose four sides are
    straight edges meeting near their ends: the outline of a card even where it touches other
    edges, or a stripe or print crosses it (which defeats closed contours)."""
    height, width = small.shape[:2]
    shortest_side = max(
        np.sqrt(MIN_AREA_SHARE * height * width / CARD_ASPECT),
        MIN_LONG_SIDE_PX * shrink / CARD_ASPECT,
    )
    segments = _merge_collinear(_line_segments(small, SEGMENT_MIN_SHARE * shortest_side))
    quads, coverage = _closed_quads(segments, _corner_links(segments))
    area_shares = np.array([_quad_area(quad) for quad in quads]) / (height * width)
    plausible = (coverage >= MIN_QUAD_COVERAGE) & (area_shares >= MIN_AREA_SHARE)
    plausible &= area_shares <= MAX_AREA_SHARE
    candidates = np.empty((0, 4, 2))
    for index in np.flatnonzero(plausible)[np.argsort(-coverage[plausible])]:
        quad = quads[index]
        if len(candidates) >= MAX_QUADS:
            break
        view = _card_view(quad, (height, width))
        if view is None or view[1] > COARSE_ASPECT_TOLERANCE:
            continue
        same = [
            (np.abs(np.roll(quad, shift, axis=0) - candidates).max(axis=(1, 2)) <= SAME_QUAD_PX)
            for shift in range(4)
        ]
        if not np.any(same):
            candidates = np.concatenate([candidates, quad[None]])
    return list(candidates)


def _line_segments(small: np.ndarray, min_length: float) -> np.ndarray:
    """Straight edge segments (n, 2, 2), by LSD (von Gioi et al., 2012), of the lightness and
    of the two opponent colour channels of CIELAB: a blue card on a red saucer has the same
    grey, a white card on a pale wooden table the same lightness."""
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)
    detector = cv2.createLineSegmentDetector()
    found = [detector.detect(np.ascontiguousarray(lab[..., channel]))[0] for channel in range(3)]
    segments = np.concatenate(
        [f.reshape(-1, 2, 2) for f in found if f is not None] or [np.empty((0, 2, 2), np.float32)]
    ).astype(np.float64)
    lengths = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1)
    longest = np.argsort(-lengths)[:MAX_SEGMENTS]
    return segments[longest[lengths[longest] >= min_length]]


def _merge_collinear(segments: np.ndarray) -> np.ndarray:
    """The segments, and those of one line joined: a side broken where a stripe meets it or the
    background changes, or found in both channels, is also one segment through all its pieces.
    The pieces stay: a side can line up with another edge beyond its corner (a table's edge),
    and then only its own piece ends at the corner."""
    starts, ends = segments[:, 0], segments[:, 1]
    lengths = np.linalg.norm(ends - starts, axis=1)
    directions = (ends - starts) / lengths[:, None]
    sines = np.abs(_cross(directions[:, None], directions[None, :]))
    longer, shorter = np.nonzero(
        (sines <= np.sin(np.radians(MERGE_ANGLE_DEGREES))) & (lengths[:, None] >= lengths[None, :])
    )
    # The shorter one's ends seen in the longer one's frame: along its line and across it.
    offsets = segments[shorter] - starts[longer][:, None, :]  # (pairs, 2 ends, 2)
    along = np.einsum("pek,pk->pe", offsets, directions[longer])
    across = np.abs(_cross(offsets, directions[longer][:, None, :]))
    gap = np.maximum(along.min(axis=1) - lengths[longer], -along.max(axis=1))
    joins = (
        (longer != shorter)
        & (across.max(axis=1) <= MERGE_OFFSET_PX)
        & (gap <= MERGE_GAP_SHARE * (lengths[longer] + lengths[shorter]))
    )
    groups = _connected_groups(len(segments), longer[joins], shorter[joins])
    merged = []
    for group in np.unique(groups):
        pieces = segments[groups == group].reshape(-1, 2)
        if len(pieces) > 2:
            point, direction = _robust_line(pieces)
            ends_along = (pieces - point) @ direction
            merged.append(point + np.outer([ends_along.min(), ends_along.max()], direction))
    return np.concatenate([segments, np.array(merged).reshape(-1, 2, 2)])


def _connected_groups(count: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A group label per node of the graph with edges first[k] - second[k]."""
    labels = np.arange(count)
    while True:
        lowest = labels.copy()
        np.minimum.at(lowest, first, labels[second])
        np.minimum.at(lowest, second, labels[first])
        lowest = lowest[lowest]  # follow the label's own label: converges in a few rounds
        if np.array_equal(lowest, labels):
            return labels
        labels = lowest


def _corner_links(segments: np.ndarray) -> dict[tuple[int, int], list[tuple[int, int, np.ndarray]]]:
    """Which segment ends meet another segment's end at a plausible corner: the two lines cross
    at 35-145 degrees, near (or a little beyond, where a corner is rounded or hidden) an end of
    each. Keyed by (segment, end 0 or 1): (other segment, its end, the crossing)."""
    starts, ends = segments[:, 0], segments[:, 1]
    lengths = np.linalg.norm(ends - starts, axis=1)
    directions = (ends - starts) / lengths[:, None]
    sines = _cross(directions[:, None], directions[None, :])
    w = starts[None, :, :] - starts[:, None, :]  # w[i, j] = start_j - start_i
    with np.errstate(divide="ignore", invalid="ignore"):
        t_first = _cross(w, directions[None, :]) / sines  # along i, from its start
        t_second = _cross(w, directions[:, None]) / sines  # along j, from its start
    # A short piece of a side (the rest hidden, or lost against a like background) may end
    # far from the corner: how far counts in the longer segment's length.
    longer = np.maximum(lengths[:, None], lengths[None, :])
    near_i, end_i, gap_i = _near_end(t_first, lengths[:, None], longer)
    near_j, end_j, gap_j = _near_end(t_second, lengths[None, :], longer)
    linked = (np.abs(sines) >= np.sin(np.radians(35))) & near_i & near_j
    gaps = (np.abs(gap_i) + np.abs(gap_j)) / longer
    first, second = np.nonzero(np.triu(linked, 1))
    # Each link seen from both of its ends: (end, other end, crossing), an end being
    # 2 * segment + 0 or 1.
    here = np.concatenate([2 * first + end_i[first, second], 2 * second + end_j[first, second]])
    there = np.concatenate([2 * second + end_j[first, second], 2 * first + end_i[first, second]])
    crossings = starts[first] + t_first[first, second][:, None] * directions[first]
    crossings = np.concatenate([crossings, crossings])
    # Each end keeps the corners closest to it for the segments' size: a long edge crossing
    # many short ones (a building's) would otherwise make thousands of quadrilaterals.
    order = np.lexsort((np.concatenate([gaps[first, second]] * 2), here))
    here, there, crossings = here[order], there[order], crossings[order]
    group_start = np.searchsorted(here, here)
    keep = np.arange(len(here)) - group_start < LINKS_PER_END
    links: dict[tuple[int, int], list[tuple[int, int, np.ndarray]]] = {}
    for end, other, crossing in zip(here[keep], there[keep], crossings[keep], strict=True):
        links.setdefault((int(end) // 2, int(end) % 2), []).append(
            (int(other) // 2, int(other) % 2, crossing)
        )
    return links


def _near_end(
    along: np.ndarray, length: np.ndarray, reach: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether a crossing `along` a segment is near one of its ends (past it by at most a share
    of `reach`), which end (0, 1), and how far past it (negative: inside)."""
    end = (along > length / 2).astype(int)
    beyond = np.where(end == 1, along - length, -along)  # past the end; negative: inside
    near = (beyond <= CORNER_BEYOND_PX + CORNER_BEYOND_SHARE * reach) & (
        beyond >= -(CORNER_BEYOND_PX + CORNER_INSIDE_SHARE * length)
    )
    return near, end, beyond


def _closed_quads(
    segments: np.ndarray, links: dict[tuple[int, int], list[tuple[int, int, np.ndarray]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Cycles of four segments, each meeting the next at its other end: the convex
    quadrilaterals' corners (n, 4, 2; clockwise on screen) and how much of their perimeters the
    segments cover. Several pieces of the same sides give the same corners: such a quad is kept
    once, with its best coverage."""
    crossing_at = {
        (end, (other, other_end)): crossing
        for end, found in links.items()
        for other, other_end, crossing in found
    }
    seen: set[frozenset[int]] = set()
    members, corners = [], []
    for (first, first_end), first_links in links.items():
        if first_end != 1:
            continue
        for second, second_end, a in first_links:
            for third, third_end, b in links.get((second, 1 - second_end), []):
                if third == first:
                    continue
                for fourth, fourth_end, c in links.get((third, 1 - third_end), []):
                    d = crossing_at.get(((fourth, 1 - fourth_end), (first, 0)))
                    cycle = frozenset((first, second, third, fourth))
                    if d is None or fourth in (first, second) or cycle in seen:
                        continue
                    seen.add(cycle)
                    members.append((first, second, third, fourth))
                    corners.append((a, b, c, d))
    if not corners:
        return np.empty((0, 4, 2)), np.empty(0)
    quads = np.array(corners)
    turns = _cross(np.roll(quads, -1, axis=1) - quads, np.roll(quads, -2, axis=1) - quads)
    convex = (turns > 0).all(axis=1) | (turns < 0).all(axis=1)
    quads = np.where((turns.sum(axis=1) < 0)[:, None, None], quads[:, ::-1], quads)
    lengths = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1)
    perimeters = np.linalg.norm(np.roll(quads, -1, axis=1) - quads, axis=2).sum(axis=1)
    coverage = lengths[np.array(members)].sum(axis=1) / perimeters
    quads, coverage = quads[convex], coverage[convex]
    # One of each set of corners (to 2 px, from the top-left-most): the best covered.
    start = np.argmin(quads.sum(axis=2), axis=1)
    canonical = np.stack(
        [np.roll(quad, -first, axis=0) for quad, first in zip(quads, start, strict=True)]
    )
    by_coverage = np.argsort(-coverage)
    _, first_of_each = np.unique(
        np.round(canonical[by_coverage] / 2).reshape(len(quads), -1), axis=0, return_index=True
    )
    kept = by_coverage[first_of_each]
    return quads[kept], coverage[kept]


def _quad_area(corners: np.ndarray) -> float:
    return float(cv2.contourArea(corners.astype(np.float32)))


# ---------------------------------------------------------------- card: fitting


def _fit_card(rgb: np.ndarray, quad: np.ndarray, shrink: float) -> CardDetection | None:
    """The card a quad found in the photo shrunk by `shrink` (in full-size px) outlines,
    refined; None when it is not a card."""
    height, width = rgb.shape[:2]
    outline = _refine_sides(rgb, quad, shrink)
    if outline is None:
        return None
    lines, support, fit_error = outline.lines, outline.support, outline.fit_error
    corners = np.array([_intersection(lines[i - 1], lines[i]) for i in range(4)])
    if not np.isfinite(corners).all() or not cv2.isContourConvex(corners.astype(np.float32)):
        return None
    if np.abs(corners - quad).max() > 0.25 * np.linalg.norm(quad[0] - quad[2]):
        return None  # the lines ran off to other edges
    view = _card_view(corners, (height, width))
    if view is None:
        return None
    corners, aspect_error = view
    long_side = max(
        np.linalg.norm(corners[1] - corners[0]), np.linalg.norm(corners[3] - corners[2])
    )
    area_share = _quad_area(corners) / (height * width)
    if (
        long_side < MIN_LONG_SIDE_PX
        or not MIN_AREA_SHARE <= area_share <= MAX_AREA_SHARE
        or aspect_error > ASPECT_TOLERANCE
        or support < MIN_SIDE_SUPPORT
        or outline.contrast < MIN_SIDE_CONTRAST
        or fit_error > MAX_FIT_ERROR_PX
    ):
        return None
    homography = cv2.getPerspectiveTransform(
        CARD_CORNERS_MM.astype(np.float32), corners.astype(np.float32)
    ).astype(np.float64)
    mm_per_px = _mm_per_px_at(homography, np.array([CARD_WIDTH_MM / 2, CARD_HEIGHT_MM / 2]))
    corner_depths = _corner_depths_mm(rgb, homography, mm_per_px)
    if corner_depths is not None and np.sum(corner_depths < SHARP_CORNER_MM) >= 2:
        return None  # sharp corners: a book, a frame, a screen, a stripe across a card
    if _edge_just_outside(rgb, homography, mm_per_px, outline.contrast):
        return None  # print on a card (a stripe's edge), the card's own edge just beyond
    confidence = (
        (1 - (aspect_error / ASPECT_TOLERANCE) ** 2)
        * (1 / (1 + (fit_error / 0.75) ** 2))
        * support
        * (0.5 + 0.5 * _rounding_score(corner_depths))
    )
    return CardDetection(
        corners=_frozen(corners),
        homography=_frozen(homography),
        mm_per_px=mm_per_px,
        fit_error_px=fit_error,
        confidence=float(np.clip(confidence, 0, 1)),
        white_rgb=None,  # measured on the chosen card only
        white_share=0.0,
    )


class _Side(NamedTuple):
    line: tuple[np.ndarray, np.ndarray]  # a point and a unit direction
    support: float  # share of the probes that found the edge on the line
    distances: np.ndarray  # of those edge points from the line, px
    contrast: float  # median colour step across the edge (RGB distance over 1 px)


class _Outline(NamedTuple):
    lines: list[tuple[np.ndarray, np.ndarray]]
    support: float  # the lowest side's
    fit_error: float  # RMS distance of all edge points from their sides
    contrast: float  # the lowest side's


def _refine_sides(rgb: np.ndarray, quad: np.ndarray, shrink: float) -> _Outline | None:
    """Each side of `quad` located on the full-size photo: a coarse pass at the scale of the
    shrunk photo's pixels, reaching as far as they could be off, then a fine pass around the
    first line."""
    coarse_scale = max(0.5, 0.5 / shrink)
    coarse_reach = 1.5 + 3 * coarse_scale
    sides = []
    for index in range(4):
        start, end = quad[index], quad[(index + 1) % 4]
        coarse = _locate_side(rgb, start, end, coarse_reach, COARSE_PROBES, coarse_scale)
        if coarse is None:
            return None
        point, direction = coarse.line
        start, end = (point + np.dot(p - point, direction) * direction for p in (start, end))
        fine = _locate_side(rgb, start, end, FINE_REACH_PX, FINE_PROBES, 0.5)
        if fine is None:
            return None
        sides.append(fine)
    distances = np.concatenate([side.distances for side in sides])
    return _Outline(
        lines=[side.line for side in sides],
        support=min(side.support for side in sides),
        fit_error=float(np.sqrt(np.mean(distances**2))),
        contrast=min(side.contrast for side in sides),
    )


def _locate_side(
    rgb: np.ndarray, start: np.ndarray, end: np.ndarray, reach: float, probes: int, scale: float
) -> _Side | None:
    """The straight edge near the segment start-end: on probes across it (clear of the
    corners), the sub-pixel position of the strongest colour step within `reach`, then a
    robust line through them. The step at an offset is the difference of the mean colours
    `scale` px either side: a coarse scale lets an edge stand out of fine texture (gravel at
    12 MP); the fine pass uses 0.5 px."""
    direction = (end - start) / np.linalg.norm(end - start)
    normal = np.array([-direction[1], direction[0]])
    centres = start + np.linspace(*SIDE_SPAN, probes)[:, None] * (end - start)
    half = max(1, round(scale / PROBE_STEP_PX))  # samples either side of a step
    margin = (half + 1) * PROBE_STEP_PX
    offsets = np.arange(-reach - margin, reach + margin + PROBE_STEP_PX / 2, PROBE_STEP_PX)
    profiles = _sample(rgb, centres[:, None, :] + offsets[None, :, None] * normal)
    sums = np.cumsum(np.pad(profiles, ((0, 0), (1, 0), (0, 0))), axis=1)
    means = (sums[:, half:] - sums[:, :-half]) / half  # means[k]: samples k .. k + half - 1
    steps = np.linalg.norm(means[:, half:] - means[:, :-half], axis=2)  # at sample k + half
    centre_offsets = offsets[half : half + steps.shape[1]] - PROBE_STEP_PX / 2
    steps[:, np.abs(centre_offsets) > reach] = 0
    rows = np.arange(probes)
    peaks = np.clip(steps.argmax(axis=1), 1, steps.shape[1] - 2)
    before, at, after = steps[rows, peaks - 1], steps[rows, peaks], steps[rows, peaks + 1]
    # The vertex of the parabola through the peak and its neighbours.
    curvature = np.minimum(before - 2 * at + after, -1e-9)
    shift = np.clip(0.5 * (before - after) / curvature, -0.5, 0.5)
    strong = at >= MIN_EDGE_STEP
    positions = centre_offsets[peaks] + shift * PROBE_STEP_PX
    points = centres[strong] + positions[strong, None] * normal
    if len(points) < MIN_SIDE_SUPPORT * probes:
        return None
    inliers = _distance_to_line(points, _robust_line(points)) <= max(EDGE_INLIER_PX, scale)
    if inliers.sum() < MIN_SIDE_SUPPORT * probes:
        return None
    line = _robust_line(points[inliers])
    return _Side(
        line=line,
        support=float(inliers.sum() / probes),
        distances=_distance_to_line(points[inliers], line),
        contrast=float(np.median(at[strong][inliers])),
    )


def _sample(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear RGB (float) at sub-pixel points (..., 2) of the photo."""
    shape = points.shape[:-1]
    flat = points.reshape(1, -1, 2).astype(np.float32)
    values = cv2.remap(
        rgb, flat[..., 0], flat[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return values.reshape(*shape, 3).astype(np.float32)


def _robust_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vx, vy, x0, y0 = cv2.fitLine(points.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    return np.array([x0, y0], dtype=np.float64), np.array([vx, vy], dtype=np.float64)


def _distance_to_line(points: np.ndarray, line: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    point, direction = line
    offsets = points - point
    return np.abs(offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0])


def _intersection(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    (p, d), (q, e) = first, second
    denominator = d[0] * e[1] - d[1] * e[0]
    if abs(denominator) < 1e-9:
        return np.array([np.nan, np.nan])
    t = ((q[0] - p[0]) * e[1] - (q[1] - p[1]) * e[0]) / denominator
    return p + t * d


def _card_view(corners: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, float] | None:
    """The clockwise quad `corners` as a card: re-ordered top-left, top-right, bottom-right,
    bottom-left of the card held long side horizontal (the top being the long side higher in
    the photo), and how far (relative) the aspect of the most card-like rectangle it can show
    is from a card's. None when no plausible camera sees it as a rectangle.

    A quad is the image of a rectangle of any aspect under some camera: which aspect depends on
    the focal length, which a single view of a rectangle often leaves open (it is fixed only
    when both pairs of sides converge, and then noisily: tenths of a pixel on the corners of a
    small card change it a lot). So every focal length from FOCAL_LENGTH_RANGE is tried, with
    square pixels and the principal point at the photo's centre, and it counts when the quad
    is then a rectangle (sides within MAX_SKEW of square in space) tilted at most MAX_TILT from
    facing the camera. On simulated photos (corners off by 0.3 px, cards 80-500 px long, tilted
    up to 45 degrees) 95% of cards come within 5% of the card's aspect; so do 2% of doors
    (aspect 2.3), but also 30% of A4 sheets (1.41) and 70% of books of aspect 1.5: rounded
    corners tell those apart when the card is big enough (see _corner_depths_mm)."""
    height, width = image_size
    centre = np.array([width / 2, height / 2])
    focal_lengths = np.geomspace(*FOCAL_LENGTH_RANGE, 40) * np.hypot(width, height)
    best: tuple[float, int] | None = None
    for shift in (0, 1):  # which pair of sides is the long one
        quad = np.roll(corners, -shift, axis=0) - centre
        square_to_quad = cv2.getPerspectiveTransform(UNIT_SQUARE, quad.astype(np.float32)).astype(
            np.float64
        )
        aspects = _rectangle_aspects(square_to_quad, focal_lengths)
        if len(aspects):
            error = float(np.min(np.abs(np.log(aspects / CARD_ASPECT))))
            if best is None or error < best[0]:
                best = (error, shift)
    if best is None:
        return None
    error, shift = best
    corners = np.roll(corners, -shift, axis=0)
    top_y, bottom_y = corners[0, 1] + corners[1, 1], corners[2, 1] + corners[3, 1]
    if bottom_y < top_y or (bottom_y == top_y and corners[2, 0] < corners[0, 0]):
        corners = np.roll(corners, -2, axis=0)
    return corners, float(np.expm1(error))


def _rectangle_aspects(square_to_quad: np.ndarray, focal_lengths: np.ndarray) -> np.ndarray:
    """Width / height of the rectangles the unit square maps to (image px relative to the
    principal point) for each focal length that sees a rectangle tilted at most MAX_TILT from
    facing the camera.
    With K = diag(f, f, 1), the columns a1, a2 of K^-1 H are the rectangle's sides in camera
    space (up to one scale): they must be perpendicular; a1 x a2 is its normal."""
    inverse_focal = np.stack(
        [1 / focal_lengths, 1 / focal_lengths, np.ones_like(focal_lengths)], axis=1
    )
    across, down = (inverse_focal * square_to_quad[:, column] for column in (0, 1))
    across_length, down_length = (np.linalg.norm(v, axis=1) for v in (across, down))
    skew = np.abs(np.sum(across * down, axis=1)) / (across_length * down_length)
    normal = np.cross(across, down)
    facing = np.abs(normal[:, 2]) / np.linalg.norm(normal, axis=1)  # vs the optical axis
    seen = (skew <= np.sin(np.radians(MAX_SKEW_DEGREES))) & (
        facing >= np.cos(np.radians(MAX_TILT_DEGREES))
    )
    return (across_length / down_length)[seen]


def _mm_per_px_at(homography: np.ndarray, point_mm: np.ndarray) -> float:
    """mm per image px at a card point: from the Jacobian of mm -> px there, the geometric mean
    of the px lengths of 1 mm along the card's two axes."""
    x, y, w = homography @ np.append(point_mm, 1.0)
    u, v = x / w, y / w
    jacobian = (homography[:2, :2] - np.outer([u, v], homography[2, :2])) / w
    px_per_mm = np.sqrt(np.linalg.norm(jacobian[:, 0]) * np.linalg.norm(jacobian[:, 1]))
    return float(1 / px_per_mm)


def _corner_depths_mm(
    rgb: np.ndarray, homography: np.ndarray, mm_per_px: float
) -> np.ndarray | None:
    """How deep (mm) inside each of the four sharp corners the card's outline crosses the
    diagonal: 1.32 mm for an ID-1 card's 3.18 mm radius, 0 for a sharp corner, NaN where no
    edge was found. None when the card is too small in the photo to tell."""
    if 1 / mm_per_px < MIN_PX_PER_MM_FOR_CORNERS:
        return None
    step_mm = PROBE_STEP_PX * mm_per_px
    depths_mm = np.arange(-1.5, 3.0 + step_mm / 2, step_mm)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) / np.sqrt(2)
    path_mm = CARD_CORNERS_MM[:, None, :] + depths_mm[None, :, None] * inward[:, None, :]
    path_px = cv2.perspectiveTransform(path_mm.reshape(1, -1, 2), homography).reshape(4, -1, 2)
    profiles = _sample(rgb, path_px)
    span = round(0.5 / PROBE_STEP_PX)
    steps = np.linalg.norm(profiles[:, 2 * span :] - profiles[:, : -2 * span], axis=2)
    depths = depths_mm[span:-span][steps.argmax(axis=1)]
    return np.where(steps.max(axis=1) >= MIN_EDGE_STEP, depths, np.nan)


def _edge_just_outside(
    rgb: np.ndarray, homography: np.ndarray, mm_per_px: float, contrast: float
) -> bool:
    """Whether, a few mm outside one of the sides, a second straight edge runs along all of
    it: then the quad is likely print on a card (a magnetic stripe's edge, 5.5 mm inside the
    card's) whose own edge, fainter against its background, was missed. Probes go out 1-8 mm
    square to each side; the edge counts when most probes find a step at least half as strong
    as the side's at one depth (within 0.5 mm)."""
    step_mm = PROBE_STEP_PX * mm_per_px
    depths_mm = np.arange(1.0, OUTSIDE_EDGE_MM + step_mm / 2, step_mm)
    span = round(0.5 / PROBE_STEP_PX)
    along = np.linspace(*SIDE_SPAN, COARSE_PROBES)
    for start, end in zip(CARD_CORNERS_MM, np.roll(CARD_CORNERS_MM, -1, axis=0), strict=True):
        direction = (end - start) / np.linalg.norm(end - start)
        outward = np.array([direction[1], -direction[0]])  # corners run clockwise
        centres = start + along[:, None] * (end - start)
        path_mm = centres[:, None, :] + depths_mm[None, :, None] * outward
        path_px = cv2.perspectiveTransform(path_mm.reshape(1, -1, 2), homography)
        profiles = _sample(rgb, path_px.reshape(len(along), -1, 2))
        steps = np.linalg.norm(profiles[:, 2 * span :] - profiles[:, : -2 * span], axis=2)
        peaks = depths_mm[span:-span][steps.argmax(axis=1)]
        strong = steps.max(axis=1) >= 0.5 * contrast
        if strong.mean() < MIN_SIDE_SUPPORT:
            continue
        at_one_depth = np.abs(peaks[strong] - np.median(peaks[strong])) <= 0.5
        if at_one_depth.sum() >= MIN_SIDE_SUPPORT * len(along):
            return True
    return False


def _rounding_score(depths_mm: np.ndarray | None) -> float:
    """The share of corners rounded as an ID-1 card's (0.7 when they cannot be seen)."""
    if depths_mm is None:
        return 0.7
    rounded = np.abs(depths_mm - CARD_CORNER_INSET_MM) <= ROUNDED_CORNER_TOLERANCE_MM
    return float(np.mean(rounded))


# ---------------------------------------------------------------- card: white


def _card_white(
    rgb: np.ndarray, homography: np.ndarray
) -> tuple[tuple[float, float, float] | None, float]:
    """The card's white (median linear sRGB of its white pixels) and the share of the card it
    covers. White pixels: unclipped, bright for this card, and of one chromaticity (the white's
    own, so a tinted light's white still counts); usable when they cover enough of the card and
    their colour is one a light could have."""
    card = _rectified(rgb, homography)
    pixels = card[
        RECTIFIED_MARGIN_PX:-RECTIFIED_MARGIN_PX, RECTIFIED_MARGIN_PX:-RECTIFIED_MARGIN_PX
    ]
    pixels = pixels.reshape(-1, 3)
    unclipped = (pixels < CLIPPED_LEVEL).all(axis=1)
    if not unclipped.any():
        return None, 0.0
    linear = _SRGB_DECODE_TABLE[pixels].astype(np.float64)
    luminance = linear @ LUMINANCE
    bright = unclipped & (luminance >= WHITE_BRIGHTNESS * np.percentile(luminance[unclipped], 90))
    chromaticity = linear[:, :2] / np.maximum(linear.sum(axis=1, keepdims=True), 1e-6)
    centre = np.median(chromaticity[bright], axis=0)
    white_pixels = bright & (np.abs(chromaticity - centre).max(axis=1) <= WHITE_CHROMA_SPREAD)
    share = float(white_pixels.mean())
    if share < MIN_WHITE_SHARE:
        return None, share
    white = np.median(linear[white_pixels], axis=0)
    if white @ LUMINANCE < MIN_WHITE_LUMINANCE or not _plausible_light(white):
        return None, share
    red, green, blue = (float(channel) for channel in white)
    return (red, green, blue), share


def _rectified(rgb: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """The card seen square on, RECTIFIED_SIZE px (5 px/mm)."""
    width, height = RECTIFIED_SIZE
    mm_from_px = np.diag([CARD_WIDTH_MM / width, CARD_HEIGHT_MM / height, 1.0])
    return cv2.warpPerspective(
        rgb, homography @ mm_from_px, RECTIFIED_SIZE,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def _plausible_light(white_rgb: np.ndarray) -> bool:
    """Whether a white could be a light's: near the Planckian locus at a usual temperature.
    A saturated card colour is not; a pale tint can be, and cannot be told from tinted light."""
    if np.any(white_rgb <= 0):
        return False
    x, y = _chromaticity_xy(white_rgb)
    cct = correlated_colour_temperature(white_rgb)
    return (
        _planckian_distance(x, y) <= MAX_WHITE_DUV
        and cct is not None
        and PLAUSIBLE_CCT_K[0] <= cct <= PLAUSIBLE_CCT_K[1]
    )


# ---------------------------------------------------------------- colour maths


def _chromaticity_xy(white_rgb: np.ndarray) -> tuple[float, float]:
    xyz = XYZ_FROM_RGB @ np.asarray(white_rgb, dtype=np.float64)
    x, y = xyz[:2] / xyz.sum()
    return float(x), float(y)


def _planckian_distance(x: float, y: float) -> float:
    """|Duv|: distance in CIE 1960 uv from the Planckian locus (Krystek's 1985 rational
    approximation, 1000-15000 K; beyond 15000 K the locus's end is used)."""
    denominator = -2 * x + 12 * y + 3
    u, v = 4 * x / denominator, 6 * y / denominator
    locus_u, locus_v = _PLANCKIAN_UV
    return float(np.min(np.hypot(locus_u - u, locus_v - v)))


def _planckian_locus_uv(temperatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = temperatures
    u = (0.860117757 + 1.54118254e-4 * t + 1.28641212e-7 * t**2) / (
        1 + 8.42420235e-4 * t + 7.08145163e-7 * t**2
    )
    v = (0.317398726 + 4.22806245e-5 * t + 4.20481691e-8 * t**2) / (
        1 - 2.89741816e-5 * t + 1.61456053e-7 * t**2
    )
    return u, v


_PLANCKIAN_UV = _planckian_locus_uv(np.geomspace(1000, 15000, 2000))


# ---------------------------------------------------------------- calibrations


def _checker_calibration(
    fit: CheckerFit, found_in: Literal["reference", "image"]
) -> ColourCalibration:
    """The chart's matrix, scaled to keep the luminance of the white it makes neutral."""
    scene_white = np.linalg.solve(fit.matrix, np.ones(3))
    matrix = fit.matrix * float(scene_white @ LUMINANCE)
    return _calibration("colour_checker", scene_white, matrix, None, found_in, fit.residual_delta_e)


def _white_calibration(
    source: Literal["card", "grey_world"],
    white: np.ndarray,
    card: CardDetection | None,
    found_in: Literal["reference", "image"] | None,
) -> ColourCalibration:
    return _calibration(source, white, bradford_to_d65(white), card, found_in, None)


def _grey_world_calibration(
    photo: np.ndarray,
    card: CardDetection | None,
    found_in: Literal["reference", "image"] | None,
) -> ColourCalibration:
    white = _shades_of_grey_white(photo)
    matrix = bradford_to_d65(_capped_white(white))
    return _calibration("grey_world", white, matrix, card, found_in, None)


def _calibration(
    source: Literal["colour_checker", "card", "grey_world"],
    scene_white: np.ndarray,
    matrix: np.ndarray,
    card: CardDetection | None,
    found_in: Literal["reference", "image"] | None,
    residual: float | None,
) -> ColourCalibration:
    lab = white_lab(scene_white)
    corrected_white = matrix @ scene_white
    shift = delta_e_2000(white_lab(corrected_white), lab)
    return ColourCalibration(
        source=source,
        estimated=source == "grey_world",
        matrix=_frozen(matrix),
        white_before_lab=(float(lab[0]), float(lab[1]), float(lab[2])),
        white_shift_delta_e=float(shift),
        cct_before_k=correlated_colour_temperature(scene_white),
        card=card,
        found_in=found_in,
        residual_delta_e=residual,
    )


def _shades_of_grey_white(photo: np.ndarray) -> np.ndarray:
    """The 6-norm of linear RGB over unclipped pixels that are not nearly black (a regular
    sample of at most GREY_WORLD_SAMPLES); neutral when there are none."""
    stride = max(1, int(np.sqrt(photo.shape[0] * photo.shape[1] / GREY_WORLD_SAMPLES)))
    pixels = photo[::stride, ::stride].reshape(-1, 3)
    linear = _SRGB_DECODE_TABLE[pixels].astype(np.float64)
    usable = (pixels < CLIPPED_LEVEL).all(axis=1) & (linear @ LUMINANCE >= GREY_WORLD_MIN_LUMINANCE)
    if not usable.any():
        return np.ones(3)
    return np.mean(linear[usable] ** GREY_WORLD_NORM, axis=0) ** (1 / GREY_WORLD_NORM)


def _capped_white(white: np.ndarray) -> np.ndarray:
    """`white` moved towards neutral (along a straight line in linear RGB at equal luminance)
    until it is at most GREY_WORLD_MAX_SHIFT DeltaE2000 from D65."""
    neutral = np.ones(3) * float(white @ LUMINANCE)
    if _shift_from_neutral(white) <= GREY_WORLD_MAX_SHIFT:
        return white
    low, high = 0.0, 1.0  # the share of the way from neutral to `white`; DeltaE grows with it
    for _ in range(30):
        middle = (low + high) / 2
        if _shift_from_neutral(neutral + middle * (white - neutral)) <= GREY_WORLD_MAX_SHIFT:
            low = middle
        else:
            high = middle
    return neutral + low * (white - neutral)


def _shift_from_neutral(white: np.ndarray) -> float:
    return float(delta_e_2000(white_lab(white), np.array([100.0, 0.0, 0.0])))


def _measure_checker(photo: np.ndarray) -> np.ndarray | None:
    """The 24 patch colours (sRGB 0-255; NaN where a patch is outside the photo or has clipped
    pixels) of a ColorChecker Classic that cv2.mcc finds, or None."""
    shrink = min(1.0, CHECKER_LONG_SIDE / max(photo.shape[:2]))
    if shrink < 1.0:
        photo = cv2.resize(photo, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    detector = cv2.mcc.CCheckerDetector.create()
    if not detector.process(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), cv2.mcc.MCC24, 1):
        return None
    # Per patch and channel (R, G, B): pixel count, mean, standard deviation, max, min.
    charts = np.asarray(detector.getBestColorChecker().getChartsRGB(), dtype=np.float64)
    counts, means, maxima = (charts[:, column].reshape(24, 3) for column in (0, 1, 3))
    measured = (counts[:, 0] > 0) & (maxima < CLIPPED_LEVEL).all(axis=1)
    return np.where(measured[:, None], means, np.nan)


# ---------------------------------------------------------------- helpers


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an RGB, RGBA or greyscale uint8 image."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image[..., :3])


def _cross(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The z of the cross product of 2-d vectors (broadcasting)."""
    return first[..., 0] * second[..., 1] - first[..., 1] * second[..., 0]


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only copy, so a frozen dataclass's arrays stay as found."""
    copy = np.array(array, dtype=np.float64)
    copy.setflags(write=False)
    return copy


_SRGB_DECODE_TABLE = srgb_to_linear(np.arange(256) / 255).astype(np.float32)
