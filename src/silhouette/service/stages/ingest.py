"""Ingest: the upload decoded and normalised (vision/decoding.py) into the working image; each
of a capture's other views into its own."""

from __future__ import annotations

from silhouette.errors import RejectedInput
from silhouette.names import WORKING_IMAGE, of_view
from silhouette.schema import PipelineState, StageResult, UploadedView, View
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.settings import get_settings
from silhouette.vision.decoding import Limits, NormalisedImage, check_size, normalise


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    limits = Limits.from_settings(get_settings())
    photos = {View.FRONT: UploadedView(key=state.upload_key, size=state.upload_size)}
    photos.update(state.views)
    artifacts, facts = {}, {}
    for view, upload in photos.items():
        try:
            image = _normalised(store, upload, limits)
        except RejectedInput as rejection:
            if not state.views:
                raise
            raise RejectedInput(f"{view.value} view: {rejection.reason}") from rejection
        name = WORKING_IMAGE if view == View.FRONT else of_view(WORKING_IMAGE, view.value)
        artifacts[name] = keys.working_image(state.job_id, name)
        store.put(artifacts[name], image.png, "image/png")
        facts[view] = image.facts.model_dump()
    front = facts.pop(View.FRONT)
    return StageResult(artifacts=artifacts, facts={"image": front, "view_images": facts or None})


def _normalised(store: ArtifactStore, upload: UploadedView, limits: Limits) -> NormalisedImage:
    if upload.size is not None:
        check_size(upload.size, limits)  # before downloading a hostile giant
    return normalise(store.get(upload.key), limits)
