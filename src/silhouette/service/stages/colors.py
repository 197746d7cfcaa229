"""Colors: the clothing's dominant colours (vision/colors.py)."""

from __future__ import annotations

from silhouette.names import CLOTHING_MASK, WORKING_IMAGE
from silhouette.schema import PipelineState, Stage, StageResult
from silhouette.service.storage import ArtifactStore
from silhouette.vision import imaging
from silhouette.vision.colors import dominant_colors, to_facts


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    """Dominant colours of the clothing. When segment found too little clothing, none, and its
    reason as `colors_note`: the colours of what is left would be hair, skin or background."""
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    clothing = imaging.decode(store.get(state.artifact(CLOTHING_MASK))) > 0
    note = state.stages[Stage.SEGMENT].facts.get("clothing", {}).get("reason")
    colors = [] if note else dominant_colors(image, clothing)
    return StageResult(facts={"colors": to_facts(colors), "colors_note": note})
