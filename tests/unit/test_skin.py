"""Skin tone: synthetic faces of known CIELAB colour are measured to within about one unit
despite noise, highlights and a brow across a patch; the scales (ITA, Monk) order skin from light
to dark; on real photos lighter-skinned faces come out lighter than darker-skinned ones, and
greyscale, faceless, colour-cast and underexposed photos are flagged."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image

from silhouette.vision import imaging
from silhouette.vision.colors import delta_e_2000, lab_to_rgb, rgb_to_lab
from silhouette.vision.face import FaceDetection, detect_face
from silhouette.vision.skin import MONK_HEX, SkinTone, ita_category, sample_patches, skin_tone
from silhouette.vision.types import LANDMARK_NAMES, Box, Keypoint

SIZE = 480
CENTRE = (240.0, 200.0)  # between the eyes
EYE_DISTANCE = 80.0
BACKGROUND = (70, 110, 160)  # a blue wall: nothing like skin
# Del Bino's categories with the bounds written out independently of the module: (ITA, name).
DEL_BINO = (
    (55.0, "very_light"),
    (41.0, "light"),
    (28.0, "intermediate"),
    (10.0, "tan"),
    (-30.0, "brown"),
)
# Real photos (samples/eval): people with lighter and with darker skin, as they look.
LIGHTER = ("astronaut", "audrey", "talking_head")
DARKER = ("obama_face", "obama_standing")
GREYSCALE = ("couple_grey", "man_with_cup_grey")
NO_FACE = ("chelsea", "coffee")
BROW = (35, 25, 20)  # nearly black hair


def synthetic_face(
    centre: tuple[float, float] = CENTRE, eye_distance: float = EYE_DISTANCE, angle: float = 0.0
) -> FaceDetection:
    """A FaceDetection of an upright face (turned by `angle` degrees about the point between
    the eyes), keypoints where BlazeFace puts them on a frontal face."""
    unit = np.array(
        [[-0.5, 0.0], [0.5, 0.0], [0.0, 0.55], [0.0, 1.05], [-1.05, 0.25], [1.05, 0.25]]
    )
    turn = math.radians(angle)
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    keypoints = np.array(centre) + eye_distance * unit @ rotation.T
    half = int(1.2 * eye_distance)
    box = Box(int(centre[0]) - half, int(centre[1]) - half, 2 * half, 2 * half + half // 2)
    return FaceDetection(box=box, confidence=0.9, keypoints=keypoints)


def synthetic_photo(
    skin_rgb: tuple[int, int, int], face: FaceDetection, noise: float = 2.5, seed: int = 0
) -> np.ndarray:
    """A blue wall, an oval face of one skin colour with near-white eyes (a well-exposed face
    has some near-white), and Gaussian sensor noise."""
    image = np.zeros((SIZE, SIZE, 3), dtype=np.float64)
    image[:] = BACKGROUND
    right_eye, left_eye, _, mouth = face.keypoints[:4]
    centre = (right_eye + left_eye) / 2 * 0.55 + mouth * 0.45
    up = np.degrees(np.arctan2(*(left_eye - right_eye)[::-1]))
    axes = (int(1.05 * EYE_DISTANCE), int(1.6 * EYE_DISTANCE))
    centre_px = (int(centre[0]), int(centre[1]))
    cv2.ellipse(image, centre_px, axes, up, 0, 360, skin_rgb, -1)
    for eye in (right_eye, left_eye):
        cv2.circle(image, (int(eye[0]), int(eye[1])), int(0.15 * EYE_DISTANCE), (236,) * 3, -1)
    image += np.random.default_rng(seed).normal(0.0, noise, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def noisy(rgb: tuple[int, int, int], shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """An area of one colour with the same sensor noise as synthetic_photo's."""
    area = np.array(rgb, dtype=np.float64) + np.random.default_rng(seed).normal(0.0, 2.5, shape)
    return np.clip(np.round(area), 0, 255).astype(np.uint8)


