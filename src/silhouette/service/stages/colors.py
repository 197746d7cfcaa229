"""Colors: the photo's colour calibration (vision/calibration.py) and the clothing's dominant
colours (vision/colors.py).

The white balance comes from a reference in the light: a colour chart or an ID-1 card's white,
in a capture's card view or in the photo; else a grey-world estimate, flagged. Clothing colours
are corrected only by a reference: a grey-world guess about a scene is no measurement of it.
An ID-1 card in the photo itself also gives the measurements their scale (its plane only)."""

from __future__ import annotations

import numpy as np

from silhouette.names import CLOTHING_MASK, WORKING_PIXELS, of_view
from silhouette.schema import (
    Calibration,
    CardFound,
    Colour,
    PipelineState,
    Stage,
    StageResult,
    View,
)
from silhouette.service.storage import ArtifactStore
from silhouette.vision import imaging
from silhouette.vision.calibration import (
    CardDetection,
    ColourCalibration,
    apply,
    calibrate,
    find_card,
    grey_world,
)
from silhouette.vision.colors import dominant_colors
from silhouette.vision.types import DominantColor


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    """Dominant colours of the clothing. When segment found too little clothing, none, and its
    reason as `colors_note`: the colours of what is left would be hair, skin or background."""
    image = imaging.decode(store.get(state.artifact(WORKING_PIXELS)))
    card_view = None
    if View.CARD in state.views:
        card_view = imaging.decode(store.get(state.artifact(of_view(WORKING_PIXELS, View.CARD))))
    # A reference is looked for where one is likely and useful: in a capture, or a photo taken
    # to be measured (a card in it is also the scale).
    searched = bool(state.views) or state.options.measurements
    calibration = calibrate(image, card_view) if searched else grey_world(image)
    clothing = imaging.decode(store.get(state.artifact(CLOTHING_MASK))) > 0
    note = state.stages[Stage.SEGMENT].facts.get("clothing", {}).get("reason")
    colors = [] if note else dominant_colors(_corrected(image, calibration), clothing)
    found = [colour_of(color).model_dump(mode="json") for color in colors]
    return StageResult(
        facts={
            "calibration": calibration_of(
                calibration, _card_in_photo(image, calibration, searched)
            ).model_dump(mode="json"),
            "colors": found,
            "colors_note": note,
        }
    )


def _corrected(image: np.ndarray, calibration: ColourCalibration) -> np.ndarray:
    return image if calibration.estimated else apply(image, calibration)


def _card_in_photo(
    image: np.ndarray, calibration: ColourCalibration, searched: bool
) -> CardDetection | None:
    """The card in the photo (the front view), whose plane the measurements can be scaled in.
    The calibration searched the photo for a card unless it stopped at a colour chart or at a
    card in the card view: only then is the photo searched again."""
    if calibration.card is not None and calibration.found_in == "image":
        return calibration.card
    photo_searched = calibration.source == "grey_world" and calibration.found_in != "reference"
    if not searched or photo_searched:
        return None
    return find_card(image)


def calibration_of(calibration: ColourCalibration, card: CardDetection | None) -> Calibration:
    """The result's `calibration`."""
    found_in = {"image": View.FRONT, "reference": View.CARD, None: None}[calibration.found_in]
    return Calibration(
        source=calibration.source,
        estimated=calibration.estimated,
        found_in=found_in,
        white_before_lab=tuple(round(float(v), 2) for v in calibration.white_before_lab),
        white_shift_delta_e=round(calibration.white_shift_delta_e, 2),
        cct_before_k=round(calibration.cct_before_k) if calibration.cct_before_k else None,
        residual_delta_e=(
            round(calibration.residual_delta_e, 2)
            if calibration.residual_delta_e is not None
            else None
        ),
        matrix=[[round(float(v), 5) for v in row] for row in calibration.matrix],
        applied_to=["skin"] if calibration.estimated else ["skin", "colors"],
        card=None if card is None else card_of(card),
    )


def card_of(card: CardDetection) -> CardFound:
    return CardFound(
        view=View.FRONT,
        corners=[(round(float(x), 1), round(float(y), 1)) for x, y in card.corners],
        mm_per_px=round(card.mm_per_px, 5),
        fit_error_px=round(card.fit_error_px, 2),
    )


def colour_of(color: DominantColor) -> Colour:
    return Colour(hex=color.hex, rgb=color.rgb, fraction=round(color.fraction, 4), name=color.name)
