"""Colors: the clothing's dominant colours (vision/colors.py)."""

from __future__ import annotations

from silhouette.names import CLOTHING_MASK, WORKING_IMAGE
from silhouette.schema import Colour, PipelineState, Stage, StageResult
from silhouette.service.storage import ArtifactStore
from silhouette.vision import imaging
from silhouette.vision.colors import dominant_colors
from silhouette.vision.types import DominantColor


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    """Dominant colours of the clothing. When segment found too little clothing, none, and its
    reason as `colors_note`: the colours of what is left would be hair, skin or background."""
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    clothing = imaging.decode(store.get(state.artifact(CLOTHING_MASK))) > 0
    note = state.stages[Stage.SEGMENT].facts.get("clothing", {}).get("reason")
    colors = [] if note else dominant_colors(image, clothing)
    found = [colour_of(color).model_dump(mode="json") for color in colors]
    return StageResult(facts={"colors": found, "colors_note": note})


def colour_of(color: DominantColor) -> Colour:
    return Colour(hex=color.hex, rgb=color.rgb, fraction=round(color.fraction, 4), name=color.name)
