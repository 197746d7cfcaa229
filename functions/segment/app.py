"""Segment stage: transparent cutout of the person and the clothing mask."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import segment
from silhouette.vision.segmentation import load_models

handler = stage_handler(Stage.SEGMENT, segment.run)
load_models()  # at init, as Lambda recommends: no job waits for them
