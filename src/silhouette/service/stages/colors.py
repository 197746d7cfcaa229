"""Colors: the clothing's dominant colours (vision/colors.py) and the overlay that shows them
with the pose (vision/overlay.py)."""

from __future__ import annotations

from silhouette.names import CLOTHING_MASK, OVERLAY, WORKING_IMAGE
from silhouette.schema import PipelineState, Stage, StageResult
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import subject
from silhouette.vision import imaging
from silhouette.vision.colors import dominant_colors, to_facts
from silhouette.vision.overlay import render_overlay


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    """Dominant colours of the clothing, and the overlay that shows them with the pose. When
    segment found too little clothing, no colours and its reason as `colors_note`: the colours
    of what is left would be hair, skin or background."""
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    clothing = imaging.decode(store.get(state.artifact(CLOTHING_MASK))) > 0
    note = state.stages[Stage.SEGMENT].facts.get("clothing", {}).get("reason")
    colors = [] if note else dominant_colors(image, clothing)
    person = subject(state)
    overlay_key = keys.artifact(state.job_id, OVERLAY, "jpg")
    overlay = render_overlay(
        image,
        person.keypoints,
        person.bbox,
        colors,
        person.face_box,
        clothing_mask=clothing,
        confidence=person.confidence,
        colors_note=note,
    )
    store.put(overlay_key, overlay, "image/jpeg")
    return StageResult(
        artifacts={OVERLAY: overlay_key},
        facts={"colors": to_facts(colors), "colors_note": note},
    )
