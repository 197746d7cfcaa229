"""Segment stage: transparent cutout of the person and the clothing mask."""

from silhouette.pipeline import stage_handler
from silhouette.schema import Stage
from silhouette.stages import segment

handler = stage_handler(Stage.SEGMENT, segment.run)