def skin_colour(lab: tuple[float, float, float]) -> tuple[tuple[int, int, int], np.ndarray]:
    """The sRGB pixel nearest `lab` and the CIELAB it really has (the truth to compare with)."""
    rgb = lab_to_rgb(np.array(lab))
    return rgb, rgb_to_lab(np.array(rgb, dtype=np.uint8))


def patch_box(photo: np.ndarray, face: FaceDetection, name: str) -> Box:
    return next(s.patch.box for s in sample_patches(photo, face) if s.patch.name == name)


def spoil_patches(photo: np.ndarray, face: FaceDetection) -> np.ndarray:
    """What the pixel filters must drop, each short of half a patch: a dark brow across the top
    of the forehead patch, a clipped highlight in the right cheek, sheen (bright, not clipped)
    over the top of the left cheek."""
    spoiled = photo.copy()
    spoiled[brow_rows(photo, face)] = BROW
    cheek = patch_box(photo, face, "right_cheek")
    centre = (cheek.x + cheek.width // 2, cheek.y + cheek.height // 2)
    cv2.circle(spoiled, centre, cheek.width // 3, (255, 255, 255), -1)
    sheen = sheen_rows(photo, face)
    spoiled[sheen] = np.clip(spoiled[sheen].astype(int) + 35, 0, 245)
    return spoiled


def brow_rows(photo: np.ndarray, face: FaceDetection) -> tuple[slice, slice]:
    box = patch_box(photo, face, "forehead")
    return slice(box.y, box.y + int(0.4 * box.height)), slice(box.x, box.x + box.width)


def sheen_rows(photo: np.ndarray, face: FaceDetection) -> tuple[slice, slice]:
    box = patch_box(photo, face, "left_cheek")
    return slice(box.y, box.y + int(0.4 * box.height)), slice(box.x, box.x + box.width)


def expected_category(ita: float) -> str:
    return next((name for bound, name in DEL_BINO if ita > bound), "dark")


def pose_keypoints(shoulders_visibility: float) -> list[Keypoint]:
    """33 landmarks of an upright person under the synthetic face, shoulders seen or not."""
    cx, cy = CENTRE
    places = {
        "mouth_left": (cx + 0.25 * EYE_DISTANCE, cy + 1.05 * EYE_DISTANCE),
        "mouth_right": (cx - 0.25 * EYE_DISTANCE, cy + 1.05 * EYE_DISTANCE),
        "left_shoulder": (cx + 1.6 * EYE_DISTANCE, cy + 2.7 * EYE_DISTANCE),
        "right_shoulder": (cx - 1.6 * EYE_DISTANCE, cy + 2.7 * EYE_DISTANCE),
    }
    keypoints = []
    for name in LANDMARK_NAMES:
        x, y = places.get(name, CENTRE)
        visibility = shoulders_visibility if name.endswith("shoulder") else 0.95
        keypoints.append(Keypoint(name, x, y, x / SIZE, y / SIZE, 0.0, visibility))
    return keypoints


def assert_lab_close(tone: SkinTone, truth: np.ndarray, tolerance: float = 1.0) -> None:
    assert tone.status == "ok", tone.reason
    assert tone.lab is not None
    assert np.abs(np.array(tone.lab) - truth).max() <= tolerance, (tone.lab, truth)


# Synthetic faces of known colour.


@pytest.mark.parametrize(
    "lab", [(72.0, 12.0, 18.0), (55.0, 14.0, 24.0), (38.0, 13.0, 20.0), (24.0, 9.0, 12.0)]
)
def test_skin_of_known_colour_is_measured_through_noise_highlights_and_a_brow(lab):
    face = synthetic_face()
    rgb, truth = skin_colour(lab)
    photo = spoil_patches(synthetic_photo(rgb, face), face)
    tone = skin_tone(photo, face)
    assert_lab_close(tone, truth)
    ita = math.degrees(math.atan2(truth[0] - 50, truth[2]))
    assert tone.ita_degrees == pytest.approx(ita, abs=1.0)
    assert tone.hue_angle == pytest.approx(math.degrees(math.atan2(truth[2], truth[1])), abs=2.0)
    assert tone.patch_count == 3
    assert tone.confidence > 0.8, tone.notes


def test_the_pixel_filters_keep_skin_and_drop_brow_highlight_and_sheen():
    face = synthetic_face()
    rgb, _ = skin_colour((55.0, 14.0, 24.0))
    clean = synthetic_photo(rgb, face)
    spoiled = spoil_patches(clean, face)
    samples = {sample.patch.name: sample for sample in sample_patches(spoiled, face)}

    def kept_share(name: str, spoilt: np.ndarray) -> float:
        """The share of the patch's spoilt pixels (mask over its box) kept as skin."""
        return float(samples[name].kept[spoilt].mean())

    for name, sample in samples.items():
        box = sample.patch.box
        changed = np.any(spoiled[box.slices] != clean[box.slices], axis=2)
        assert changed.mean() > 0.2, name  # each patch is spoilt...
        assert kept_share(name, changed) < 0.05, name  # ...and the spoilt pixels are dropped
        assert kept_share(name, ~changed) > 0.8, name  # while the skin around them counts


@pytest.mark.parametrize("boundary", [55.0, 41.0, 28.0, 10.0, -30.0])
@pytest.mark.parametrize("offset", [-2.5, 2.5])
def test_ita_category_on_either_side_of_del_binos_boundaries(boundary, offset):
    ita = boundary + offset
    b = 18.0
    lab = (50.0 + b * math.tan(math.radians(ita)), 10.0, b)
    face = synthetic_face()
    rgb, truth = skin_colour(lab)
    tone = skin_tone(synthetic_photo(rgb, face), face)
    true_ita = math.degrees(math.atan2(truth[0] - 50, truth[2]))
    assert tone.ita_degrees == pytest.approx(true_ita, abs=1.0)
    assert tone.ita_category == expected_category(true_ita)


@pytest.mark.parametrize("boundary", [55.0, 41.0, 28.0, 10.0, -30.0])
def test_each_category_includes_its_upper_bound(boundary):
    assert ita_category(boundary) == expected_category(boundary)
    assert ita_category(boundary + 0.01) != ita_category(boundary)


@pytest.mark.parametrize("index", range(1, 11))
def test_each_monk_swatch_as_skin_is_its_own_monk_tone(index):
    hex_colour = MONK_HEX[index - 1]
    rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    face = synthetic_face()
    tone = skin_tone(synthetic_photo(rgb, face, noise=1.5), face)
    assert tone.status == "ok", tone.reason
    assert tone.monk == index
    assert tone.monk_hex == hex_colour


def test_light_to_dark_gradient_gives_falling_ita_and_rising_monk():
    face = synthetic_face()
    light, dark = np.array([90.0, 4.0, 11.0]), np.array([17.0, 5.0, 7.0])
    tones = []
    for step in np.linspace(0.0, 1.0, 12):
        rgb, _ = skin_colour(tuple(light + step * (dark - light)))
        tones.append(skin_tone(synthetic_photo(rgb, face), face))
    itas = [tone.ita_degrees for tone in tones]
    monks = [tone.monk for tone in tones]
    assert all(a >= b for a, b in zip(itas, itas[1:], strict=False)), itas
    assert all(a <= b for a, b in zip(monks, monks[1:], strict=False)), monks
    assert monks[0] <= 3 and monks[-1] >= 9  # the gradient spans the scale


# Where the patches go.


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 180.0])
def test_patches_sit_on_cheeks_and_forehead_of_a_turned_face(angle):
    """In the face's own frame (eye line across, mouth down): cheeks below the lower lids and
    above the mouth, each on its side of the nose; the forehead above the brows (which sit up
    to half an eye distance above the eyes)."""
    face = synthetic_face(angle=angle)
    right_eye, left_eye, nose, mouth = face.keypoints[:4]
    across = (left_eye - right_eye) / EYE_DISTANCE
    down = np.array([-across[1], across[0]])
    middle = (right_eye + left_eye) / 2
    photo = synthetic_photo((190, 150, 130), face)
    boxes = {sample.patch.name: sample.patch.box for sample in sample_patches(photo, face)}
    assert set(boxes) == {"right_cheek", "left_cheek", "forehead"}

    def face_frame(box: Box) -> tuple[float, float, float]:
        """Along, below (of the centre) and half the box's extent, in eye distances."""
        centre = np.array([box.x + box.width / 2, box.y + box.height / 2]) - middle
        return centre @ across / EYE_DISTANCE, centre @ down / EYE_DISTANCE, box.width / 160

    nose_along = float((nose - middle) @ across) / EYE_DISTANCE
    mouth_below = float((mouth - middle) @ down) / EYE_DISTANCE
    for name, side in (("right_cheek", -1), ("left_cheek", 1)):
        along, below, half = face_frame(boxes[name])
        extent = half * math.sqrt(2)  # a rotated face's axis-aligned box reaches further
        assert below - extent > 0.2 and below + extent < mouth_below
        assert side * (along - nose_along) - extent > 0.15
    along, below, half = face_frame(boxes["forehead"])
    assert abs(along) < 0.05
    assert below + half * math.sqrt(2) < -0.5


