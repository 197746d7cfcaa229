"""Ingest stage: validate and normalise the upload."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import ingest

handler = stage_handler(Stage.INGEST, ingest.run)
