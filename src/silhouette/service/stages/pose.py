"""Pose: the subject's keypoints, box and person mask (vision/pose.py); no person, REJECTED.
A capture's side view is searched too."""

from __future__ import annotations

from silhouette.errors import RejectedInput
from silhouette.names import PERSON_MASK, WORKING_PIXELS, of_view
from silhouette.schema import (
    Keypoint,
    Person,
    PersonEvidence,
    PipelineState,
    StageResult,
    View,
)
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import bounding_box
from silhouette.vision import imaging
from silhouette.vision.model_files import model_version
from silhouette.vision.pose import estimate_pose
from silhouette.vision.types import PoseEstimate, framing


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    """The subject in the photo (none: REJECTED) and, for a capture with a side view, in that
    view too (none there: `side_person` null, and the measurements say why)."""
    estimate = _estimate(state, store, WORKING_PIXELS)
    if estimate is None:
        raise RejectedInput("no person detected")
    artifacts = {PERSON_MASK: _put_mask(state, store, PERSON_MASK, estimate)}
    side_person = None
    if View.SIDE in state.views:
        side = _estimate(state, store, of_view(WORKING_PIXELS, View.SIDE))
        if side is not None:
            name = of_view(PERSON_MASK, View.SIDE)
            artifacts[name] = _put_mask(state, store, name, side)
            side_person = person_of(side).model_dump(mode="json")
    return StageResult(
        artifacts=artifacts,
        facts={"person": person_of(estimate).model_dump(mode="json"), "side_person": side_person},
        models={
            name: model_version(name)
            for name in ("pose_landmarker", "selfie_segmenter", "face_detector")
        },
    )


def _estimate(state: PipelineState, store: ArtifactStore, image: str) -> PoseEstimate | None:
    return estimate_pose(imaging.decode(store.get(state.artifact(image))))


def _put_mask(state: PipelineState, store: ArtifactStore, name: str, estimate: PoseEstimate) -> str:
    key = keys.artifact(state.job_id, name, "png")
    store.put(key, imaging.encode_png(estimate.person_mask), "image/png")
    return key


def person_of(estimate: PoseEstimate) -> Person:
    """The result's `person`: keypoints in pixels and normalised, box, confidence, counts."""
    return Person(
        keypoints=[
            Keypoint(
                name=k.name,
                x=round(k.x, 1),
                y=round(k.y, 1),
                nx=round(k.nx, 4),
                ny=round(k.ny, 4),
                z=round(k.z, 4),
                visibility=round(k.visibility, 3),
                in_frame=k.in_frame,
            )
            for k in estimate.keypoints
        ],
        framing=framing(estimate.keypoints),
        bbox=bounding_box(estimate.bbox),
        confidence=round(estimate.confidence, 3),
        evidence=PersonEvidence(
            **{name: round(value, 3) for name, value in estimate.evidence.features().items()}
        ),
        person_count=estimate.person_count,
        overlapping_people=estimate.overlapping_people,
        face_box=bounding_box(estimate.face_box) if estimate.face_box else None,
    )
