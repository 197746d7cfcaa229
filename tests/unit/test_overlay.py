"""The overlay picture: decoded and checked pixel by pixel, on a real photo and on flat images."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from silhouette.vision.overlay import POSE_CONNECTIONS, render_overlay
from silhouette.vision.types import LANDMARK_NAMES as LANDMARKS
from silhouette.vision.types import Box, DominantColor, Keypoint

GREY = (128, 128, 128)
JPEG_TOLERANCE = 12  # per channel, inside flat areas at quality 90
# Hand-placed on the astronaut photo (512 x 512): her face, shoulders and right arm.
ASTRONAUT_POINTS = {
    "nose": (224, 128), "left_eye": (243, 105), "right_eye": (203, 105),
    "mouth_left": (238, 148), "mouth_right": (210, 148), "left_shoulder": (330, 262),
    "right_shoulder": (92, 262), "right_elbow": (48, 420), "right_wrist": (140, 492),
}  # fmt: skip
ASTRONAUT_PERSON = Box(18, 14, 350, 498)
ASTRONAUT_FACE = Box(182, 68, 94, 112)
ORANGE = DominantColor(hex="#ce5d39", rgb=(206, 93, 57), fraction=0.7, name="chocolate")
BLACK = DominantColor(hex="#0c0504", rgb=(12, 5, 4), fraction=0.3, name="black")


def keypoint(
    name: str, x: float, y: float, visibility: float = 0.99, size: tuple[int, int] = (512, 512)
) -> Keypoint:
    """A landmark at pixel (x, y) of a photo of `size` (width, height)."""
    nx, ny = x / size[0], y / size[1]
    return Keypoint(name=name, x=x, y=y, nx=nx, ny=ny, z=0.0, visibility=visibility)


def decoded(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG"
        return np.asarray(image.convert("RGB")).astype(np.int16)


def flat(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, dtype=np.uint8)


def changed(overlay: np.ndarray, original: np.ndarray, x: int, y: int) -> bool:
    return bool(np.abs(overlay[y, x] - original[y, x].astype(np.int16)).max() > 40)


@pytest.fixture(scope="module")
def astronaut(sample) -> np.ndarray:
    with Image.open(sample.path("astronaut")) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def astronaut_overlay(astronaut) -> np.ndarray:
    points = [keypoint(name, x, y) for name, (x, y) in ASTRONAUT_POINTS.items()]
    jpeg = render_overlay(astronaut, points, ASTRONAUT_PERSON, [ORANGE, BLACK], ASTRONAUT_FACE)
    return decoded(jpeg)


def test_output_is_the_photo_with_a_legend_strip_below(astronaut, astronaut_overlay):
    height, width = astronaut.shape[:2]

    assert astronaut_overlay.shape[1] == width
    assert astronaut_overlay.shape[0] > height
    # Away from the drawings (the backdrop right of the person box) the photo is unchanged.
    untouched = np.abs(astronaut_overlay[100:200, 400:500] - astronaut[100:200, 400:500])
    assert untouched.mean() < 3


def test_person_and_face_box_edges_are_drawn(astronaut, astronaut_overlay):
    person, face = ASTRONAUT_PERSON, ASTRONAUT_FACE

    assert changed(astronaut_overlay, astronaut, person.x, person.y + person.height // 2)
    assert changed(astronaut_overlay, astronaut, person.x + person.width - 1, 300)
    assert changed(astronaut_overlay, astronaut, face.x + face.width // 2, face.y + face.height - 1)


def test_legend_swatches_show_the_colours(astronaut, astronaut_overlay):
    legend = astronaut_overlay[astronaut.shape[0] :]

    for color in (ORANGE, BLACK):
        close = np.all(np.abs(legend - np.array(color.rgb)) <= JPEG_TOLERANCE, axis=2)
        # Take the largest square of matching pixels: the swatch, not stray text pixels.
        _, labels, stats, _ = cv2.connectedComponentsWithStats(close.astype(np.uint8))
        left, top, width, height, area = stats[1:][np.argmax(stats[1:, cv2.CC_STAT_AREA])]
        assert width >= 8 and height >= 8, color
        assert 0.7 < width / height < 1.4, color
        assert area > 0.6 * width * height, color


def test_bones_to_an_invisible_keypoint_are_not_drawn():
    image = flat(400, 400)
    points = [
        keypoint("left_shoulder", 100, 100),
        keypoint("left_hip", 300, 100),
        keypoint("left_elbow", 100, 300, visibility=0.2),
    ]

    overlay = decoded(render_overlay(image, points, Box(360, 360, 30, 30), []))

    assert changed(overlay, image, 200, 100)  # shoulder-hip: both visible
    assert not changed(overlay, image, 100, 200)  # shoulder-elbow: the elbow is not
    assert not changed(overlay, image, 100, 300)  # and the elbow gets no dot
    assert changed(overlay, image, 100, 100)  # the visible shoulder does


def test_clothing_keeps_its_colour_and_the_rest_is_dimmed():
    image = flat(300, 300)
    mask = np.zeros((300, 300), dtype=np.uint8)
    mask[150:250, 50:150] = 255

    overlay = decoded(render_overlay(image, [], Box(200, 20, 80, 80), [], clothing_mask=mask))

    inside, outside = overlay[200, 100], overlay[60, 100]
    assert np.abs(inside - np.array(GREY)).max() <= JPEG_TOLERANCE
    assert (outside < np.array(GREY) * 0.6).all() and (outside > np.array(GREY) * 0.3).all()


@pytest.mark.parametrize("side", [300, 3000])
def test_small_and_large_photos_render(side):
    image = flat(side, side * 3 // 4)
    scale, size = side / 300, (side, side * 3 // 4)
    points = [
        keypoint("left_shoulder", 200 * scale, 60 * scale, size=size),
        keypoint("right_shoulder", 100 * scale, 60 * scale, size=size),
        keypoint("left_ankle", 200 * scale, 400 * scale, size=size),  # below the frame: not drawn
    ]
    box = Box(round(50 * scale), round(30 * scale), round(200 * scale), round(180 * scale))

    overlay = decoded(render_overlay(image, points, box, [ORANGE, BLACK], clothing_mask=None))

    assert overlay.shape[1] == side
    assert overlay.shape[0] > image.shape[0]
    assert changed(overlay, image, round(150 * scale), round(60 * scale))


def test_strokes_and_legend_grow_with_the_photo():
    def box_edge_width_and_legend_height(side: int) -> tuple[int, int]:
        image = flat(side, side)
        box = Box(side // 4, side // 4, side // 2, side // 2)
        overlay = decoded(render_overlay(image, [], box, [ORANGE]))
        row = overlay[side // 2, : side // 2]
        edge = np.abs(row - np.array(GREY)).max(axis=1) > 40
        return int(edge.sum()), overlay.shape[0] - side

    small_edge, small_legend = box_edge_width_and_legend_height(300)
    large_edge, large_legend = box_edge_width_and_legend_height(3000)

    assert small_edge >= 2
    assert large_edge >= 4 * small_edge
    assert large_legend >= 4 * small_legend


def test_a_narrow_photo_still_fits_its_legend():
    colors = [ORANGE, BLACK] * 2

    overlay = decoded(render_overlay(flat(64, 200), [], Box(5, 5, 50, 150), colors))

    assert overlay.shape[1] == 64


def test_rejects_a_non_rgb_image_and_a_mask_of_another_size():
    with pytest.raises(ValueError, match="RGB"):
        render_overlay(np.zeros((50, 50), dtype=np.uint8), [], Box(0, 0, 10, 10), [])
    with pytest.raises(ValueError, match="mask"):
        render_overlay(flat(50, 50), [], Box(0, 0, 10, 10), [], clothing_mask=np.ones((5, 5)))


def test_connections_are_mediapipes_pose_connections():
    assert len(POSE_CONNECTIONS) == 35
    assert len(set(POSE_CONNECTIONS)) == 35
    assert {name for pair in POSE_CONNECTIONS for name in pair} == set(LANDMARKS)


def test_an_unsure_person_gets_a_dashed_box_and_a_sure_one_a_whole_one():
    image = flat(400, 400)
    box = Box(50, 100, 300, 250)

    def edge_drawn(confidence: float) -> np.ndarray:
        overlay = decoded(render_overlay(image, [], box, [], confidence=confidence))
        # Along the bottom edge, away from the corners and the label tab.
        bottom = box.y + box.height - 1
        return np.array([changed(overlay, image, x, bottom) for x in range(80, 320)])

    sure, unsure = edge_drawn(0.97), edge_drawn(0.6)

    assert sure.all()
    assert 0.3 < unsure.mean() < 0.75  # dashes and gaps


def test_a_keypoint_seen_but_not_surely_gets_a_hollow_dot():
    size = (1000, 1000)  # dots of 6 px radius
    image = flat(*size)
    points = [
        keypoint("nose", 300, 500, visibility=0.95, size=size),
        keypoint("left_ear", 700, 500, visibility=0.6, size=size),
    ]

    overlay = decoded(render_overlay(image, points, Box(900, 900, 50, 50), []))

    assert changed(overlay, image, 300, 500)  # sure: a filled dot
    assert not changed(overlay, image, 700, 500)  # unsure: the photo shows through its middle
    assert changed(overlay, image, 700 + 5, 500)  # its ring


def test_the_legend_says_why_there_are_no_colours():
    image = flat(600, 300)

    def legend(note: str | None) -> np.ndarray:
        overlay = decoded(render_overlay(image, [], Box(5, 5, 50, 50), [], colors_note=note))
        return overlay[300:]

    plain, explained = legend(None), legend("too little clothing visible")

    # More text on the strip: the reason is written after "no clothing colours".
    written = [int((strip.max(axis=2) > 128).sum()) for strip in (plain, explained)]
    assert written[1] > 1.5 * written[0]
