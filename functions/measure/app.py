"""Measure stage: body measurements from the front and side views, with their error bands."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import measure

handler = stage_handler(Stage.MEASURE, measure.run)
