"""Pose: the subject's keypoints, box and person mask (vision/pose.py); no person, REJECTED."""

from __future__ import annotations

from silhouette.errors import RejectedInput
from silhouette.names import PERSON_MASK, WORKING_IMAGE
from silhouette.schema import PipelineState, StageResult
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.vision import imaging
from silhouette.vision.model_files import model_version
from silhouette.vision.pose import estimate_pose, to_facts


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    estimate = estimate_pose(image)
    if estimate is None:
        raise RejectedInput("no person detected")
    mask_key = keys.artifact(state.job_id, PERSON_MASK, "png")
    store.put(mask_key, imaging.encode_png(estimate.person_mask), "image/png")
    return StageResult(
        artifacts={PERSON_MASK: mask_key},
        facts={"person": to_facts(estimate)},
        models={
            name: model_version(name)
            for name in ("pose_landmarker", "selfie_segmenter", "face_detector")
        },
    )
