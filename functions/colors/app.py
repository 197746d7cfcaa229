"""Colors stage: dominant clothing colours and the overlay picture."""

from silhouette.pipeline import stage_handler
from silhouette.schema import Stage
from silhouette.stages import colors

handler = stage_handler(Stage.COLORS, colors.run)
