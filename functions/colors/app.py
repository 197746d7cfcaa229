"""Colors stage: the dominant clothing colours."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import colors
from silhouette.vision.colors import load_models

handler = stage_handler(Stage.COLORS, colors.run)
load_models()  # at init, as Lambda recommends: no job waits for them
