"""Face: age and sex of the subject's face (vision/face.py)."""

from __future__ import annotations

from silhouette.names import FACE_CROP, WORKING_IMAGE
from silhouette.schema import PipelineState, StageResult
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.service.subject import subject
from silhouette.vision import imaging
from silhouette.vision.face import analyse_face, to_facts
from silhouette.vision.model_files import model_version


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    """Age and sex of the primary subject's face, searched first where the pose stage saw it."""
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    person = subject(state)
    result = analyse_face(image, hint=person.face_box or person.bbox)
    artifacts = {}
    if result is not None:
        artifacts[FACE_CROP] = keys.artifact(state.job_id, FACE_CROP, "png")
        store.put(artifacts[FACE_CROP], imaging.encode_png(result.crop), "image/png")
    return StageResult(
        artifacts=artifacts,
        facts={"face": to_facts(result)},
        models={name: model_version(name) for name in ("face_detector", "age", "gender")},
    )
