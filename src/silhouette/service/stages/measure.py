"""Measure: body measurements (vision/measurements.py) from the cutouts and keypoints of the
front view and, for a capture, the side view; scaled by an ID-1 card in the front view (the
colors stage found it) or by the stated height."""

from __future__ import annotations

import numpy as np

from silhouette.names import CUTOUT, of_view
from silhouette.schema import (
    BodyMeasurements,
    Calibration,
    MeasuredLine,
    Measurement,
    PipelineState,
    Scale,
    Stage,
    StageResult,
    View,
)
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import side_subject, subject
from silhouette.vision import imaging
from silhouette.vision import measurements as body


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    front = _front_view(state, store)
    side = None
    if side_person := side_subject(state):
        side_mask = _silhouette(store, state.artifact(of_view(CUTOUT, View.SIDE)))
        side = body.BodyView(side_mask, side_person.keypoints)
    measured = body.measure_body(front, side, state.options.height_cm)
    return StageResult(facts={"measurements": measurements_of(measured).model_dump(mode="json")})


def _front_view(state: PipelineState, store: ArtifactStore) -> body.BodyView:
    """The front view, scaled by the card in it when there is one."""
    mask = _silhouette(store, state.artifact(CUTOUT))
    keypoints = subject(state).keypoints
    calibration = Calibration.model_validate(state.stages[Stage.COLORS].facts["calibration"])
    if calibration.card is None:
        return body.BodyView(mask, keypoints)
    card_centre_y = float(np.mean([y for _, y in calibration.card.corners]))
    scale = body.scale_from_card(calibration.card.mm_per_px, card_centre_y, keypoints)
    return body.BodyView(mask, keypoints, scale.cm_per_px, scale.relative_error, "card")


def _silhouette(store: ArtifactStore, cutout_key: str) -> np.ndarray:
    """The person in a cutout: its alpha, at least half opaque."""
    return imaging.decode(store.get(cutout_key))[..., 3] >= 128


def measurements_of(measured: body.BodyMeasurements) -> BodyMeasurements:
    """The result's `measurements`."""
    values = {item.name: _measurement(item) for item in measured.measurements}
    found = any(value.status == "ok" for value in values.values())
    return BodyMeasurements(
        status="ok" if found else "unknown",
        reason=None if found else "nothing could be measured: " + _first_reason(values),
        scale=_scale(measured.scale),
        side_scale=_scale(measured.side_scale),
        values=values,
        confidence=round(measured.confidence, 3),
        notes=list(measured.notes),
    )


def _measurement(item: body.Measurement) -> Measurement:
    return Measurement(
        status=item.status,
        value_cm=_rounded(item.value_cm, 1),
        error_cm=_rounded(item.error_cm, 1),
        value_px=_rounded(item.value_px, 1),
        error_px=_rounded(item.error_px, 1),
        reason=item.reason or None,
        method=item.method,
        lines=[
            MeasuredLine(
                view=View(line.view),
                start=(round(line.start[0], 1), round(line.start[1], 1)),
                end=(round(line.end[0], 1), round(line.end[1], 1)),
            )
            for line in item.lines
        ],
    )


def _scale(scale: body.Scale | None) -> Scale | None:
    if scale is None:
        return None
    return Scale(
        source=scale.source,
        cm_per_px=round(scale.cm_per_px, 5),
        relative_error=round(scale.relative_error, 4),
        notes=list(scale.notes),
    )


def _first_reason(values: dict[str, Measurement]) -> str:
    return next((value.reason for value in values.values() if value.reason), "unknown")


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