@pytest.mark.parametrize(
    ("centre", "inside"),
    [
        ((240.0, 40.0), ["right_cheek", "left_cheek"]),  # the forehead above the top edge
        ((431.0, 200.0), ["right_cheek", "forehead"]),  # the left cheek a few px past the right
    ],
)
def test_a_patch_reaching_outside_the_photo_is_skipped(centre, inside):
    face = synthetic_face(centre=centre)
    rgb, truth = skin_colour((62.0, 12.0, 20.0))
    tone = skin_tone(synthetic_photo(rgb, face), face)
    assert [patch.name for patch in tone.patches] == inside
    assert_lab_close(tone, truth)


def test_bangs_over_the_forehead_are_outvoted_by_the_cheeks():
    face = synthetic_face()
    rgb, truth = skin_colour((66.0, 12.0, 19.0))
    photo = synthetic_photo(rgb, face)
    forehead = patch_box(photo, face, "forehead")
    photo[forehead.slices] = noisy((92, 64, 40), photo[forehead.slices].shape)  # brown hair
    tone = skin_tone(photo, face)
    assert {patch.name for patch in tone.patches} == {"right_cheek", "left_cheek"}
    assert_lab_close(tone, truth)


def test_the_neck_counts_when_the_shoulders_are_seen_and_a_collar_does_not():
    face = synthetic_face()
    rgb, truth = skin_colour((58.0, 13.0, 21.0))
    photo = synthetic_photo(rgb, face)
    cx, cy = CENTRE
    neck_region = (slice(int(cy + 1.3 * EYE_DISTANCE), SIZE), slice(int(cx - 60), int(cx + 60)))
    photo[neck_region] = noisy(rgb, photo[neck_region].shape)
    seen = skin_tone(photo, face, pose_keypoints(shoulders_visibility=0.95))
    assert "neck" in {patch.name for patch in seen.patches}
    unseen = skin_tone(photo, face, pose_keypoints(shoulders_visibility=0.2))
    assert "neck" not in {patch.name for patch in unseen.patches}
    photo[neck_region] = (235, 235, 240)  # a white collar up to the chin
    collar = skin_tone(photo, face, pose_keypoints(shoulders_visibility=0.95))
    assert "neck" not in {patch.name for patch in collar.patches}
    assert_lab_close(collar, truth)


