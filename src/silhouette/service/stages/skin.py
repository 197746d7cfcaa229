"""Skin: the skin tone of the subject's face (vision/skin.py), read in a capture's portrait when
there is one (a closer face), else in the photo; through the colour correction the colors
stage settled on (calibration), flagged when that was only a grey-world guess."""

from __future__ import annotations

from functools import partial

import numpy as np

from silhouette.names import WORKING_PIXELS, of_view
from silhouette.schema import Calibration, PipelineState, SkinTone, Stage, StageResult, View
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import subject
from silhouette.vision import imaging
from silhouette.vision.calibration import correct_with_matrix
from silhouette.vision.face import FaceDetection, detect_face
from silhouette.vision.model_files import model_version
from silhouette.vision.pose import find_faces
from silhouette.vision.skin import SkinTone as Reading
from silhouette.vision.skin import skin_tone


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    calibration = Calibration.model_validate(state.stages[Stage.COLORS].facts["calibration"])
    correct = partial(correct_with_matrix, matrix=calibration.matrix)
    if View.PORTRAIT in state.views:
        view = View.PORTRAIT
        image = imaging.decode(store.get(state.artifact(of_view(WORKING_PIXELS, view))))
        reading = skin_tone(image, _largest_face(image), None, correct, calibration.estimated)
    else:
        view, person = View.FRONT, subject(state)
        image = imaging.decode(store.get(state.artifact(WORKING_PIXELS)))
        face = detect_face(image, hint=person.face_box or person.bbox)
        reading = skin_tone(image, face, person.keypoints, correct, calibration.estimated)
    return StageResult(
        facts={"skin": skin_of(reading, view).model_dump(mode="json")},
        models={"face_detector": model_version("face_detector")},
    )


def _largest_face(image: np.ndarray) -> FaceDetection | None:
    """The portrait's face: searched for padded too, as a face filling the photo is missed
    otherwise, then detected again around it for precise keypoints."""
    faces = find_faces(image)
    if not faces:
        return None
    largest = max(faces, key=lambda face: face.box.area)
    return detect_face(image, hint=largest.box) or largest


def skin_of(reading: Reading, view: View) -> SkinTone:
    """The result's `skin`, rounded to what the measurement can tell apart."""
    if reading.status == "unknown":
        return SkinTone(status="unknown", reason=reading.reason, view=view)
    assert reading.lab is not None and reading.ita_degrees is not None
    return SkinTone(
        status="ok",
        view=view,
        lab=(round(reading.lab[0], 1), round(reading.lab[1], 1), round(reading.lab[2], 1)),
        ita_degrees=round(reading.ita_degrees, 1),
        ita_category=reading.ita_category,
        monk=reading.monk,
        monk_hex=reading.monk_hex,
        monk_delta_e=round(reading.monk_delta_e or 0.0, 2),
        hue_angle=round(reading.hue_angle or 0.0, 1),
        undertone=reading.undertone,
        patch_count=reading.patch_count,
        pixel_count=reading.pixel_count,
        confidence=round(reading.confidence, 3),
        notes=list(reading.notes),
    )
