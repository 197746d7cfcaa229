"""Clothing: which of the person's pixels are clothing, the pixels the colours are taken from.

No clothing, hair or skin segmentation model ships in any package this project can use (see
design.md), so this is a heuristic built from what the earlier stages give: the person's matte,
the pose keypoints seen inside the photo, the face box and the photo itself. From the person it
removes
- the head (the face box, widened and raised to take the top of the head and the ears) and the
  neck below it, down to the shoulders; the hands (discs around their keypoints);
- skin: pixels close in colour to the middle of the face (bare arms, a neckline);
- hair, long hair included: the colours on top of the head (above the face, not skin) are the
  hair's; pixels of those colours connected to the top of the head, within a band around the
  head (beside the face, down over the shoulders, chest and back), are hair. A bald or shaven
  head has no such colours, and no hair is removed. Where the chest has the hair's colours too
  (black hair on a black jacket) the two cannot be told apart: only the hair around the head
  and above the shoulders goes, not the jacket.
Limits: a bag, or an object held against the body, counts as clothing; bare skin whose colour
differs from the face (deep shadow, a tattoo, another person's arm) stays in; clothing close to
the skin tone (tan, beige) is partly lost; hair whose lengths are lit quite unlike the top of the
head stays in. When too little clothing is left, colours would describe hair, skin or
background, so the result gives a reason instead."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from silhouette.vision.types import Box, Keypoint

# Skin: pixels within this CIELAB distance of the face's median colour, lightness counted at
# 1 / SKIN_LIGHTNESS_WEIGHT: the light on an arm or a neckline differs from the face's far more
# than the skin's hue does. On patches of bare arms and chests in the eval photos this finds 59%
# of the skin (the former plain distance under 14: 53%) and takes 3% of beige, tan and orange
# garments for skin (7%); under 12 it took 10%, under 14 44% of them.
SKIN_DELTA_E = 11.0
SKIN_LIGHTNESS_WEIGHT = 2.0
# A face whose median chroma is below this is a greyscale photo: skin can only be told by its
# lightness there, so lightness keeps its full weight.
GREYSCALE_CHROMA = 4.0
# Hair: pixels within HAIR_SIGMAS (Mahalanobis distance) of one of up to HAIR_COLOURS Gaussian
# colours fitted to the top of the head, each spread at least HAIR_MIN_SPREAD (CIELAB units) in
# every direction and HAIR_MIN_LIGHTNESS_SPREAD in lightness (sheen and shade along the hair);
# a colour holding less than HAIR_MIN_PART of those pixels is background or a hair clip.
HAIR_SIGMAS = 3.0
HAIR_MIN_SPREAD = 3.0
HAIR_MIN_LIGHTNESS_SPREAD = 10.0
HAIR_COLOURS = 3
HAIR_MIN_PART = 0.15
# The top of the head, in face widths from the face's centre: above the face, where a head with
# hair has hair (beside a bent head there may as well be a collar or a shoulder). The hair's
# colours are learnt there, from at most HAIR_SAMPLE pixels, when the person's non-skin pixels
# cover at least HAIR_MIN_COVER of it; less, and the head is bald or shaven.
CROWN_ACROSS, CROWN_UP = 0.5, 1.1
HAIR_SAMPLE = 4000
HAIR_MIN_COVER = 0.15
# Where hair is looked for, in face widths from the face's centre: sideways, and from above the
# head to the chest (long hair over the shoulders, chest or back). On the eval photos long hair
# lies within 1.25 face widths of the face's centre sideways and 3 below it.
HAIR_REACH_ACROSS = 1.5
HAIR_REACH_UP, HAIR_REACH_DOWN = 1.2, 4.0
# Where the chest has the hair's colours (at least CHEST_LIKE_HAIR of its non-skin pixels), hair
# is only looked for around the head, down to the chin, and above the shoulders.
CHEST_LIKE_HAIR = 0.5
RING_ACROSS, RING_UP, RING_DOWN = 0.9, 1.1, 0.5
# Less clothing than this share of the person, or than this many pixels (20 x 20) of the photo
# worked on, and the colours would be of a collar's sliver, hair, skin or background: none are
# given (see Clothing.reason). On the eval photos, people whose clothes show keep 6% (a close
# portrait's collar) to 85% of their pixels; faces filling the photo keep under 1%.
MIN_CLOTHING_SHARE = 0.05
MIN_CLOTHING_PIXELS = 400
TOO_LITTLE = "too little clothing visible: head, hair, skin and hands cover most of the person"
SEED = 0  # the hair's colours are fitted to a fixed-seed sample: same photo, same mask


@dataclass(frozen=True)
class Clothing:
    """The clothing mask and how much of the person (alpha >= 128) each part takes."""

    mask: np.ndarray  # bool (H, W)
    share_of_person: float  # clothing pixels / person pixels
    hair_share: float  # hair pixels / person pixels
    skin_share: float  # skin-coloured pixels (the face included) / person pixels
    reason: str | None  # why there are no colours: too little clothing left; None when enough

    def facts(self) -> dict[str, float | str | None]:
        """JSON-ready figures for the stage's facts."""
        return {
            "share_of_person": round(self.share_of_person, 4),
            "hair_share": round(self.hair_share, 4),
            "skin_share": round(self.skin_share, 4),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class _Head:
    """Where the head is: the face's centre and width in pixels."""

    x: float
    y: float
    size: float

    def slices(self, across: float, up: float, down: float) -> tuple[slice, slice]:
        """The rows and columns `across` face widths either side of the face's centre, from `up`
        above it to `down` below it. Upright: hair falls down the photo however the body leans."""
        top, bottom = round(self.y - up * self.size), round(self.y + down * self.size)
        left, right = round(self.x - across * self.size), round(self.x + across * self.size)
        return slice(max(0, top), max(0, bottom)), slice(max(0, left), max(0, right))

    def box(self, across: float, up: float, down: float, shape: tuple[int, int]) -> np.ndarray:
        """The pixels of `slices` as a mask."""
        mask = np.zeros(shape, bool)
        mask[self.slices(across, up, down)] = True
        return mask


def find_clothing(
    image: np.ndarray, alpha: np.ndarray, keypoints: list[Keypoint], face_box: Box | None
) -> Clothing:
    """The clothing of the person whose matte is `alpha` (uint8 H x W) in the RGB photo."""
    person = alpha >= 128
    person_pixels = int(person.sum())
    if person_pixels == 0:
        return Clothing(person, 0.0, 0.0, 0.0, TOO_LITTLE)
    # Worked out on the person's bounding rectangle only: a small person in a large photo costs
    # little, and the CIELAB floats are never the whole photo's.
    left, top, width, height = cv2.boundingRect(person.astype(np.uint8))
    window = (slice(top, top + height), slice(left, left + width))
    points = {k.name: replace(k, x=k.x - left, y=k.y - top) for k in keypoints if k.usable}
    face = replace(face_box, x=face_box.x - left, y=face_box.y - top) if face_box else None
    parts = _parts(image[window], person[window], points, face)
    mask = np.zeros_like(person)
    mask[window] = parts.clothing
    clothing_pixels = int(parts.clothing.sum())
    share = clothing_pixels / person_pixels
    enough = share >= MIN_CLOTHING_SHARE and clothing_pixels >= MIN_CLOTHING_PIXELS
    return Clothing(
        mask=mask,
        share_of_person=share,
        hair_share=int(parts.hair.sum()) / person_pixels,
        skin_share=int(parts.skin.sum()) / person_pixels,
        reason=None if enough else TOO_LITTLE,
    )


@dataclass(frozen=True)
class _Parts:
    clothing: np.ndarray
    hair: np.ndarray
    skin: np.ndarray


@dataclass(frozen=True)
class _Regions:
    """What is known of the person's pixels before the hair is looked for (bool masks)."""

    person: np.ndarray
    skin: np.ndarray
    hands: np.ndarray
    head_and_neck: np.ndarray
    above_neck: np.ndarray


def _parts(
    image: np.ndarray, person: np.ndarray, points: dict[str, Keypoint], face: Box | None
) -> _Parts:
    lab = _lab(image)
    head = _head(points, face)
    above_neck = _above_neck(points, person.shape)
    regions = _Regions(
        person=person,
        skin=_skin_like(lab, face) & person,
        hands=_hands(points, face, person.shape),
        head_and_neck=_head_and_neck(points, face, above_neck),
        above_neck=above_neck,
    )
    hair = _hair(lab, regions, head, points) if head else np.zeros_like(person)
    clothing = person & ~(regions.skin | hair | regions.head_and_neck | regions.hands)
    opened = cv2.morphologyEx(clothing.astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return _Parts(opened > 0, hair, regions.skin)


def _lab(image: np.ndarray) -> np.ndarray:
    """CIELAB (L 0..100, a and b around 0) as float32, from OpenCV's 8-bit conversion."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100 / 255
    lab[..., 1:] -= 128
    return lab


def _squared_distance(lab: np.ndarray, colour: np.ndarray, lightness_weight: float) -> np.ndarray:
    """Each pixel's squared CIELAB distance to `colour`, lightness divided by the weight."""
    difference = lab - colour.astype(np.float32)
    difference[..., 0] /= lightness_weight
    return np.einsum("ijk,ijk->ij", difference, difference)


def _lightness_weight(colour: np.ndarray) -> float:
    return 1.0 if np.hypot(colour[1], colour[2]) < GREYSCALE_CHROMA else SKIN_LIGHTNESS_WEIGHT


def _skin_like(lab: np.ndarray, face: Box | None) -> np.ndarray:
    """Pixels whose colour is close to the skin in the middle of the face, if there is one."""
    no_skin = np.zeros(lab.shape[:2], bool)
    if face is None or face.width < 8:
        return no_skin
    inset_x, inset_y = face.width // 4, face.height // 4
    centre = lab[
        max(0, face.y + inset_y) : max(0, face.y + face.height - inset_y),
        max(0, face.x + inset_x) : max(0, face.x + face.width - inset_x),
    ]
    if centre.size == 0:
        return no_skin
    skin = np.median(centre.reshape(-1, 3), axis=0)
    return _squared_distance(lab, skin, _lightness_weight(skin)) < SKIN_DELTA_E**2


HEAD_LANDMARKS = frozenset(
    {"nose", "left_eye", "right_eye", "left_ear", "right_ear", "mouth_left", "mouth_right"}
)


def _head(points: dict[str, Keypoint], face: Box | None) -> _Head | None:
    """The head from the face box, or from the face's keypoints when no face was detected (a
    face turned away, upside down or too small)."""
    if face is not None:
        return _Head(face.x + face.width / 2, face.y + face.height / 2, float(face.width))
    return _landmarks_head(points)


def _landmarks_head(points: dict[str, Keypoint]) -> _Head | None:
    """The head where the pose's face keypoints put it."""
    seen = np.array([(p.x, p.y) for name, p in points.items() if name in HEAD_LANDMARKS])
    if len(seen) < 2:
        return None
    # The landmarks span about the face's width (ear to ear, or eye to mouth).
    size = 1.2 * float(np.ptp(seen, axis=0).max())
    x, y = seen.mean(axis=0)
    return _Head(float(x), float(y), size) if size >= 8 else None


def _hair(
    lab: np.ndarray, regions: _Regions, head: _Head, points: dict[str, Keypoint]
) -> np.ndarray:
    """The hair: pixels of the colours on top of the head, connected to it, within reach."""
    person, skin = regions.person, regions.skin
    shape = person.shape
    crown = head.box(CROWN_ACROSS, CROWN_UP, 0.5, shape) & ~head.box(CROWN_ACROSS, 0.5, 0.5, shape)
    on_crown = crown & person & ~skin & ~regions.hands  # a hand on the head is no hair colour
    if on_crown.sum() < HAIR_MIN_COVER * crown.sum() or on_crown.sum() < 20:
        return np.zeros_like(person)  # bald, shaven, or a skin-tone hat: no hair to go by
    # Hair is only looked for within reach of the head: the colour distances are worked out
    # there, not over the whole person.
    within_reach = head.slices(HAIR_REACH_ACROSS, HAIR_REACH_UP, HAIR_REACH_DOWN)
    hair_coloured = np.zeros_like(person)
    hair_coloured[within_reach] = _ColourModel.fit(lab[on_crown]).matches(lab[within_reach])
    hair_coloured &= person & ~skin
    reach = head.box(HAIR_REACH_ACROSS, HAIR_REACH_UP, HAIR_REACH_DOWN, shape)
    chest = _chest(person & ~skin, head, points)
    if chest.sum() >= 20 and hair_coloured[chest].mean() >= CHEST_LIKE_HAIR:
        # The garment has the hair's colours (black hair on a black jacket) and cannot be told
        # from it: only the hair around the head and above the shoulders goes.
        reach &= head.box(RING_ACROSS, RING_UP, RING_DOWN, shape) | regions.above_neck
    # Fair hair is partly skin-coloured, so skin joins strands of hair; never the face, ears or
    # neck, through which short hair would reach a collar of its colour.
    bridges = skin & ~regions.head_and_neck
    joined = _connected_to((hair_coloured | bridges) & reach, on_crown & hair_coloured)
    return joined & hair_coloured


@dataclass(frozen=True)
class _ColourModel:
    """A few colours, each a Gaussian in CIELAB: hair is dark in one place and light in another,
    and its sheen changes its lightness far more than its hue."""

    means: np.ndarray  # (k, 3)
    inverse_covariances: np.ndarray  # (k, 3, 3)

    @classmethod
    def fit(cls, pixels: np.ndarray) -> _ColourModel:
        if len(pixels) > HAIR_SAMPLE:
            pixels = pixels[np.random.default_rng(SEED).choice(len(pixels), HAIR_SAMPLE, False)]
        mixture = GaussianMixture(
            n_components=min(HAIR_COLOURS, len(np.unique(pixels, axis=0))),
            covariance_type="full",
            reg_covar=HAIR_MIN_SPREAD**2,
            random_state=SEED,
        )
        with threadpool_limits(limits=1):  # as in colours: threads contend over small work
            mixture.fit(pixels)
        kept = mixture.weights_ >= HAIR_MIN_PART
        covariances = mixture.covariances_[kept]
        # Sheen and shade: along its length hair is lighter or darker than on top of the head.
        covariances[:, 0, 0] = np.maximum(covariances[:, 0, 0], HAIR_MIN_LIGHTNESS_SPREAD**2)
        return cls(mixture.means_[kept], np.linalg.inv(covariances))

    def matches(self, lab: np.ndarray) -> np.ndarray:
        """Pixels within HAIR_SIGMAS (Mahalanobis distance) of one of the colours."""
        found = np.zeros(lab.shape[:2], bool)
        for mean, inverse in zip(self.means, self.inverse_covariances, strict=True):
            difference = lab - mean.astype(np.float32)
            spread = difference @ inverse.astype(np.float32)
            found |= np.einsum("ijk,ijk->ij", spread, difference) < HAIR_SIGMAS**2
        return found


def _chest(candidates: np.ndarray, head: _Head, points: dict[str, Keypoint]) -> np.ndarray:
    """The candidate pixels between the shoulders, from below the collar to the belly, where
    the garment shows (or below the head, when the shoulders are not seen)."""
    shoulders = _shoulders(points)
    if shoulders is None:
        return head.box(0.5, -2.0, 4.0, candidates.shape) & candidates
    (x, y), width = shoulders
    chest = np.zeros_like(candidates)
    chest[
        max(0, round(y + 0.3 * width)) : max(0, round(y + 1.2 * width)),
        max(0, round(x - 0.3 * width)) : max(0, round(x + 0.3 * width)),
    ] = True
    return chest & candidates


def _connected_to(region: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The parts of `region` (8-connected) that hold a seed pixel."""
    count, labels = cv2.connectedComponents(region.astype(np.uint8))
    seeded = np.zeros(count, bool)
    seeded[labels[seeds & region]] = True
    seeded[0] = False  # label 0 is everything outside the region
    return seeded[labels]


def _shoulders(points: dict[str, Keypoint]) -> tuple[tuple[float, float], float] | None:
    """The shoulders' midpoint and width, when both are seen."""
    left, right = points.get("left_shoulder"), points.get("right_shoulder")
    if left is None or right is None:
        return None
    middle = ((left.x + right.x) / 2, (left.y + right.y) / 2)
    return middle, max(8.0, float(np.hypot(left.x - right.x, left.y - right.y)))


def _neck_y(points: dict[str, Keypoint]) -> float | None:
    """A line a little above the shoulders' top, where the neck ends, when they are seen."""
    left, right = points.get("left_shoulder"), points.get("right_shoulder")
    nose = points.get("nose")
    if left is None or right is None or nose is None:
        return None
    shoulder_y = min(left.y, right.y)
    return shoulder_y - 0.15 * abs(shoulder_y - nose.y)


def _above_neck(points: dict[str, Keypoint], shape: tuple[int, int]) -> np.ndarray:
    """Everything above the neck's end within the shoulders' reach: the head and neck, and
    whatever lies beside them."""
    region = np.zeros(shape, bool)
    neck_y = _neck_y(points)
    if neck_y is None:
        return region
    left, right = points["left_shoulder"], points["right_shoulder"]
    half_width = 0.6 * abs(left.x - right.x)
    centre_x = (left.x + right.x) / 2
    x0, x1 = int(max(0, centre_x - half_width)), int(max(0, centre_x + half_width))
    region[: int(max(0, neck_y)), x0:x1] = True
    return region


def _head_and_neck(
    points: dict[str, Keypoint], face: Box | None, above_neck: np.ndarray
) -> np.ndarray:
    """The head: the face box widened and raised (the top of the head, ears, a hat); below it
    the neck, as wide as the face, down to the shoulders. Without a face box, all that is above
    the neck. And the head where the pose's keypoints put it, should the face box be another
    person's."""
    landmarks_head = _landmarks_head(points)
    region = np.zeros_like(above_neck)
    if landmarks_head is not None:
        region |= landmarks_head.box(0.75, 1.25, 0.75, region.shape)
    if face is None:
        return region | above_neck
    grow_x, grow_y = int(0.25 * face.width), int(0.25 * face.height)
    top, chin = max(0, face.y - 3 * grow_y), max(0, face.y + face.height)
    region[top:chin, max(0, face.x - grow_x) : max(0, face.x + face.width + grow_x)] = True
    neck_y = _neck_y(points)
    neck_bottom = max(chin + grow_y, round(neck_y) if neck_y is not None else 0)
    region[chin:neck_bottom, max(0, face.x) : max(0, face.x + face.width)] = True
    return region


def _hands(points: dict[str, Keypoint], face: Box | None, shape: tuple[int, int]) -> np.ndarray:
    """Discs around the hands' keypoints, sized by the shoulders (or the face)."""
    shoulders = _shoulders(points)
    if shoulders is not None:
        scale = shoulders[1]
    else:
        scale = float(face.width * 2) if face else shape[1] / 10
    hands = np.zeros(shape, np.uint8)
    for side in ("left", "right"):
        for part in ("wrist", "pinky", "index", "thumb"):
            point = points.get(f"{side}_{part}")
            if point is not None:
                cv2.circle(hands, (int(point.x), int(point.y)), int(0.35 * scale), 1, -1)
    return hands > 0