def test_the_correction_is_applied_before_measuring():
    face = synthetic_face()
    rgb, truth = skin_colour((64.0, 12.0, 20.0))
    gains = np.array([0.75, 0.95, 1.25])  # a blue cast
    cast = np.clip(synthetic_photo(rgb, face) * gains, 0, 255).astype(np.uint8)

    def undo_cast(pixels: np.ndarray) -> np.ndarray:
        return np.clip(np.round(pixels / gains), 0, 255).astype(np.uint8)

    assert_lab_close(skin_tone(cast, face, correct=undo_cast), truth)
    uncorrected = skin_tone(cast, face)
    assert uncorrected.lab is not None
    assert float(delta_e_2000(np.array(uncorrected.lab), truth)) > 5.0


def test_clipped_highlights_lower_the_confidence_with_a_note():
    face = synthetic_face()
    photo = synthetic_photo(skin_colour((70.0, 12.0, 18.0))[0], face)
    burnt = photo.copy()
    for sample in sample_patches(photo, face):
        box = sample.patch.box
        burnt[box.y : box.y + int(0.3 * box.height), box.x : box.x + box.width] = 255
    measured, clipped = skin_tone(photo, face), skin_tone(burnt, face)
    assert clipped.confidence < measured.confidence - 0.3
    assert any("clipped" in note for note in clipped.notes)


