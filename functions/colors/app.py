"""Colors stage: the dominant clothing colours."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import colors

handler = stage_handler(Stage.COLORS, colors.run)
