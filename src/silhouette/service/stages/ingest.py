"""Ingest: the upload decoded and normalised (vision/decoding.py) into the working image."""

from __future__ import annotations

from silhouette.names import WORKING_IMAGE
from silhouette.schema import PipelineState, StageResult
from silhouette.service import keys
from silhouette.service.storage import ArtifactStore
from silhouette.settings import get_settings
from silhouette.vision.decoding import Limits, check_size, normalise


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    limits = Limits.from_settings(get_settings())
    if state.upload_size is not None:
        check_size(state.upload_size, limits)  # before downloading a hostile giant
    normalised = normalise(store.get(state.upload_key), limits)
    key = keys.artifact(state.job_id, WORKING_IMAGE, "png")
    store.put(key, normalised.png, "image/png")
    return StageResult(
        artifacts={WORKING_IMAGE: key}, facts={"image": normalised.facts.model_dump()}
    )
