"""Overlay: the photo with what every stage before it found (vision/overlay.py): the clothing
mask, the skeleton, the person and face boxes, the colours or why there are none, and how sure
the person is; and, when the body was measured, a second picture of the measured lines and
values (vision/measurement_picture.py)."""

from __future__ import annotations

import numpy as np

from silhouette.names import CLOTHING_MASK, MEASUREMENT_PICTURE, OVERLAY, WORKING_PIXELS, of_view
from silhouette.schema import (
    BodyMeasurements,
    Colour,
    Face,
    Measurement,
    PipelineState,
    Stage,
    StageResult,
    View,
)
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import box, side_subject, subject
from silhouette.vision import imaging
from silhouette.vision.measurement_picture import (
    MeasuredSegment,
    MeasurementRow,
    PictureView,
    render_measurements,
)
from silhouette.vision.overlay import render_overlay
from silhouette.vision.types import Box, DominantColor

# Room around the person in the measurements picture, as a share of the person's box.
PERSON_MARGIN = 0.08


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    image = imaging.decode(store.get(state.artifact(WORKING_PIXELS)))
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
    artifacts = {OVERLAY: key}
    if Stage.MEASURE in state.stages:
        measured = BodyMeasurements.model_validate(
            state.stages[Stage.MEASURE].facts["measurements"]
        )
        if measured.status == "ok":
            views = {View.FRONT.value: _shown(image, person.bbox)}
            if side_person := side_subject(state):
                side = state.artifact(of_view(WORKING_PIXELS, View.SIDE))
                views[View.SIDE.value] = _shown(imaging.decode(store.get(side)), side_person.bbox)
            picture = render_measurements(views, _rows(measured), _summary(measured))
            artifacts[MEASUREMENT_PICTURE] = keys.artifact(state.job_id, MEASUREMENT_PICTURE, "jpg")
            store.put(artifacts[MEASUREMENT_PICTURE], picture, "image/jpeg")
    return StageResult(artifacts=artifacts)


def _shown(image: np.ndarray, person: Box) -> PictureView:
    """The photo cut to the person, with room around for the lines' ends."""
    height, width = image.shape[:2]
    return PictureView(image, person.grown(PERSON_MARGIN, width, height))


def _rows(measured: BodyMeasurements) -> list[MeasurementRow]:
    return [
        MeasurementRow(
            name=name,
            value=measurement_text(value),
            measured=value.status == "ok",
            segments=tuple(
                MeasuredSegment(line.view.value, line.start, line.end) for line in value.lines
            ),
        )
        for name, value in measured.values.items()
    ]


def measurement_text(value: Measurement) -> str:
    """ "84.3 ± 4.0 cm", or why there is no value."""
    if value.status == "ok" and value.value_cm is not None:
        return f"{value.value_cm:.1f} ± {value.error_cm or 0:.1f} cm"
    if value.value_px is not None:
        return f"{value.value_px:.0f} px (no scale)"
    return value.reason or "missing"


def _summary(measured: BodyMeasurements) -> str:
    scale = measured.scale
    basis = (
        f"scale from the {scale.source} (± {scale.relative_error:.1%})"
        if scale is not None
        else "no scale: values in pixels"
    )
    return f"{basis}; confidence {measured.confidence or 0:.0%}"


def _face_label(face: Face) -> str:
    """ "face", with the age range and sex the face stage could read."""
    parts = ["face"]
    if face.age is not None and face.age.range is not None:
        low, high = face.age.range
        parts.append(f"{low}-{high}")
    if face.sex is not None and face.sex.value != "unknown":
        parts.append(face.sex.value)
    return " ".join(parts)
