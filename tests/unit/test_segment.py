"""Cutout and clothing mask on real photos (IS-Net matte, MediaPipe person mask)."""

from __future__ import annotations

import io
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image

from silhouette.vision.pose import estimate_pose
from silhouette.vision.segmentation import (
    MATTING_SIDE,
    TRAINED_SIDE,
    WORKING_SIDE,
    cutout_png,
    person_matte,
    segment_person,
)
from silhouette.vision.types import Box


def analyse(sample, name: str):
    image = np.asarray(Image.open(sample.path(name)).convert("RGB"))
    pose = estimate_pose(image)
    return image, pose, segment_person(image, pose.person_mask, pose.keypoints, pose.face_box)


@pytest.fixture(scope="module")
def bus(sample):
    return analyse(sample, "bus")


@pytest.fixture(scope="module")
def zidane(sample):
    return analyse(sample, "zidane")


def _outside(box, shape, margin: float) -> np.ndarray:
    grow_x, grow_y = int(box.width * margin), int(box.height * margin)
    outside = np.ones(shape, bool)
    outside[
        max(0, box.y - grow_y) : box.y + box.height + grow_y,
        max(0, box.x - grow_x) : box.x + box.width + grow_x,
    ] = False
    return outside


def test_cutout_covers_the_person_and_not_the_background(bus):
    image, pose, result = bus
    opaque = result.alpha >= 128
    person = pose.person_mask > 0
    assert result.source == "isnet"
    assert opaque[person].mean() > 0.9  # the person is in the cutout
    # The bus, the street and the other pedestrians are not.
    assert opaque[_outside(pose.bbox, opaque.shape, 0.1)].mean() < 0.002
    assert (opaque & ~person).sum() < 0.25 * person.sum()


def test_touching_people_stay_out_of_the_cutout(zidane):
    _, pose, result = zidane
    opaque = result.alpha >= 128
    outside = _outside(pose.bbox, opaque.shape, 0.05)
    assert opaque[outside].sum() < 0.05 * opaque.sum()


def test_cutout_png_is_rgba_at_the_photo_resolution(bus):
    image, _, result = bus
    cutout = Image.open(io.BytesIO(cutout_png(image, result.alpha)))
    assert cutout.mode == "RGBA" and cutout.size == (810, 1080)
    assert np.array_equal(np.asarray(cutout)[..., :3], image)


def test_clothing_mask_is_the_body_without_head_face_and_hands(bus):
    _, pose, result = bus
    clothing, opaque = result.clothing.mask, result.alpha >= 128
    assert clothing.dtype == bool and clothing.shape == opaque.shape
    assert not (clothing & ~opaque).any()
    assert 0.4 < clothing.sum() / opaque.sum() < 0.95
    face = pose.face_box
    assert not clothing[face.y : face.y + face.height, face.x : face.x + face.width].any()
    points = {k.name: k for k in pose.keypoints}
    for name in ("nose", "left_wrist", "right_wrist"):
        x, y = int(points[name].x), int(points[name].y)
        assert not clothing[y, x], name
    for name in ("left_hip", "right_hip", "left_knee"):  # trousers and jacket are in
        x, y = int(points[name].x), int(points[name].y)
        assert clothing[y - 3 : y + 4, x - 3 : x + 4].mean() > 0.5, name


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def _enlarged(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


def test_a_large_photo_is_segmented_small_and_scaled_back_to_its_size(bus):
    image, pose, result = bus
    scale = 2.5  # 2025 x 2700: over WORKING_SIDE, so worked out at 1536 x 2048
    large = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    size = (large.shape[1], large.shape[0])
    assert max(size) > WORKING_SIDE
    face = pose.face_box
    found = segment_person(
        large,
        cv2.resize(pose.person_mask, size, interpolation=cv2.INTER_NEAREST),
        [replace(k, x=k.x * scale, y=k.y * scale) for k in pose.keypoints],
        Box(*(round(value * scale) for value in (face.x, face.y, face.width, face.height))),
    )
    opaque = found.alpha >= 128
    assert found.alpha.shape == found.clothing.mask.shape == large.shape[:2]
    assert not (found.clothing.mask & ~opaque).any()
    # The same cutout and clothing as the photo at its own size gave (measured: 0.986, 0.91).
    assert _iou(opaque, _enlarged(result.alpha >= 128, size)) > 0.97
    assert _iou(found.clothing.mask, _enlarged(result.clothing.mask, size)) > 0.85


def test_fast_mode_fits_the_person_mask_without_the_matting_model(bus, monkeypatch):
    image, pose, quality = bus

    def no_matting(image):
        raise AssertionError("fast mode ran IS-Net")

    monkeypatch.setattr("silhouette.vision.segmentation.person_matte", no_matting)
    fast = segment_person(image, pose.person_mask, pose.keypoints, pose.face_box, fast=True)

    assert fast.source == "pose_mask_fitted"
    agreed, either = (
        (fast.alpha >= 128) & (quality.alpha >= 128),
        (fast.alpha >= 128) | (quality.alpha >= 128),
    )
    assert agreed.sum() / either.sum() > 0.9  # measured 0.94 on bus.jpg
    # Soft edges that follow the photo, not the pose mask's blocky outline.
    assert ((fast.alpha > 0) & (fast.alpha < 255)).sum() > 0
    assert not (fast.clothing.mask & (fast.alpha < 128)).any()


def _mattes_by_side(monkeypatch, mattes: dict[int, np.ndarray]) -> list[int]:
    """IS-Net's matte replaced by `mattes` per input side; the sides asked for, in order."""
    asked: list[int] = []

    def matte_at(image, side=MATTING_SIDE, model=None):
        asked.append(side)
        return mattes[side]

    monkeypatch.setattr("silhouette.vision.segmentation.person_matte", matte_at)
    return asked


def test_a_person_missed_at_the_smaller_matting_size_is_looked_for_at_the_trained_size(
    bus, monkeypatch
):
    image, pose, quality = bus
    found = person_matte(image, TRAINED_SIDE)
    asked = _mattes_by_side(monkeypatch, {MATTING_SIDE: np.zeros_like(found), TRAINED_SIDE: found})

    result = segment_person(image, pose.person_mask, pose.keypoints, pose.face_box)

    assert asked == [MATTING_SIDE, TRAINED_SIDE]
    assert result.source == "isnet"  # not the pose stage's coarse mask
    assert _iou(result.alpha >= 128, quality.alpha >= 128) > 0.9


def test_a_partial_matte_is_kept_when_the_second_size_misses_the_person(bus, monkeypatch):
    image, pose, _ = bus
    partial = person_matte(image, MATTING_SIDE)
    rows = np.nonzero((partial >= 128).any(axis=1))[0]
    partial[(rows[0] + rows[-1]) // 2 + (rows[-1] - rows[0]) // 5 :] = 0  # the legs missed
    asked = _mattes_by_side(
        monkeypatch, {MATTING_SIDE: partial, TRAINED_SIDE: np.zeros_like(partial)}
    )

    result = segment_person(image, pose.person_mask, pose.keypoints, pose.face_box)

    assert asked == [MATTING_SIDE, TRAINED_SIDE]
    assert result.source == "isnet"
    # The matte's part of the person, not the whole of the pose stage's blocky mask.
    assert not (result.alpha[partial == 0] >= 128).any()
