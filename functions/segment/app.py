"""Segment stage (pending its model, see silhouette.stages.pending)."""

from silhouette.pipeline import stage_handler
from silhouette.schema import Stage
from silhouette.stages import pending

handler = stage_handler(Stage.SEGMENT, pending.run)
