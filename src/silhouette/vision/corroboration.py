"""Gathers the evidence that a pose hit is a person (see evidence.py for what it means and how
it becomes a probability): MediaPipe's selfie segmenter on the hit's crop, the face detector at
its head, the keypoints it sees."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import cv2
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

from silhouette.vision import imaging
from silhouette.vision.evidence import Evidence
from silhouette.vision.face import detect_faces, mp_image
from silhouette.vision.model_files import model_path
from silhouette.vision.types import Box, Keypoint, head_size

# The hit's person mask over a box of the photo at a size (width, height): uint8, 255 = person.
MaskOn = Callable[[Box, tuple[int, int]], np.ndarray]
# The selfie segmenter sees its crop at 256 px; more pixels only cost time.
SEGMENTER_SIDE = 256
# The hit's box grown by this share on every side: the segmenter needs some background to
# separate a person from it.
CROP_MARGIN = 0.25
# A face at the head is searched in a square this many head sizes wide around the nose, padded
# with grey so that a face filling the photo is still small enough for the detector.
HEAD_CROP_HEADS, HEAD_CROP_PADDING = 3.0, 0.5


def load_models() -> None:
    _segmenter()


@cache
def _segmenter() -> vision.ImageSegmenter:
    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(model_path("selfie_segmenter"))),
        running_mode=vision.RunningMode.IMAGE,
        output_confidence_masks=True,
        output_category_mask=False,
    )
    return vision.ImageSegmenter.create_from_options(options)


def gather(
    image: np.ndarray,
    bbox: Box,
    pose_mask_on: MaskOn,
    keypoints: list[Keypoint],
    presence: float,
    face_confidence: float,
) -> Evidence:
    """The evidence for one pose hit. `pose_mask_on(box, size)` gives the hit's person mask
    (uint8, 255 = person) over `box` of the photo at `size` (width, height); `face_confidence`
    is the best face the photo-wide search found at this hit's head (0 when none)."""
    return Evidence(
        agreement=_agreement(image, bbox, pose_mask_on),
        face=face_confidence or _face_at_head(image, keypoints),
        torso=_torso_seen(keypoints),
        presence=presence,
    )


def _agreement(image: np.ndarray, bbox: Box, pose_mask_on: MaskOn) -> float:
    height, width = image.shape[:2]
    crop = bbox.grown(CROP_MARGIN, width, height)
    if crop.width < 2 or crop.height < 2:
        return 0.0
    scale = min(1.0, SEGMENTER_SIDE / max(crop.width, crop.height))
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    small = cv2.resize(image[crop.slices], size, interpolation=cv2.INTER_AREA)
    result = _segmenter().segment(mp_image(small))
    selfie = result.confidence_masks[-1].numpy_view()
    selfie = selfie[..., 0] if selfie.ndim == 3 else selfie
    person = pose_mask_on(crop, size) >= 128
    if not person.any():
        return 0.0
    return float((selfie[person] >= 0.5).mean())


def _face_at_head(image: np.ndarray, keypoints: list[Keypoint]) -> float:
    """The best face score in a padded square around the hit's nose."""
    height, width = image.shape[:2]
    points = {k.name: k for k in keypoints}
    nose = points["nose"]
    if not (0 <= nose.x < width and 0 <= nose.y < height):
        return 0.0
    half = HEAD_CROP_HEADS * head_size(keypoints) / 2
    left, top = max(0, int(nose.x - half)), max(0, int(nose.y - half))
    right, bottom = min(width, int(nose.x + half)), min(height, int(nose.y + half))
    if right - left < 4 or bottom - top < 4:
        return 0.0
    head = image[top:bottom, left:right]
    border = int(HEAD_CROP_PADDING * max(head.shape[:2]))
    return max(
        (face.confidence for face in detect_faces(imaging.padded(head, border))), default=0.0
    )


def _torso_seen(keypoints: list[Keypoint]) -> bool:
    usable = {k.name for k in keypoints if k.usable}
    shoulders = {"left_shoulder", "right_shoulder"} <= usable
    return shoulders and bool({"left_hip", "right_hip"} & usable)
