"""Ingest stage: validate and normalise the upload."""

from silhouette.pipeline import stage_handler
from silhouette.schema import Stage
from silhouette.stages import ingest

handler = stage_handler(Stage.INGEST, ingest.run)
