"""Pose on real photos: MediaPipe PoseLandmarker plus the face-crop and tile passes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from silhouette.stages.pose import LANDMARK_NAMES, estimate_pose, to_facts


def rgb(sample, name: str) -> np.ndarray:
    return np.asarray(Image.open(sample.path(name)).convert("RGB"))


@pytest.fixture(scope="module")
def bus(sample):
    return estimate_pose(rgb(sample, "bus"))


def test_full_body_photo_gives_33_named_keypoints_inside_the_bbox(bus):
    assert [k.name for k in bus.keypoints] == list(LANDMARK_NAMES)
    assert len(bus.keypoints) == 33
    by_name = {k.name: k for k in bus.keypoints}
    for joint in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"):
        assert by_name[joint].visibility > 0.9, joint
    box = bus.bbox
    for k in bus.keypoints:
        if k.visibility > 0.5:
            assert box.x <= k.x <= box.x + box.width and box.y <= k.y <= box.y + box.height, k
    # A standing person: taller than wide, shoulders above hips above ankles.
    assert box.height > 2 * box.width
    assert by_name["left_shoulder"].y < by_name["left_hip"].y < by_name["left_ankle"].y
    assert bus.confidence > 0.9


def test_normalised_coordinates_match_pixels(bus):
    for k in bus.keypoints:
        assert k.nx == pytest.approx(k.x / 810, abs=1e-6)
        assert k.ny == pytest.approx(k.y / 1080, abs=1e-6)


def test_person_mask_covers_the_person_and_little_else(bus):
    mask = bus.person_mask > 0
    box = bus.bbox
    inside = mask[box.y : box.y + box.height, box.x : box.x + box.width]
    assert inside.mean() > 0.3  # the body fills a good part of its box
    assert inside.sum() / mask.sum() > 0.9  # and the mask stays within it


def test_people_the_whole_photo_pass_misses_are_counted(sample, bus):
    # bus.jpg shows four people; one pass over the whole photo finds one of them.
    assert bus.person_count >= 2
    assert estimate_pose(rgb(sample, "zidane")).person_count == 2


def test_face_box_lies_on_the_head(bus):
    nose = next(k for k in bus.keypoints if k.name == "nose")
    face = bus.face_box
    assert face is not None
    assert face.x <= nose.x <= face.x + face.width and face.y <= nose.y <= face.y + face.height


@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_portraits_and_greyscale_photos_are_found(sample, name):
    estimate = estimate_pose(rgb(sample, name))
    assert estimate is not None and estimate.confidence > 0.8
    facts = to_facts(estimate)
    assert len(facts["keypoints"]) == 33 and facts["person_count"] >= 1


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_photos_without_a_person_give_none(sample, name):
    assert estimate_pose(rgb(sample, name)) is None
