"""Segment: the subject's cutout and clothing mask (vision/segmentation.py)."""

from __future__ import annotations

import numpy as np

from silhouette.names import CLOTHING_MASK, CUTOUT, PERSON_MASK, WORKING_IMAGE
from silhouette.schema import PipelineState, StageResult
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import subject
from silhouette.vision import imaging
from silhouette.vision.model_files import model_version
from silhouette.vision.segmentation import cutout_png, segment_person


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    person_mask = imaging.decode(store.get(state.artifact(PERSON_MASK)))
    person = subject(state)
    fast = state.options.quality == "fast"
    result = segment_person(image, person_mask, person.keypoints, person.face_box, fast)
    cutout_key = keys.artifact(state.job_id, CUTOUT, "png")
    clothing_key = keys.artifact(state.job_id, CLOTHING_MASK, "png")
    store.put(cutout_key, cutout_png(image, result.alpha), "image/png")
    clothing_png = imaging.encode_png(result.clothing.mask.astype(np.uint8) * 255)
    store.put(clothing_key, clothing_png, "image/png")
    return StageResult(
        artifacts={CUTOUT: cutout_key, CLOTHING_MASK: clothing_key},
        facts={"clothing": result.clothing.facts()},
        models={"isnet": model_version("isnet")} if result.source == "isnet" else {},
    )
