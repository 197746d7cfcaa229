"""Pose: the subject's keypoints, box and person mask (vision/pose.py); no person, REJECTED."""

from __future__ import annotations

from silhouette.errors import RejectedInput
from silhouette.names import PERSON_MASK, WORKING_IMAGE
from silhouette.schema import (
    Keypoint,
    Person,
    PersonEvidence,
    PipelineState,
    StageResult,
)
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import bounding_box
from silhouette.vision import imaging
from silhouette.vision.model_files import model_version
from silhouette.vision.pose import estimate_pose
from silhouette.vision.types import PoseEstimate, framing


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    estimate = estimate_pose(image)
    if estimate is None:
        raise RejectedInput("no person detected")
    mask_key = keys.artifact(state.job_id, PERSON_MASK, "png")
    store.put(mask_key, imaging.encode_png(estimate.person_mask), "image/png")
    return StageResult(
        artifacts={PERSON_MASK: mask_key},
        facts={"person": person_of(estimate).model_dump(mode="json")},
        models={
            name: model_version(name)
            for name in ("pose_landmarker", "selfie_segmenter", "face_detector")
        },
    )


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
