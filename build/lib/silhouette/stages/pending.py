"""Stages whose models are not wired in yet (pose, segment, colors: issue #3).

They take part in the pipeline, are timed and recorded like every stage, and add no facts, so
the record shows `person`, `colors` and `face` as null rather than invented values."""

from __future__ import annotations

from silhouette.schema import PipelineState, StageResult
from silhouette.storage import ArtifactStore


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    return StageResult()
