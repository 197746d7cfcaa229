"""Pose stage: the person, 33 keypoints, bbox, person mask and face box."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import pose
from silhouette.vision.pose import load_models

handler = stage_handler(Stage.POSE, pose.run)
load_models()  # at init, as Lambda recommends: no job waits for them
