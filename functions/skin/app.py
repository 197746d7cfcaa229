"""Skin stage: the skin tone of the subject's face (ITA, Monk scale, undertone), or unknown."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import skin
from silhouette.vision.face import load_detector

handler = stage_handler(Stage.SKIN, skin.run)
load_detector()  # at init, as Lambda recommends: no job waits for it
