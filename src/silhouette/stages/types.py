"""Geometry and results the vision stages share (plain data, pixel coordinates)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    def intersection(self, other: Box) -> int:
        """The area the two boxes share, in pixels."""
        width = min(self.x + self.width, other.x + other.width) - max(self.x, other.x)
        height = min(self.y + self.height, other.y + other.height) - max(self.y, other.y)
        return max(0, width) * max(0, height)


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


@dataclass
class PoseEstimate:
    """The primary subject: keypoints, bounding box, detection confidence, how many people the
    photo shows, a person mask (H, W uint8, 255 = person) and the face box when found."""

    keypoints: list[Keypoint]
    bbox: Box
    confidence: float
    person_count: int
    person_mask: np.ndarray
    face_box: Box | None


@dataclass(frozen=True)
class DominantColor:
    """A clothing colour and its share of the clothing pixels."""

    hex: str  # "#rrggbb"
    rgb: tuple[int, int, int]
    fraction: float  # 0..1
    name: str  # nearest CSS named colour
