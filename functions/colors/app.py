"""Colors stage: dominant clothing colours and the overlay picture."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import colors

handler = stage_handler(Stage.COLORS, colors.run)
