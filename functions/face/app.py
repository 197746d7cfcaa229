"""Face stage: face box, aligned crop, age range and sex, or an explicit unknown."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import face
from silhouette.vision.face import load_models

handler = stage_handler(Stage.FACE, face.run)
load_models()  # at init, as Lambda recommends: no job waits for them
