"""Overlay: the photo with what the pipeline found drawn on it, so a person can check the
result at a glance: the clothing outlined (the rest dimmed), the pose skeleton, the person and
face boxes, and a legend strip below the photo with the clothing colours (or why there are none).
What is uncertain looks it: a person the models only partly agree on gets a dashed box and a
"person?" tab with the probability, a keypoint seen but not surely gets a hollow dot.

The output is a JPEG as wide as the photo and taller by the legend strip, which never covers the
photo. Strokes, dots and text are sized from the photo's longer side, so the overlay reads the
same on a 300 px thumbnail and on a 4000 px camera original once both are fitted to a screen."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from silhouette.vision.evidence import SURE_PERSON
from silhouette.vision.types import Box, DominantColor, Keypoint

# MediaPipe's POSE_CONNECTIONS (mediapipe.solutions.pose), by landmark name.
POSE_CONNECTIONS: tuple[tuple[str, str], ...] = (
    ("nose", "left_eye_inner"), ("left_eye_inner", "left_eye"), ("left_eye", "left_eye_outer"),
    ("left_eye_outer", "left_ear"), ("nose", "right_eye_inner"),
    ("right_eye_inner", "right_eye"), ("right_eye", "right_eye_outer"),
    ("right_eye_outer", "right_ear"), ("mouth_left", "mouth_right"),
    ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"), ("left_wrist", "left_pinky"), ("left_wrist", "left_index"),
    ("left_wrist", "left_thumb"), ("left_pinky", "left_index"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("right_wrist", "right_pinky"), ("right_wrist", "right_index"),
    ("right_wrist", "right_thumb"), ("right_pinky", "right_index"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"), ("left_hip", "right_hip"),
    ("left_hip", "left_knee"), ("right_hip", "right_knee"), ("left_knee", "left_ankle"),
    ("right_knee", "right_ankle"), ("left_ankle", "left_heel"), ("right_ankle", "right_heel"),
    ("left_heel", "left_foot_index"), ("right_heel", "right_foot_index"),
    ("left_ankle", "left_foot_index"), ("right_ankle", "right_foot_index"),
)  # fmt: skip
JPEG_QUALITY = 90
# Keypoints seen less surely than this (but seen: VISIBLE and above) get a hollow dot.
SURE_KEYPOINT = 0.8

# RGB. The person's left and right sides in different colours, as MediaPipe draws them, so a
# mirrored skeleton is easy to spot.
LEFT_SIDE = (255, 145, 0)
RIGHT_SIDE = (0, 176, 255)
MIDLINE = (255, 255, 255)
PERSON_BOX = (0, 230, 118)
FACE_BOX = (255, 214, 0)
MASK_OUTLINE = (224, 64, 251)
# Outside the clothing the photo is dimmed, not the clothing tinted: the garment keeps its real
# colour, so it can be compared by eye with its legend swatch.
OUTSIDE_BRIGHTNESS = 0.45
OUTLINE = (0, 0, 0)  # under every stroke, so it stands out on light and dark photos alike
LEGEND_BACKGROUND = (32, 32, 32)
LEGEND_TEXT = (240, 240, 240)
SWATCH_EDGE = (128, 128, 128)  # keeps black and near-background swatches visible


@dataclass(frozen=True)
class _Sizes:
    """Drawing sizes in pixels for one photo."""

    stroke: int
    outline: int
    dot_radius: int
    font: int
    padding: int

    @classmethod
    def for_photo(cls, width: int, height: int) -> _Sizes:
        # Proportional to the longer side, with floors that keep a thumbnail legible.
        unit = max(width, height) / 1000
        stroke = max(2, round(4 * unit))
        return cls(
            stroke=stroke,
            outline=max(1, round(stroke / 3)),
            dot_radius=max(3, round(1.5 * stroke)),
            font=max(11, round(30 * unit)),
            padding=max(3, round(12 * unit)),
        )


def render_overlay(
    image: np.ndarray,
    keypoints: list[Keypoint],
    bbox: Box,
    colors: list[DominantColor],
    face_box: Box | None = None,
    clothing_mask: np.ndarray | None = None,
    confidence: float | None = None,
    colors_note: str | None = None,
    face_label: str = "face",
) -> bytes:
    """A JPEG of the photo (RGB uint8, H x W x 3) annotated with the clothing mask (nonzero =
    clothing), the skeleton of the keypoints seen inside the photo, the person and face
    boxes (the person's with its `confidence`), and a legend strip of colour swatches (hex,
    name, share) appended below, or `colors_note` when there are none. The face's tab says
    `face_label` (what the face stage read)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    sizes = _Sizes.for_photo(width, height)
    canvas = image.copy()
    if clothing_mask is not None:
        _show_mask(canvas, clothing_mask, sizes)
    unsure = confidence is not None and confidence < SURE_PERSON
    _draw_box(canvas, bbox, PERSON_BOX, sizes, dashed=unsure)
    if face_box is not None:
        _draw_box(canvas, face_box, FACE_BOX, sizes)
    _draw_skeleton(canvas, keypoints, sizes)

    legend = _Legend(colors, colors_note, width, sizes)
    overlay = Image.new("RGB", (width, height + legend.height), LEGEND_BACKGROUND)
    overlay.paste(Image.fromarray(canvas))
    draw = ImageDraw.Draw(overlay)
    label = "person?" if unsure else "person"
    if confidence is not None:
        label += f" {confidence:.0%}"
    _label_box(draw, bbox, label, PERSON_BOX, legend.font, sizes)
    if face_box is not None:
        # Under the face: a face filling the photo has the person's tab on its top corner.
        _label_box(draw, face_box, face_label, FACE_BOX, legend.font, sizes, below_within=height)
    legend.draw(draw, top=height)
    output = io.BytesIO()
    overlay.save(output, format="JPEG", quality=JPEG_QUALITY)
    return output.getvalue()


