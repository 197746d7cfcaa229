"""Scenes rendered into real photos for the calibration tests: an ID-1 card or a colour chart
drawn through a pinhole camera at a known pose (so its true corners and scale are known), and
colour casts applied in linear light."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageOps

from silhouette.vision.calibration import COLOR_CHECKER_SRGB

CARD_MM = (85.60, 53.98)  # ISO/IEC 7810 ID-1
CARD_RADIUS_MM = 3.18
TEXTURE_PX_PER_MM = 10
WHITE = (238, 238, 238)
INK = (40, 40, 48)
TUNGSTEN_LIKE = (1.0, 0.8, 0.55)  # gains on linear RGB
# CIE illuminant A (2856 K) in linear sRGB: XYZ (1.09850, 1, 0.35585) through the inverse sRGB
# matrix of IEC 61966-2-1, scaled to red 1.
ILLUMINANT_A = (1.0, 0.4478, 0.1264)


# ------------------------------------------------------------------ rendering


def srgb_decode(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def srgb_encode(values: np.ndarray) -> np.ndarray:
    values = np.clip(np.asarray(values, dtype=np.float64), 0, 1)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


def with_cast(photo: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """The photo as if lit by a light of these linear RGB gains."""
    linear = srgb_decode(photo / 255) * np.array(gains)
    return np.round(srgb_encode(linear) * 255).astype(np.uint8)


def load(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))


def card_texture(
    size_mm: tuple[float, float] = CARD_MM,
    radius_mm: float = CARD_RADIUS_MM,
    colour: tuple[int, int, int] = WHITE,
    ink: tuple[int, int, int] = INK,
) -> tuple[np.ndarray, np.ndarray]:
    """A card's back at 10 px/mm (a stripe 5-17 mm from the top, three lines of print) and its
    alpha with rounded corners."""
    width, height = (round(mm * TEXTURE_PX_PER_MM) for mm in size_mm)
    texture = np.empty((height, width, 3), np.uint8)
    texture[:] = colour
    mm = TEXTURE_PX_PER_MM
    texture[5 * mm : 17 * mm] = ink
    for line, length in enumerate((50, 38, 44)):
        top = (30 + 6 * line) * mm
        texture[top : top + 25, 6 * mm : (6 + length) * mm] = ink
    alpha = np.zeros((height, width), np.uint8)
    radius = round(radius_mm * mm)
    if radius == 0:
        alpha[:] = 255
        return texture, alpha
    cv2.rectangle(alpha, (radius, 0), (width - 1 - radius, height - 1), 255, -1)
    cv2.rectangle(alpha, (0, radius), (width - 1, height - 1 - radius), 255, -1)
    for x, y in ((radius, radius), (width - 1 - radius, radius), (radius, height - 1 - radius)):
        cv2.circle(alpha, (x, y), radius, 255, -1, lineType=cv2.LINE_AA)
    cv2.circle(alpha, (width - 1 - radius, height - 1 - radius), radius, 255, -1, cv2.LINE_AA)
    return texture, alpha


def chart_texture() -> tuple[np.ndarray, np.ndarray]:
    """A ColorChecker Classic: 6 x 4 patches of the reference colours on a black frame, at
    10 px per (arbitrary) mm: 4 mm patches, 0.8 mm gaps, a 1.4 mm border."""
    patch, gap, border = 40, 8, 14
    width, height = 6 * patch + 5 * gap + 2 * border, 4 * patch + 3 * gap + 2 * border
    chart = np.full((height, width, 3), 25, np.uint8)
    for index, colour in enumerate(COLOR_CHECKER_SRGB.astype(np.uint8)):
        row, column = divmod(index, 6)
        top, left = border + row * (patch + gap), border + column * (patch + gap)
        chart[top : top + patch, left : left + patch] = colour
    return chart, np.full((height, width), 255, np.uint8)


def pinhole_homography(
    image_size: tuple[int, int],
    centre_px: tuple[float, float],
    width_px: float,
    tilt: float,
    tilt_axis: float,
    roll: float,
    size_mm: tuple[float, float] = CARD_MM,
    focal: float = 1.2,
) -> np.ndarray:
    """Object mm -> image px for a flat object `size_mm` whose centre is seen at `centre_px`,
    its width about `width_px` long, turned by `tilt` degrees about an axis in its plane
    (`tilt_axis` degrees from its width), then rolled; focal length `focal` x the photo's long
    side, principal point at the centre."""
    height, width = image_size
    f = focal * max(height, width)
    camera = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])

    def about_z(degrees: float) -> np.ndarray:
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    c, s = np.cos(np.radians(tilt)), np.sin(np.radians(tilt))
    about_x = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    rotation = about_z(roll) @ about_z(tilt_axis) @ about_x @ about_z(-tilt_axis)
    distance = f * size_mm[0] / width_px
    offset = [
        (centre_px[0] - (width - 1) / 2) * distance / f,
        (centre_px[1] - (height - 1) / 2) * distance / f,
    ]
    translation = np.array([*offset, distance])
    centred = np.array([[1, 0, -size_mm[0] / 2], [0, 1, -size_mm[1] / 2], [0, 0, 1]])
    homography = camera @ np.column_stack([rotation[:, 0], rotation[:, 1], translation]) @ centred
    return homography / homography[2, 2]


def render(
    photo: np.ndarray, homography: np.ndarray, texture: np.ndarray, alpha: np.ndarray
) -> np.ndarray:
    """`texture` (10 px/mm) drawn into a copy of `photo` through `homography` (mm -> px),
    supersampled 4x so its edges are anti-aliased like a camera's."""
    supersample = 4
    scene = photo.copy()
    height, width = scene.shape[:2]
    texture_mm = np.array(
        [
            [1 / TEXTURE_PX_PER_MM, 0, 0.5 / TEXTURE_PX_PER_MM],
            [0, 1 / TEXTURE_PX_PER_MM, 0.5 / TEXTURE_PX_PER_MM],
            [0, 0, 1],
        ]
    )
    to_image = homography @ texture_mm
    outline = cv2.perspectiveTransform(
        np.float32(
            [[[0, 0], [alpha.shape[1], 0], [alpha.shape[1], alpha.shape[0]], [0, alpha.shape[0]]]]
        )
        - 0.5,
        to_image,
    )[0]
    left, top = np.maximum(np.floor(outline.min(axis=0)).astype(int) - 2, 0)
    right, bottom = np.minimum(np.ceil(outline.max(axis=0)).astype(int) + 3, [width, height])
    shift = (supersample - 1) / 2
    to_region = np.array(
        [
            [supersample, 0, shift - supersample * left],
            [0, supersample, shift - supersample * top],
            [0, 0, 1],
        ]
    )
    region_size = ((right - left) * supersample, (bottom - top) * supersample)

    def drawn(layer: np.ndarray) -> np.ndarray:
        big = cv2.warpPerspective(layer, to_region @ to_image, region_size, flags=cv2.INTER_LINEAR)
        return cv2.resize(big, (right - left, bottom - top), interpolation=cv2.INTER_AREA).astype(
            np.float64
        )

    colour, cover = drawn(texture), drawn(alpha)[..., None] / 255
    background = scene[top:bottom, left:right].astype(np.float64)
    scene[top:bottom, left:right] = np.round(background * (1 - cover) + colour * cover).astype(
        np.uint8
    )
    return scene


def true_corners(homography: np.ndarray, size_mm: tuple[float, float] = CARD_MM) -> np.ndarray:
    width, height = size_mm
    corners = np.float64([[[0, 0], [width, 0], [width, height], [0, height]]])
    return cv2.perspectiveTransform(corners, homography)[0]


def true_mm_per_px(homography: np.ndarray) -> float:
    """From the image of a small cross at the card's centre (finite differences)."""
    centre, half = np.array(CARD_MM) / 2, 0.05
    ends = np.float64(
        [[centre - [half, 0], centre + [half, 0], centre - [0, half], centre + [0, half]]]
    )
    left, right, up, down = cv2.perspectiveTransform(ends, homography)[0]
    px_per_mm = np.sqrt(np.linalg.norm(right - left) * np.linalg.norm(down - up)) / (2 * half)
    return float(1 / px_per_mm)
