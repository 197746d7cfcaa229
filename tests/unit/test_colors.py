"""Dominant clothing colours on real photos (regions checked by eye) and on synthetic pixels."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from silhouette.service.stages.colors import colour_of
from silhouette.vision.colors import (
    CSS_COLORS,
    DominantColor,
    delta_e_2000,
    dominant_colors,
    nearest_css_name,
    rgb_to_lab,
)

# Regions (left, top, right, bottom) that were viewed and hold one garment each.
ASTRONAUT_SUIT = (60, 300, 125, 430)  # the orange spacesuit's sleeve and chest, left of the patch
ASTRONAUT_BACKDROP = (300, 80, 360, 150)  # the grey studio backdrop beside her head
ZIDANE_JACKET = (200, 450, 300, 650)  # the black suit jacket of the man on the left
BUS_JEANS = (150, 720, 185, 800)  # the dark blue jeans of the man on the left, right leg

ORANGE_FAMILY = {"orangered", "tomato", "coral", "darkorange", "orange", "chocolate", "sienna"}
ACHROMATIC = {
    "black", "dimgray", "gray", "darkgray", "silver", "lightgray", "gainsboro", "whitesmoke",
    "white", "darkslategray", "slategray", "lightslategray",
}  # fmt: skip
RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 200, 0)


def photo(sample, name: str) -> np.ndarray:
    with Image.open(sample.path(name)) as image:
        return np.asarray(image.convert("RGB"))


def region_mask(shape: tuple[int, ...], *regions: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    for left, top, right, bottom in regions:
        mask[top:bottom, left:right] = True
    return mask


def half_red_half_blue(background: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A 100x100 garment (left half red, right half blue) in a 200x200 picture."""
    image = np.full((200, 200, 3), background, dtype=np.uint8)
    image[50:150, 50:100] = RED
    image[50:150, 100:150] = BLUE
    return image, region_mask(image.shape, (50, 50, 150, 150))


def test_astronaut_suit_is_orange(sample):
    image = photo(sample, "astronaut")

    colors = dominant_colors(image, region_mask(image.shape, ASTRONAUT_SUIT))

    assert colors[0].name in ORANGE_FAMILY
    assert colors[0].fraction > 0.9
    red, green, blue = colors[0].rgb
    assert red > green > blue


def test_background_around_the_mask_is_not_counted(sample):
    image = photo(sample, "astronaut")
    suit_only = dominant_colors(image, region_mask(image.shape, ASTRONAUT_SUIT))
    suit_and_backdrop = dominant_colors(
        image, region_mask(image.shape, ASTRONAUT_SUIT, ASTRONAUT_BACKDROP)
    )

    assert not {color.name for color in suit_only} & ACHROMATIC
    # The same region of backdrop, once inside the mask, does show up: the check above has teeth.
    assert {color.name for color in suit_and_backdrop} & ACHROMATIC


def test_black_suit_jacket_is_black(sample):
    image = photo(sample, "zidane")

    colors = dominant_colors(image, region_mask(image.shape, ZIDANE_JACKET))

    assert [color.name for color in colors] == ["black"]
    assert colors[0].fraction == 1.0


def test_dark_denim_is_named_by_perceived_colour_not_rgb_distance(sample):
    image = photo(sample, "bus")

    colors = dominant_colors(image, region_mask(image.shape, BUS_JEANS))

    # About (7, 13, 42): nearest to black in RGB, but seen as a very dark blue.
    assert colors[0].name in {"midnightblue", "navy", "darkblue"}
    assert colors[0].fraction > 0.7


def test_half_red_half_blue_gives_two_colours_of_half_each():
    image, mask = half_red_half_blue(background=(0, 0, 0))

    colors = dominant_colors(image, mask)

    assert [(color.name, color.hex) for color in colors] in (
        [("red", "#ff0000"), ("blue", "#0000ff")],
        [("blue", "#0000ff"), ("red", "#ff0000")],
    )
    assert [color.fraction for color in colors] == pytest.approx([0.5, 0.5], abs=0.01)
    assert colors[0].rgb in (RED, BLUE)


def test_pixels_outside_the_mask_never_influence_the_result():
    on_green, mask = half_red_half_blue(background=GREEN)
    on_white, _ = half_red_half_blue(background=(255, 255, 255))

    colors = dominant_colors(on_green, mask)

    assert "green" not in {color.name for color in colors}
    assert all(color.rgb[1] < 10 for color in colors)
    assert colors == dominant_colors(on_white, mask)


def test_near_duplicate_shades_merge_into_one_colour():
    image = np.zeros((120, 120, 3), dtype=np.uint8)
    # Three reds a person would not tell apart, and one clearly different navy.
    for index, shade in enumerate([(200, 30, 30), (206, 34, 28), (194, 28, 34)]):
        image[index * 30 : (index + 1) * 30] = shade
    image[90:] = (20, 30, 90)

    colors = dominant_colors(image, np.ones(image.shape[:2], dtype=bool))

    assert len(colors) == 2
    assert colors[0].fraction == pytest.approx(0.75, abs=0.01)
    assert colors[0].name in {"firebrick", "crimson", "red", "brown"}
    assert colors[1].name in {"midnightblue", "darkslateblue", "navy", "darkblue"}


