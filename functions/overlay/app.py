"""Overlay stage: the photo with what every stage found drawn on it."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import overlay

handler = stage_handler(Stage.OVERLAY, overlay.run)