def test_patches_that_differ_lower_the_confidence_with_a_note():
    """One cheek in light shade: still skin, kept, but the measurement is less certain."""
    face = synthetic_face()
    photo = synthetic_photo(skin_colour((68.0, 12.0, 19.0))[0], face)
    shaded = photo.copy()
    cheek = patch_box(photo, face, "left_cheek")
    shaded[cheek.slices] = noisy(skin_colour((58.0, 12.0, 19.0))[0], shaded[cheek.slices].shape)
    measured, differing = skin_tone(photo, face), skin_tone(shaded, face)
    assert differing.patch_count == 3
    assert differing.confidence < measured.confidence - 0.2
    assert any("differ" in note for note in differing.notes)


def test_an_estimated_light_lowers_the_confidence_with_a_note():
    face = synthetic_face()
    photo = synthetic_photo(skin_colour((64.0, 12.0, 20.0))[0], face)
    measured, guessed = skin_tone(photo, face), skin_tone(photo, face, light_estimated=True)
    assert guessed.lab == measured.lab
    assert guessed.confidence < measured.confidence
    assert len(guessed.notes) == len(measured.notes) + 1


def test_a_small_face_is_less_certain_and_a_tiny_one_unknown():
    rgb = skin_colour((64.0, 12.0, 20.0))[0]
    large = synthetic_face()
    small = synthetic_face(eye_distance=12.0)
    tiny = synthetic_face(eye_distance=4.0)
    confident = skin_tone(synthetic_photo(rgb, large), large)
    unsure = skin_tone(synthetic_photo(rgb, large), small)  # the same skin around it
    assert unsure.status == "ok"
    assert unsure.confidence < confident.confidence
    assert any("small" in note for note in unsure.notes)
    unknown = skin_tone(synthetic_photo(rgb, large), tiny)
    assert (unknown.status, unknown.reason) == ("unknown", "face too small to sample skin")


def test_no_face_is_unknown():
    tone = skin_tone(np.zeros((64, 64, 3), dtype=np.uint8), None)
    assert (tone.status, tone.reason, tone.lab, tone.confidence) == (
        "unknown",
        "no face found",
        None,
        0.0,
    )


@pytest.mark.parametrize(
    ("value", "reason"), [(0, "light too dark"), (255, "skin overexposed (clipped)")]
)
def test_a_black_or_burnt_out_face_is_unknown(value, reason):
    face = synthetic_face()
    tone = skin_tone(np.full((SIZE, SIZE, 3), value, dtype=np.uint8), face)
    assert (tone.status, tone.reason) == ("unknown", reason)