def test_colours_below_the_minimum_share_are_dropped_and_shares_renormalised():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[:, :] = (0, 0, 200)
    image[:2, :] = (255, 255, 0)  # a 2% yellow stripe: stitching, not a garment colour

    colors = dominant_colors(image, np.ones(image.shape[:2], dtype=bool))

    assert [color.name for color in colors] == ["mediumblue"]
    assert colors[0].fraction == 1.0


@pytest.mark.parametrize("empty", [np.zeros((64, 64), dtype=bool), np.zeros((64, 64), np.uint8)])
def test_empty_mask_gives_no_colours(empty):
    image = np.full((64, 64, 3), 128, dtype=np.uint8)

    assert dominant_colors(image, empty) == []


def test_uint8_mask_of_255_means_the_same_as_a_bool_mask(sample):
    image = photo(sample, "astronaut")
    mask = region_mask(image.shape, ASTRONAUT_SUIT)

    assert dominant_colors(image, mask.astype(np.uint8) * 255) == dominant_colors(image, mask)


@pytest.mark.parametrize("as_rgb", [False, True])
def test_greyscale_photo_gives_grey_colours(sample, as_rgb):
    with Image.open(sample.path("camera")) as image:
        grey = np.asarray(image.convert("RGB") if as_rgb else image.convert("L"))

    colors = dominant_colors(grey, np.ones(grey.shape[:2], dtype=bool))

    assert colors
    for color in colors:
        assert max(color.rgb) - min(color.rgb) <= 1
        assert color.name in ACHROMATIC


@pytest.mark.parametrize("max_colors", [1, 3, 5, 8])
def test_shares_sum_to_one_largest_first(sample, max_colors):
    image = photo(sample, "bus")

    colors = dominant_colors(image, np.ones(image.shape[:2], dtype=bool), max_colors)

    assert 1 <= len(colors) <= max_colors
    assert sum(color.fraction for color in colors) == pytest.approx(1.0)
    assert [c.fraction for c in colors] == sorted((c.fraction for c in colors), reverse=True)


def test_same_input_same_colours(sample):
    image = photo(sample, "bus")
    mask = region_mask(image.shape, (0, 300, 810, 900))

    assert dominant_colors(image, mask) == dominant_colors(image, mask)


def test_twelve_megapixel_photo_with_a_large_mask_is_fast(sample):
    image = cv2.resize(photo(sample, "astronaut"), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    mask = region_mask(image.shape, (200, 500, 3200, 2900))  # 7.2 million pixels

    started = time.perf_counter()
    colors = dominant_colors(image, mask)
    elapsed = time.perf_counter() - started

    assert colors
    assert elapsed < 3.0  # ~0.1 s measured; generous for a loaded test machine


def test_rejects_a_mask_of_another_size_and_a_colour_count_below_one():
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="does not match"):
        dominant_colors(image, np.ones((10, 11), dtype=bool))
    with pytest.raises(ValueError, match="max_colors"):
        dominant_colors(image, np.ones((10, 10), dtype=bool), max_colors=0)


def test_facts_are_json_ready():
    colors = [DominantColor(hex="#d7603a", rgb=(215, 96, 58), fraction=2 / 3, name="orangered")]

    facts = [colour_of(color).model_dump(mode="json") for color in colors]

    assert facts == [
        {"hex": "#d7603a", "rgb": [215, 96, 58], "fraction": 0.6667, "name": "orangered"}
    ]
    assert json.loads(json.dumps(facts)) == facts


@pytest.mark.parametrize(
    ("lab1", "lab2", "expected"),
    [
        # Sharma, Wu and Dalal (2005), table 1, including the hue-angle edge cases.
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
        ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
        ((50.0, -0.001, 2.49), (50.0, 0.0009, -2.49), 4.8045),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((2.0776, 0.0795, -1.135), (0.9033, -0.0636, -0.5514), 0.9082),
    ],
)
def test_delta_e_2000_matches_the_published_test_data(lab1, lab2, expected):
    assert float(delta_e_2000(np.array(lab1), np.array(lab2))) == pytest.approx(expected, abs=1e-4)
    assert float(delta_e_2000(np.array(lab2), np.array(lab1))) == pytest.approx(expected, abs=1e-4)


def test_every_css_colour_is_named_after_itself_or_a_synonym():
    assert len(CSS_COLORS) == 148
    for name, hex_color in CSS_COLORS.items():
        rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)
        assert CSS_COLORS[nearest_css_name(rgb_to_lab(rgb))] == hex_color, name
