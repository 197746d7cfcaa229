"""Face: age and sex of the subject's face (vision/face.py)."""

from __future__ import annotations

from silhouette.names import FACE_CROP, WORKING_PIXELS
from silhouette.schema import AgeEstimate, Face, PipelineState, SexEstimate, StageResult
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import bounding_box, subject
from silhouette.vision import imaging
from silhouette.vision.face import FaceAnalysis, analyse_face
from silhouette.vision.model_files import model_version


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    """Age and sex of the primary subject's face, searched first where the pose stage saw it."""
    image = imaging.decode(store.get(state.artifact(WORKING_PIXELS)))
    person = subject(state)
    result = analyse_face(image, hint=person.face_box or person.bbox)
    artifacts = {}
    if result is not None:
        artifacts[FACE_CROP] = keys.artifact(state.job_id, FACE_CROP, "png")
        store.put(artifacts[FACE_CROP], imaging.encode_png(result.crop), "image/png")
    return StageResult(
        artifacts=artifacts,
        facts={"face": face_of(result).model_dump(mode="json")},
        models={name: model_version(name) for name in ("face_detector", "age", "gender")},
    )


def face_of(result: FaceAnalysis | None) -> Face:
    """The result's `face`. Estimates the models are unsure of say so and carry no number:
    the confidence of a withheld sex would only hint at the guess."""
    if result is None:
        return Face(status="unknown", reason="no face found")
    if result.age is None or result.age_range is None:
        age = AgeEstimate(status="unknown")
    else:
        age = AgeEstimate(status="ok", estimate=round(result.age), range=result.age_range)
    known_sex = result.sex != "unknown"
    return Face(
        status="ok",
        box=bounding_box(result.box),
        detection_confidence=round(result.detection_confidence, 3),
        age=age,
        sex=SexEstimate(
            value=result.sex,
            confidence=round(result.sex_confidence, 3) if known_sex else None,
        ),
    )
