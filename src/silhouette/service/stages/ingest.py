"""Ingest: the upload decoded and normalised (vision/decoding.py) into the working image, a PNG
to look at and download, and the same pixels as the array the stages read; each of a capture's
other views into its own."""

from __future__ import annotations

from silhouette.errors import RejectedInput
from silhouette.names import WORKING_IMAGE, WORKING_PIXELS, of_view
from silhouette.schema import PipelineState, StageResult, UploadedView, View
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.settings import get_settings
from silhouette.vision import imaging
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
        name, pixels = _named(WORKING_IMAGE, view), _named(WORKING_PIXELS, view)
        artifacts[name] = keys.working_image(state.job_id, name)
        store.put(artifacts[name], imaging.encode_png(image.pixels), "image/png")
        artifacts[pixels] = keys.working_image(state.job_id, pixels, "npy")
        store.put(artifacts[pixels], imaging.encode_raw(image.pixels), imaging.RAW_CONTENT_TYPE)
        facts[view] = image.facts.model_dump()
    front = facts.pop(View.FRONT)
    return StageResult(artifacts=artifacts, facts={"image": front, "view_images": facts or None})


def _named(artifact: str, view: View) -> str:
    return artifact if view == View.FRONT else of_view(artifact, view.value)


def _normalised(store: ArtifactStore, upload: UploadedView, limits: Limits) -> NormalisedImage:
    if upload.size is not None:
        check_size(upload.size, limits)  # before downloading a hostile giant
    return normalise(store.get(upload.key), limits)
