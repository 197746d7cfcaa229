"""Face stage: face box, aligned crop, age range and sex, or an explicit unknown."""

from silhouette.pipeline import stage_handler
from silhouette.schema import Stage
from silhouette.stages import face

handler = stage_handler(Stage.FACE, face.run)
