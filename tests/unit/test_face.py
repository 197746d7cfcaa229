"""Face on real photos: the face is found where it is, the crop is aligned, and age and sex are
plausible where the face is readable and withheld where it is not."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from silhouette.service.stages.face import face_of
from silhouette.vision import face
from silhouette.vision.face import FaceAnalysis, analyse_face, detect_face
from silhouette.vision.types import Box

PHOTOS = ("astronaut", "camera", "zidane", "bus", "chelsea", "coffee")
# Where dlib's face chips put the eye centres, as fractions of the chip's side.
CHIP_EYE_Y = 0.30
CHIP_EYE_XS = (0.30, 0.68)


def load(sample, name: str) -> np.ndarray:
    return np.asarray(Image.open(sample.path(name)).convert("RGB"))


@pytest.fixture(scope="module")
def analysed(sample) -> dict[str, FaceAnalysis | None]:
    """Each photo analysed once: the tests read the results."""
    return {name: analyse_face(load(sample, name)) for name in PHOTOS}


def inside(box: Box, image: np.ndarray) -> bool:
    height, width = image.shape[:2]
    return 0 <= box.x < box.x + box.width <= width and 0 <= box.y < box.y + box.height <= height


def assert_aligned(crop: np.ndarray, max_tilt: float = 0.1) -> None:
    """The crop shows an upright face with the eyes where the age and sex models expect them.
    `max_tilt`: the eyes' height difference in eye distances (0.1 is about 6 degrees)."""
    side = crop.shape[0]
    # The full-range detector misses faces that fill the frame: show it the crop on a canvas.
    canvas = np.full((3 * side, 3 * side, 3), 128, dtype=np.uint8)
    canvas[side : 2 * side, side : 2 * side] = crop
    found = detect_face(canvas)
    assert found is not None, "no face in the aligned crop"
    right_eye, left_eye = found.keypoints[0] - side, found.keypoints[1] - side
    eye_distance = np.hypot(*(left_eye - right_eye))
    assert abs(left_eye[1] - right_eye[1]) < max_tilt * eye_distance
    for eye, expected_x in zip((right_eye, left_eye), CHIP_EYE_XS, strict=True):
        assert eye[0] == pytest.approx(expected_x * side, abs=0.06 * side)
        assert eye[1] == pytest.approx(CHIP_EYE_Y * side, abs=0.06 * side)


def test_astronaut_portrait_is_a_woman_of_plausible_age(sample, analysed):
    image = load(sample, "astronaut")
    result = analysed["astronaut"]
    assert result is not None
    assert inside(result.box, image)
    # Her face: in the upper half, centred, a fifth of the photo across.
    assert result.box.y + result.box.height < image.shape[0] / 2
    assert 0.3 * image.shape[1] < result.box.x + result.box.width / 2 < 0.7 * image.shape[1]
    assert 0.1 * image.shape[1] < result.box.width < 0.4 * image.shape[1]
    assert result.detection_confidence > face.MIN_DETECTION_CONFIDENCE
    assert result.sex == "female"
    assert result.sex_confidence >= face.SEX_MIN_CONFIDENCE
    # She was in her late thirties; the model reads her younger, but not as a child or retiree.
    assert result.age is not None and result.age_range is not None
    assert 20 <= result.age <= 60
    low, high = result.age_range
    assert low <= result.age <= high
    assert high - low >= 2 * face.AGE_MIN_HALF_WIDTH


def test_crop_is_an_aligned_square_face_chip(analysed):
    crop = analysed["astronaut"].crop
    assert crop.dtype == np.uint8
    assert crop.shape == (face.CROP_SIZE, face.CROP_SIZE, 3)
    assert_aligned(crop)


@pytest.mark.parametrize("angle", [-30, 20])
def test_tilted_head_is_straightened_and_still_read(sample, angle):
    tilted = Image.fromarray(load(sample, "astronaut")).rotate(
        angle, resample=Image.Resampling.BICUBIC, expand=True
    )
    result = analyse_face(np.asarray(tilted))
    assert result is not None
    assert_aligned(result.crop)
    assert result.sex != "male"
    assert result.age is not None and 20 <= result.age <= 60


