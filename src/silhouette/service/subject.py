"""The primary subject as the pose stage recorded it (see pose.to_facts), for later stages."""

from __future__ import annotations

from dataclasses import dataclass

from silhouette.schema import PipelineState, Stage
from silhouette.vision.types import KEYPOINT_FIELDS, Box, Keypoint


@dataclass(frozen=True)
class Subject:
    keypoints: list[Keypoint]
    bbox: Box
    face_box: Box | None
    confidence: float  # the probability that this is a person (see evidence.py)


def subject(state: PipelineState) -> Subject:
    person = state.stages[Stage.POSE].facts["person"]
    return Subject(
        keypoints=[
            Keypoint(**{field: point[field] for field in KEYPOINT_FIELDS})
            for point in person["keypoints"]
        ],
        bbox=Box(**person["bbox"]),
        face_box=Box(**person["face_box"]) if person.get("face_box") else None,
        confidence=person["confidence"],
    )
