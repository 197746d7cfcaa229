"""Segment: a transparent cutout of the person (IS-Net's matte, restricted to the
person the pose stage found) and a binary clothing mask: the person without head, hair, skin and
hands (see silhouette.vision.clothing)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from silhouette.vision import imaging
from silhouette.vision.clothing import Clothing, find_clothing
from silhouette.vision.model_files import model_path
from silhouette.vision.types import Box, Keypoint

if TYPE_CHECKING:
    import onnxruntime

# A matte region belongs to the person when this share of it lies on the (dilated) person mask.
PERSON_SHARE = 0.3
# Below this share of the person mask covered by the matte, IS-Net missed the person (it looks
# for the most salient object): the pose stage's person mask is the cutout instead.
MATTE_MIN_COVERAGE = 0.5
# IS-Net sees the photo squeezed to this square. Chosen from the measured curve (make eval,
# benchmarks/matting_sizes.py): against TRAINED_SIDE, the size the model was trained at, 768
# takes half the time for cutouts that agree at IoU 0.99 (median of 30 photos); at 512 and 640
# the 10th percentile falls from 0.92 to 0.85.
MATTING_SIDE = 768
TRAINED_SIDE = 1024
# IS-Net with int8 convolutions (model_conversion.isnet_int8): half the time of "isnet_fp32"
# for cutouts that agree at IoU 0.99 (make eval: benchmarks/matting_sizes.py).
MATTING_MODEL = "isnet"
# Where the two sizes disagree, either may be the one that missed part of the person (a dark
# dress on a dark ground at 768; a face lit from the side at 1024). So when the matte at
# MATTING_SIDE covers less than this share of the pose stage's person mask (4 of 31 eval
# photos), IS-Net runs again at TRAINED_SIDE and the matte covering more is kept.
DOUBTFUL_COVERAGE = 0.9
# The cutout and clothing mask are worked out on the photo scaled to this long side and only
# the final alpha and mask are scaled back up: the matte has no finer detail than MATTING_SIDE,
# and full-resolution intermediates of a 50 MP photo (region labels, CIELAB floats) took
# gigabytes.
WORKING_SIDE = 2048
# Fast mode's guided filter: window radius as a share of the long side, and its smoothing.
GUIDED_RADIUS = 0.01
GUIDED_EPSILON = 1e-3


@dataclass(frozen=True)
class Matting:
    """Which IS-Net and at what input size (the benchmarks compare others)."""

    side: int = MATTING_SIDE
    model: str = MATTING_MODEL


@dataclass
class Segmentation:
    alpha: np.ndarray  # uint8 (H, W): 0 background .. 255 person
    clothing: Clothing  # its mask at the photo's size, its shares as worked out
    source: str  # "isnet", "pose_mask" or "pose_mask_fitted"


@cache
def matting_session(model: str = MATTING_MODEL) -> onnxruntime.InferenceSession:
    """IS-Net, loaded once per container, at its init (see functions/segment/app.py)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # onnxruntime's arena keeps what a run grew, and grows again on the next: 1.5 GB after one
    # photo and 2.3 GB from the second on with it; 1.3 and 1.55 GB without, and the memory is
    # returned for the full-resolution work that follows.
    options.enable_cpu_mem_arena = False
    # Threads that spin between operators burn a core another instance (or stage) could use;
    # measured no slower alone.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path(model)), options, providers=["CPUExecutionProvider"])


def load_models() -> None:
    matting_session()


def matting_input(image: np.ndarray, side: int) -> np.ndarray:
    """IS-Net's input: the photo squeezed to `side` x `side`, scaled to [0, 1], minus 0.5 (the
    preprocessing of IS-Net's DIS release), as a (1, 3, side, side) batch."""
    square = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    square = square / max(float(square.max()), 1e-6) - 0.5
    return square.transpose(2, 0, 1)[None]


def person_matte(
    image: np.ndarray, side: int = MATTING_SIDE, model: str = MATTING_MODEL
) -> np.ndarray:
    """IS-Net's salient-object matte (uint8, H x W) at the image's resolution, computed at
    `side` x `side` (see matting_input; the output stretched to [0, 1])."""
    height, width = image.shape[:2]
    [prediction] = matting_session(model).run(["output"], {"input": matting_input(image, side)})
    matte = prediction[0, 0]
    low, high = float(matte.min()), float(matte.max())
    matte = (matte - low) / max(high - low, 1e-6)
    matte = cv2.resize(matte, (width, height), interpolation=cv2.INTER_LINEAR)
    return (np.clip(matte, 0, 1) * 255).astype(np.uint8)