def test_greyscale_photo_finds_the_cameraman_turned_away(sample, analysed):
    image = load(sample, "camera")
    result = analysed["camera"]
    assert result is not None
    assert inside(result.box, image)
    assert result.box.y + result.box.height < image.shape[0] / 2
    # He looks sideways into his camera: too far turned for the models, so no guesses.
    assert result.age is None and result.age_range is None
    assert result.sex == "unknown"
    assert 0.5 <= result.sex_confidence <= 1


def test_zidane_finds_the_frontal_man(sample, analysed):
    image = load(sample, "zidane")
    result = analysed["zidane"]
    assert result is not None
    assert inside(result.box, image)
    # The man facing the camera stands on the right; Zidane, on the left, is in profile.
    assert result.box.x > image.shape[1] / 2
    assert result.sex == "male"
    assert result.sex_confidence >= face.SEX_MIN_CONFIDENCE
    assert result.age is not None and result.age_range is not None
    assert result.age_range[0] <= result.age <= result.age_range[1]
    assert 30 <= result.age <= 80


def test_street_scene_finds_a_small_face_and_never_calls_the_men_women(sample, analysed):
    image = load(sample, "bus")
    result = analysed["bus"]
    assert result is not None
    assert inside(result.box, image)
    assert result.box.width < image.shape[1] / 10  # a face in the crowd, not the bus
    assert result.sex in ("male", "unknown")
    # Eyes 15 px apart in the photo: one pixel of keypoint error tilts the chip by 4 degrees.
    assert_aligned(result.crop, max_tilt=0.15)


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_photos_without_people_have_no_face(analysed, name):
    assert analysed[name] is None
    assert face_of(analysed[name]).model_dump(exclude_none=True) == {
        "status": "unknown",
        "reason": "no face found",
    }


def test_hint_directs_the_search_to_the_pose_stage_subject(sample):
    image = load(sample, "zidane")
    zidane = Box(500, 200, 180, 260)  # the person on the left, not the larger frontal face
    result = analyse_face(image, hint=zidane)
    assert result is not None
    centre_x = result.box.x + result.box.width / 2
    centre_y = result.box.y + result.box.height / 2
    assert zidane.x <= centre_x <= zidane.x + zidane.width
    assert zidane.y <= centre_y <= zidane.y + zidane.height
    # In profile, shouting: found, but not read.
    assert result.age is None
    assert result.sex == "unknown"


def test_a_hint_without_a_face_reads_no_one_else_s(sample, analysed):
    """A subject seen from behind has no face to read; another person's face must not be read
    in their place."""
    image = load(sample, "astronaut")
    assert analyse_face(image, hint=Box(0, 400, 100, 100)) is None  # a corner of her spacesuit
    assert analyse_face(image) is not None


def test_facts_report_estimates_with_their_uncertainty(analysed):
    facts = face_of(analysed["astronaut"]).model_dump(mode="json")
    assert json.loads(json.dumps(facts)) == facts
    assert facts["status"] == "ok"
    assert set(facts["box"]) == {"x", "y", "width", "height"}
    assert facts["sex"] == {"value": "female", "confidence": pytest.approx(1, abs=0.2)}
    age = facts["age"]
    assert age["status"] == "ok"
    assert age["range"][0] <= age["estimate"] <= age["range"][1]


def test_facts_say_unknown_instead_of_guessing(analysed):
    facts = face_of(analysed["camera"]).model_dump(mode="json")
    assert facts["status"] == "ok"
    assert facts["age"] == {"status": "unknown", "estimate": None, "range": None}
    assert facts["sex"] == {"value": "unknown", "confidence": None}


def test_models_are_loaded_once_per_process(sample):
    image = load(sample, "astronaut")
    analyse_face(image)
    analyse_face(image)
    assert face._detector.cache_info().currsize == 1
    assert face._session.cache_info().currsize == 2  # age and sex


def test_rejects_images_that_are_not_rgb_uint8():
    with pytest.raises(ValueError, match="RGB uint8"):
        analyse_face(np.zeros((64, 64), dtype=np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        analyse_face(np.zeros((64, 64, 3), dtype=np.float32))
