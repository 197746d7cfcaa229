"""Pose stage: the person, 33 keypoints, bbox, person mask and face box."""

from silhouette.schema import Stage
from silhouette.service.handlers import stage_handler
from silhouette.service.stages import pose

handler = stage_handler(Stage.POSE, pose.run)