def segment_person(
    image: np.ndarray,
    person_mask: np.ndarray,
    keypoints: list[Keypoint],
    face_box: Box | None,
    fast: bool = False,
    matting: Matting = Matting(),
) -> Segmentation:
    """The cutout's alpha and the clothing mask at the photo's resolution, worked out at most
    WORKING_SIDE pixels long (see there). `fast`: the pose stage's person mask fitted to the
    photo's edges instead of IS-Net's matte (see `matting`)."""
    height, width = person_mask.shape
    scale = min(1.0, WORKING_SIDE / max(height, width))
    if scale == 1.0:
        return _segment_working(image, person_mask, keypoints, face_box, fast, matting)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    working = _segment_working(
        cv2.resize(image, size, interpolation=cv2.INTER_AREA),
        cv2.resize(person_mask, size, interpolation=cv2.INTER_NEAREST),
        [replace(k, x=k.x * scale, y=k.y * scale) for k in keypoints],
        _scaled_box(face_box, scale) if face_box else None,
        fast,
        matting,
    )
    alpha = cv2.resize(working.alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    clothing = _upscaled_mask(working.clothing.mask, (width, height)) & (alpha >= 128)
    return Segmentation(alpha, replace(working.clothing, mask=clothing), working.source)


def _segment_working(
    image: np.ndarray,
    person_mask: np.ndarray,
    keypoints: list[Keypoint],
    face_box: Box | None,
    fast: bool,
    matting: Matting,
) -> Segmentation:
    near_person = _near(person_mask > 0)
    if fast:
        alpha, source = _fitted_to_edges(image, person_mask), "pose_mask_fitted"
    else:
        alpha, source = _matte_alpha(image, person_mask, near_person, matting), "isnet"
        if _coverage(alpha, person_mask) < MATTE_MIN_COVERAGE:
            alpha, source = person_mask.astype(np.uint8), "pose_mask"
    # The clothing of the person near the pose stage's mask only (its shares too).
    clothing = find_clothing(image, np.where(near_person, alpha, 0), keypoints, face_box)
    return Segmentation(alpha, clothing, source)


def _fitted_to_edges(image: np.ndarray, person_mask: np.ndarray) -> np.ndarray:
    """The pose stage's coarse person mask fitted to the photo's edges with a guided filter
    (He, Sun and Tang, 2010): the fast mode's alpha, tens of milliseconds instead of IS-Net's
    seconds."""
    guide = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    source = (person_mask > 0).astype(np.float32)
    radius = max(4, round(GUIDED_RADIUS * max(guide.shape)))
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(values: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(values, -1, size)

    mean_guide, mean_source = mean(guide), mean(source)
    variance = mean(guide * guide) - mean_guide * mean_guide
    slope = (mean(guide * source) - mean_guide * mean_source) / (variance + GUIDED_EPSILON)
    offset = mean_source - slope * mean_guide
    alpha = mean(slope) * guide + mean(offset)
    return (np.clip(alpha, 0, 1) * 255).astype(np.uint8)


def _scaled_box(box: Box, scale: float) -> Box:
    left, top = round(box.x * scale), round(box.y * scale)
    right = round((box.x + box.width) * scale)
    bottom = round((box.y + box.height) * scale)
    return Box(left, top, right - left, bottom - top)


def _upscaled_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A boolean mask scaled up to `size` (width, height) with smooth, not blocky, edges."""
    scaled = cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_LINEAR)
    return scaled >= 128


def _near(person: np.ndarray) -> np.ndarray:
    """The person mask grown by 3% of the photo's size: MediaPipe's mask is coarse and misses
    hair, fingers and loose clothing that the matte has."""
    reach = max(3, int(0.03 * max(person.shape)))
    return cv2.dilate(person.astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0


def _matte_alpha(
    image: np.ndarray, person_mask: np.ndarray, near_person: np.ndarray, matting: Matting
) -> np.ndarray:
    """The person's part of IS-Net's matte at `matting.side`, or at TRAINED_SIDE when that
    covers more of a person the first left in doubt (see DOUBTFUL_COVERAGE)."""
    alpha = _person_alpha(person_matte(image, matting.side, matting.model), near_person)
    covered = _coverage(alpha, person_mask)
    if matting.side < TRAINED_SIDE and covered < DOUBTFUL_COVERAGE:
        second = _person_alpha(person_matte(image, TRAINED_SIDE, matting.model), near_person)
        if _coverage(second, person_mask) > covered:
            return second
    return alpha


def _person_alpha(matte: np.ndarray, near_person: np.ndarray) -> np.ndarray:
    """The matte's regions that belong to the person; other salient objects and people
    (even touching ones) are dropped."""
    count, labels = cv2.connectedComponents((matte >= 128).astype(np.uint8))
    # Each region's share on the person, counted for all regions in one pass over the pixels.
    sizes = np.bincount(labels.ravel(), minlength=count)
    on_person = np.bincount(labels[near_person], minlength=count)
    kept_labels = on_person >= PERSON_SHARE * sizes
    kept_labels[0] = False  # label 0 is the matte's background
    keep = kept_labels[labels]
    # Soft edges: keep the matte's partial alpha in a thin band around the kept regions.
    band = cv2.dilate(keep.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return np.where(band & near_person, matte, 0).astype(np.uint8)


def _coverage(alpha: np.ndarray, person_mask: np.ndarray) -> float:
    """The share of the pose stage's person mask that `alpha` holds (1 for an empty mask)."""
    person = person_mask > 0
    return float((alpha[person] >= 128).mean()) if person.any() else 1.0


def cutout_png(image: np.ndarray, alpha: np.ndarray) -> bytes:
    return imaging.encode_png(np.dstack([image, alpha]))
