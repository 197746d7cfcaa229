"""Face stage: face box, aligned crop, age range and sex, or an explicit unknown."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import face

handler = stage_handler(Stage.FACE, face.run)
