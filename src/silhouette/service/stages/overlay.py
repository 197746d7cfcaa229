"""Overlay: the photo with what every stage before it found (vision/overlay.py): the clothing
mask, the skeleton, the person and face boxes, the colours or why there are none, and how sure
the person is."""

from __future__ import annotations

from silhouette.names import CLOTHING_MASK, OVERLAY, WORKING_IMAGE
from silhouette.schema import Colour, Face, PipelineState, Stage, StageResult
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import box, subject
from silhouette.vision import imaging
from silhouette.vision.overlay import render_overlay
from silhouette.vision.types import DominantColor


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    clothing = imaging.decode(store.get(state.artifact(CLOTHING_MASK))) > 0
    found = state.stages[Stage.COLORS].facts
    colors = [
        DominantColor(colour.hex, colour.rgb, colour.fraction, colour.name)
        for colour in map(Colour.model_validate, found["colors"])
    ]
    person = subject(state)
    face_box, face_label = person.face_box, "face"
    if Stage.FACE in state.stages:
        face = Face.model_validate(state.stages[Stage.FACE].facts["face"])
        if face.status == "ok" and face.box is not None:
            face_box, face_label = box(face.box), _face_label(face)
    overlay = render_overlay(
        image,
        person.keypoints,
        person.bbox,
        colors,
        face_box,
        clothing_mask=clothing,
        confidence=person.confidence,
        colors_note=found.get("colors_note"),
        face_label=face_label,
    )
    key = keys.artifact(state.job_id, OVERLAY, "jpg")
    store.put(key, overlay, "image/jpeg")
    return StageResult(artifacts={OVERLAY: key})


def _face_label(face: Face) -> str:
    """ "face", with the age range and sex the face stage could read."""
    parts = ["face"]
    if face.age is not None and face.age.range is not None:
        low, high = face.age.range
        parts.append(f"{low}-{high}")
    if face.sex is not None and face.sex.value != "unknown":
        parts.append(face.sex.value)
    return " ".join(parts)
