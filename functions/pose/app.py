"""Pose stage: the person, 33 keypoints, bbox, person mask and face box."""

from silhouette.pipeline import stage_handler
from silhouette.schema import Stage
from silhouette.stages import pose

handler = stage_handler(Stage.POSE, pose.run)
