"""Geometry and results the vision stages share (plain data, pixel coordinates)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from silhouette.schema import Framing

if TYPE_CHECKING:
    from silhouette.vision.evidence import Evidence

# MediaPipe's 33 pose landmarks, in the model's output order.
LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def slices(self) -> tuple[slice, slice]:
        """Index an (H, W, ...) array with these to get the box's pixels."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)

    def grown(self, margin: float, width: int, height: int) -> Box:
        """This box with `margin` times its width and height added on every side, clipped to
        a `width` x `height` image."""
        left = max(0, int(self.x - margin * self.width))
        top = max(0, int(self.y - margin * self.height))
        right = min(width, math.ceil(self.x + (1 + margin) * self.width))
        bottom = min(height, math.ceil(self.y + (1 + margin) * self.height))
        return Box(left, top, max(0, right - left), max(0, bottom - top))

    def intersection(self, other: Box) -> int:
        """The area the two boxes share, in pixels."""
        width = min(self.x + self.width, other.x + other.width) - max(self.x, other.x)
        height = min(self.y + self.height, other.y + other.height) - max(self.y, other.y)
        return max(0, width) * max(0, height)

    def iou(self, other: Box) -> float:
        """Intersection over union."""
        shared = self.intersection(other)
        union = self.area + other.area - shared
        return shared / union if union else 0.0


# Below this visibility MediaPipe is guessing a landmark (occluded or out of frame).
VISIBLE = 0.5
# How much of the body a photo shows, from the landmarks that are seen inside it. Feet count
# only when seen more surely than VISIBLE: MediaPipe guesses feet hidden under a table at
# 0.4-0.5, and sees real ones at 0.8 or more (labelled set). A photo that ends most of the way
# down the torso (the waist) shows the upper body even with the hips just out of frame; a
# head-and-shoulders portrait ends within the top 40% of it.
FEET_VISIBLE = 0.65
UPPER_BODY_TORSO = 0.6


@dataclass(frozen=True)
class Keypoint:
    """One of MediaPipe's 33 pose landmarks: pixel and normalised position, depth, visibility."""

    name: str
    x: float
    y: float
    nx: float
    ny: float
    z: float
    visibility: float

    @property
    def in_frame(self) -> bool:
        """MediaPipe places landmarks beyond the photo's edges too (a guess at the body)."""
        return 0.0 <= self.nx <= 1.0 and 0.0 <= self.ny <= 1.0

    @property
    def usable(self) -> bool:
        """Seen and inside the photo: what the overlay draws and later stages rely on."""
        return self.in_frame and self.visibility >= VISIBLE


def head_size(keypoints: list[Keypoint]) -> float:
    """About a head's height in pixels: from the ears' distance, or half the shoulders' width
    (whichever is larger: a face turned sideways brings the ears together)."""
    points = {point.name: point for point in keypoints}

    def distance(a: str, b: str) -> float:
        return math.hypot(points[a].x - points[b].x, points[a].y - points[b].y)

    ears, shoulders = distance("left_ear", "right_ear"), distance("left_shoulder", "right_shoulder")
    return max(1.5 * ears, 0.5 * shoulders, 8.0)


def framing(keypoints: list[Keypoint]) -> Framing:
    """The lowest part of the body that is seen: feet, hips (or most of the way down to them),
    shoulders, or only the face."""
    seen = {point.name.split("_", 1)[-1] for point in keypoints if point.usable}
    feet = [p for p in keypoints if p.name.split("_", 1)[-1] in {"ankle", "heel", "foot_index"}]
    if any(p.usable and p.visibility >= FEET_VISIBLE for p in feet):
        return "full_body"
    if "hip" in seen or _torso_in_view(keypoints) >= UPPER_BODY_TORSO:
        return "upper_body"
    if "shoulder" in seen:
        return "head_and_shoulders"
    return "face_only"


def _torso_in_view(keypoints: list[Keypoint]) -> float:
    """How far the photo reaches from the shoulders towards the hips (1 = down to the hips),
    with the hips where MediaPipe places them even beyond the photo's bottom edge."""
    points = {point.name: point for point in keypoints}
    shoulders = (points["left_shoulder"].ny + points["right_shoulder"].ny) / 2
    hips = (points["left_hip"].ny + points["right_hip"].ny) / 2
    if hips <= shoulders:  # lying down or upside down: the rule does not apply
        return 0.0
    return (1.0 - shoulders) / (hips - shoulders)


@dataclass
class PoseEstimate:
    """The primary subject: keypoints, bounding box, the probability that it is a person and
    the evidence for it, how many people the photo shows and how many of them overlap the
    subject, a person mask (H, W uint8, 255 = person) and the face box when found."""

    keypoints: list[Keypoint]
    bbox: Box
    confidence: float
    evidence: Evidence
    person_count: int
    overlapping_people: int
    person_mask: np.ndarray
    face_box: Box | None


@dataclass(frozen=True)
class DominantColor:
    """A clothing colour and its share of the clothing pixels."""

    hex: str  # "#rrggbb"
    rgb: tuple[int, int, int]
    fraction: float  # 0..1
    name: str  # nearest CSS named colour