def _show_mask(canvas: np.ndarray, mask: np.ndarray, sizes: _Sizes) -> None:
    """Dim everything but the clothing and trace its outline, in place."""
    if mask.shape != canvas.shape[:2]:
        raise ValueError(f"clothing mask {mask.shape} does not match image {canvas.shape[:2]}")
    selected = (mask != 0).astype(np.uint8)
    # Scalar arithmetic and a masked copy: no boolean indexing, which costs several times more
    # on a 12-megapixel photo.
    dimmed = cv2.convertScaleAbs(canvas, alpha=OUTSIDE_BRIGHTNESS)
    cv2.copyTo(dimmed, 1 - selected, canvas)
    contours, _ = cv2.findContours(selected, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, MASK_OUTLINE, max(1, sizes.stroke // 2), cv2.LINE_AA)


def _draw_box(
    canvas: np.ndarray,
    box: Box,
    color: tuple[int, int, int],
    sizes: _Sizes,
    dashed: bool = False,
) -> None:
    left, top = box.x, box.y
    right, bottom = box.x + box.width - 1, box.y + box.height - 1
    sides = [((left, top), (right, top)), ((right, top), (right, bottom))]
    sides += [((right, bottom), (left, bottom)), ((left, bottom), (left, top))]
    strokes = [dash for side in sides for dash in _dashes(*side, sizes)] if dashed else sides
    for width, stroke_color in ((sizes.stroke + 2 * sizes.outline, OUTLINE), (sizes.stroke, color)):
        for start, end in strokes:
            cv2.line(canvas, start, end, stroke_color, width)


def _dashes(
    start: tuple[int, int], end: tuple[int, int], sizes: _Sizes
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The line from `start` to `end` as dashes, with gaps that stay open once the dashes'
    round ends and outlines are drawn."""
    length = math.dist(start, end)
    dash = 4 * sizes.stroke
    period = 2 * dash + 2 * (sizes.stroke + sizes.outline)
    count = max(1, math.ceil(length / period))
    (x0, y0), (x1, y1) = start, end

    def at(distance: float) -> tuple[int, int]:
        share = min(1.0, distance / length) if length else 0.0
        return round(x0 + share * (x1 - x0)), round(y0 + share * (y1 - y0))

    return [(at(i * period), at(i * period + dash)) for i in range(count)]


def _draw_skeleton(canvas: np.ndarray, keypoints: list[Keypoint], sizes: _Sizes) -> None:
    # A landmark MediaPipe only guesses (occluded, or beyond the photo's edge) gets no dot and
    # no bone, rather than a confident-looking line to nowhere.
    visible = {point.name: point for point in keypoints if point.usable}
    bones = [(visible[a], visible[b]) for a, b in POSE_CONNECTIONS if a in visible and b in visible]
    unsure = [point for point in visible.values() if point.visibility < SURE_KEYPOINT]
    # A hollow dot shows the photo in its middle, as it was before any bone crossed it.
    hole_radius = sizes.dot_radius - max(1, sizes.stroke // 2)
    holes = [_Hole.cut(canvas, _pixel(point), hole_radius) for point in unsure]
    # All outlines first, so no dark edge crosses a bone drawn before it.
    for start, end in bones:
        outlined = sizes.stroke + 2 * sizes.outline
        cv2.line(canvas, _pixel(start), _pixel(end), OUTLINE, outlined, cv2.LINE_AA)
    for start, end in bones:
        color = _side_color(start.name) if _side(start.name) == _side(end.name) else MIDLINE
        cv2.line(canvas, _pixel(start), _pixel(end), color, sizes.stroke, cv2.LINE_AA)
    for point in visible.values():
        center = _pixel(point)
        cv2.circle(canvas, center, sizes.dot_radius + sizes.outline, OUTLINE, -1, cv2.LINE_AA)
        cv2.circle(canvas, center, sizes.dot_radius, _side_color(point.name), -1, cv2.LINE_AA)
    for hole in holes:
        hole.restore(canvas)


@dataclass(frozen=True)
class _Hole:
    """A disc of the canvas kept aside, to be put back over what is drawn on it."""

    corner: tuple[int, int]
    pixels: np.ndarray
    disc: np.ndarray

    @classmethod
    def cut(cls, canvas: np.ndarray, center: tuple[int, int], radius: int) -> _Hole:
        radius = max(1, radius)
        left, top = max(0, center[0] - radius), max(0, center[1] - radius)
        pixels = canvas[top : center[1] + radius + 1, left : center[0] + radius + 1].copy()
        disc = np.zeros(pixels.shape[:2], np.uint8)
        cv2.circle(disc, (center[0] - left, center[1] - top), radius, 1, -1)
        return cls((left, top), pixels, disc)

    def restore(self, canvas: np.ndarray) -> None:
        (left, top), (height, width) = self.corner, self.disc.shape
        inside = self.disc > 0
        canvas[top : top + height, left : left + width][inside] = self.pixels[inside]


def _pixel(point: Keypoint) -> tuple[int, int]:
    return round(point.x), round(point.y)


def _side(name: str) -> str:
    return name.split("_", 1)[0] if name.startswith(("left_", "right_")) else "middle"


def _side_color(name: str) -> tuple[int, int, int]:
    return {"left": LEFT_SIDE, "right": RIGHT_SIDE}.get(_side(name), MIDLINE)


def _label_box(
    draw: ImageDraw.ImageDraw,
    box: Box,
    text: str,
    color: tuple[int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    sizes: _Sizes,
    below_within: int | None = None,
) -> None:
    """A tab in the box's colour on its top-left corner: above the box, or inside it when the
    box touches the top of the photo. With `below_within` (the photo's height), on its
    bottom-left corner instead: below the box, or inside it at the photo's bottom."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tab_width, tab_height = right - left + sizes.padding, bottom - top + sizes.padding
    if below_within is None:
        tab_top = box.y - tab_height if box.y >= tab_height else box.y
    else:
        box_bottom = box.y + box.height
        fits = box_bottom + tab_height <= below_within
        tab_top = box_bottom if fits else box_bottom - tab_height
    tab = (box.x, tab_top, box.x + tab_width, tab_top + tab_height)
    draw.rectangle(tab, fill=color)
    text_origin = (box.x + sizes.padding // 2 - left, tab_top + sizes.padding // 2 - top)
    draw.text(text_origin, text, fill=OUTLINE, font=font)


class _Legend:
    """One entry per colour (swatch, hex, name, share), in as many columns as the width fits;
    without colours, why, in as many lines as it takes."""

    def __init__(
        self, colors: list[DominantColor], note: str | None, width: int, sizes: _Sizes
    ) -> None:
        self.colors = colors
        self.padding = sizes.padding
        self.font_size = sizes.font
        self.font = ImageFont.load_default(size=self.font_size)
        self.entries = [_legend_text(color) for color in colors] or self._wrapped(
            f"no clothing colours: {note}" if note else "no clothing colours",
            width - 2 * self.padding,
        )
        # A narrow photo gets a smaller font rather than legend text cut off at its edge.
        widest = self._entry_width()
        if widest > width - 2 * self.padding:
            self.font_size = max(
                6, math.floor(self.font_size * (width - 2 * self.padding) / widest)
            )
            self.font = ImageFont.load_default(size=self.font_size)
            widest = self._entry_width()
        self.column_width = widest + 2 * self.padding
        self.columns = max(1, (width - self.padding) // self.column_width)
        self.row_height = self._swatch_size() + self.padding
        rows = math.ceil(len(self.entries) / self.columns)
        self.height = self.padding + rows * self.row_height

    def draw(self, draw: ImageDraw.ImageDraw, top: int) -> None:
        swatch = self._swatch_size()
        for index, text in enumerate(self.entries):
            row, column = divmod(index, self.columns)
            x = self.padding + column * self.column_width
            y = top + self.padding + row * self.row_height
            text_x = x
            if index < len(self.colors):
                draw.rectangle(
                    (x, y, x + swatch - 1, y + swatch - 1),
                    fill=self.colors[index].rgb,
                    outline=SWATCH_EDGE,
                    width=max(1, swatch // 16),
                )
                text_x = x + swatch + self.padding
            draw.text((text_x, y + swatch / 2), text, fill=LEGEND_TEXT, font=self.font, anchor="lm")

    def _wrapped(self, text: str, width: int) -> list[str]:
        """`text` in lines no wider than `width`, broken between words."""
        lines: list[str] = []
        for word in text.split():
            if lines and self.font.getlength(f"{lines[-1]} {word}") <= width:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
        return lines

    def _swatch_size(self) -> int:
        return round(self.font_size * 1.5)

    def _entry_width(self) -> int:
        text_width = max(math.ceil(self.font.getlength(text)) for text in self.entries)
        swatch = self._swatch_size() + self.padding if self.colors else 0
        return swatch + text_width


def _legend_text(color: DominantColor) -> str:
    return f"{color.hex}  {color.name}  {color.fraction:.0%}"
