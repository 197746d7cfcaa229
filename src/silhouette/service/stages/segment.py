"""Segment: the subject's cutout and clothing mask (vision/segmentation.py); for a capture with
a side view where the pose stage found the subject, the side view's cutout too (its outline
gives the measurements' depths)."""

from __future__ import annotations

import numpy as np

from silhouette.names import CLOTHING_MASK, CUTOUT, PERSON_MASK, WORKING_PIXELS, of_view
from silhouette.schema import PipelineState, StageResult, View
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import Subject, side_subject, subject
from silhouette.vision import imaging
from silhouette.vision.model_files import model_version
from silhouette.vision.segmentation import Segmentation, cutout_png, segment_person


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    image = imaging.decode(store.get(state.artifact(WORKING_PIXELS)))
    result = _segmented(state, store, image, PERSON_MASK, subject(state))
    cutout_key = keys.artifact(state.job_id, CUTOUT, "png")
    clothing_key = keys.artifact(state.job_id, CLOTHING_MASK, "png")
    store.put(cutout_key, cutout_png(image, result.alpha), "image/png")
    clothing_png = imaging.encode_png(result.clothing.mask.astype(np.uint8) * 255)
    store.put(clothing_key, clothing_png, "image/png")
    artifacts = {CUTOUT: cutout_key, CLOTHING_MASK: clothing_key}
    sources = {result.source}
    if side_person := side_subject(state):
        side_image = imaging.decode(store.get(state.artifact(of_view(WORKING_PIXELS, View.SIDE))))
        side = _segmented(state, store, side_image, of_view(PERSON_MASK, View.SIDE), side_person)
        side_cutout = of_view(CUTOUT, View.SIDE)
        artifacts[side_cutout] = keys.artifact(state.job_id, side_cutout, "png")
        store.put(artifacts[side_cutout], cutout_png(side_image, side.alpha), "image/png")
        sources.add(side.source)
    return StageResult(
        artifacts=artifacts,
        facts={"clothing": result.clothing.facts()},
        models={"isnet": model_version("isnet")} if "isnet" in sources else {},
    )


def _segmented(
    state: PipelineState, store: ArtifactStore, image: np.ndarray, mask: str, person: Subject
) -> Segmentation:
    person_mask = imaging.decode(store.get(state.artifact(mask)))
    fast = state.options.quality == "fast"
    return segment_person(image, person_mask, person.keypoints, person.face_box, fast)
