"""The primary subject as the pose stage recorded it (schema.Person), in the vision code's
terms, for the stages after it; and boxes between the two."""

from __future__ import annotations

from dataclasses import dataclass

from silhouette.schema import BoundingBox, Person, PipelineState, Stage
from silhouette.vision.types import Box, Keypoint


@dataclass(frozen=True)
class Subject:
    keypoints: list[Keypoint]
    bbox: Box
    face_box: Box | None
    confidence: float  # the probability that this is a person (see vision/evidence.py)


def subject(state: PipelineState) -> Subject:
    return subject_of(Person.model_validate(state.stages[Stage.POSE].facts["person"]))


def side_subject(state: PipelineState) -> Subject | None:
    """The subject in a capture's side view, None when there is no side view or nobody in it."""
    side_person = state.stages[Stage.POSE].facts.get("side_person")
    return subject_of(Person.model_validate(side_person)) if side_person else None


def subject_of(person: Person) -> Subject:
    return Subject(
        keypoints=[
            Keypoint(k.name, k.x, k.y, k.nx, k.ny, k.z, k.visibility) for k in person.keypoints
        ],
        bbox=box(person.bbox),
        face_box=box(person.face_box) if person.face_box else None,
        confidence=person.confidence,
    )


def box(found: BoundingBox) -> Box:
    return Box(found.x, found.y, found.width, found.height)


def bounding_box(found: Box) -> BoundingBox:
    return BoundingBox(**found.as_dict())