# Real photos.


def load(eval_set, sample, name: str) -> np.ndarray:
    try:
        path = eval_set.path(name)
    except KeyError:
        path = sample.path(name)
    return np.asarray(Image.open(path).convert("RGB"))


def find_face(image: np.ndarray) -> FaceDetection | None:
    """detect_face, also on the photo in a grey border: BlazeFace misses a face filling it."""
    face = detect_face(image)
    if face is not None:
        return face
    border = max(image.shape[:2]) // 2
    padded = detect_face(imaging.padded(image, border))
    if padded is None:
        return None
    box = padded.box
    left, top = max(0, box.x - border), max(0, box.y - border)
    right = min(image.shape[1], box.x + box.width - border)
    bottom = min(image.shape[0], box.y + box.height - border)
    return replace(
        padded, box=Box(left, top, right - left, bottom - top), keypoints=padded.keypoints - border
    )


@pytest.fixture(scope="module")
def photos(eval_set, sample) -> dict[str, tuple[np.ndarray, FaceDetection | None]]:
    """Each photo and its face, detected once for the module."""
    names = (*LIGHTER, *DARKER, *GREYSCALE, *NO_FACE)
    loaded = {name: load(eval_set, sample, name) for name in names}
    return {name: (image, find_face(image)) for name, image in loaded.items()}


def test_lighter_skinned_faces_measure_lighter_than_darker_skinned_ones(photos):
    tones = {name: skin_tone(*photos[name]) for name in (*LIGHTER, *DARKER)}
    assert all(tone.status == "ok" for tone in tones.values()), tones
    lightest_dark = max(tones[name].ita_degrees for name in DARKER)
    darkest_light = min(tones[name].ita_degrees for name in LIGHTER)
    assert darkest_light > lightest_dark
    assert max(tones[name].monk for name in LIGHTER) < min(tones[name].monk for name in DARKER)


@pytest.mark.parametrize("name", GREYSCALE)
def test_a_greyscale_photo_has_no_skin_colour(photos, name):
    image, face = photos[name]
    assert face is not None
    tone = skin_tone(image, face)
    assert (tone.status, tone.reason) == ("unknown", "no colour information (a greyscale photo)")


def test_a_colour_photo_made_grey_loses_its_skin_colour(photos):
    image, face = photos["astronaut"]
    grey = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    assert skin_tone(image, face).status == "ok"
    assert skin_tone(grey, face).reason == "no colour information (a greyscale photo)"


@pytest.mark.parametrize("name", NO_FACE)
def test_a_photo_without_a_face_is_unknown(photos, name):
    image, face = photos[name]
    assert face is None
    tone = skin_tone(image, face)
    assert (tone.status, tone.reason) == ("unknown", "no face found")


@pytest.mark.parametrize("gains", [(0.6, 0.85, 1.35), (0.75, 1.25, 0.7)], ids=["blue", "green"])
def test_a_colour_cast_lowers_the_confidence(photos, gains):
    image, face = photos["astronaut"]
    cast = np.clip(image * np.array(gains), 0, 255).astype(np.uint8)
    original, coloured = skin_tone(image, face), skin_tone(cast, face)
    assert coloured.status == "ok"
    assert coloured.confidence < original.confidence - 0.2
    assert any("coloured light" in note for note in coloured.notes)


@pytest.mark.parametrize("name", ["astronaut", "obama_standing"])
def test_an_underexposed_face_is_less_certain_and_a_very_dark_one_unknown(photos, name):
    image, face = photos[name]
    original = skin_tone(image, face)
    dim = skin_tone((image * 0.3).astype(np.uint8), face)
    assert dim.status == "ok"
    assert dim.confidence < original.confidence - 0.2
    assert any("underexposed" in note for note in dim.notes)
    dark = skin_tone((image * 0.15).astype(np.uint8), face)
    assert (dark.status, dark.reason) == ("unknown", "light too dark")
