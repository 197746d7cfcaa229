"""The measurements as a picture a tailor can check: the front view (and the side view beside
it, both scaled to one height) with every measured segment drawn in its own colour and labelled
with its value and error band, and a table below of every value, the circumferences too, the
scale it rests on and how sure it is. A segment that is only a guess is not drawn: missing
values are listed with their reason instead."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from silhouette.vision.types import Box

# Drawn at this height per view (the longer photo is shrunk, the shorter enlarged): labels read
# the same whatever the photos' sizes.
VIEW_HEIGHT = 1000
JPEG_QUALITY = 90
BACKGROUND = (32, 32, 32)
TEXT = (240, 240, 240)
MUTED = (170, 170, 170)
OUTLINE = (0, 0, 0)
# One colour per measurement kind, distinguishable on photos and on the dark table.
PALETTE = (
    (255, 82, 82), (255, 171, 64), (255, 235, 59), (105, 240, 174), (64, 196, 255),
    (179, 136, 255), (255, 128, 171), (174, 234, 0), (0, 229, 255), (255, 209, 128),
    (234, 128, 252), (140, 158, 255), (204, 255, 144),
)  # fmt: skip
FONT_SIZE = 22
# Room right of the last view for the labels of the segments near its edge.
LABEL_ROOM = 320
STROKE = 4
PADDING = 12


@dataclass(frozen=True)
class MeasuredSegment:
    """A segment to draw: in which view, its ends in that view's pixels."""

    view: str  # "front" | "side"
    start: tuple[float, float]
    end: tuple[float, float]


@dataclass(frozen=True)
class MeasurementRow:
    """One line of the table (and its segments on the photos)."""

    name: str
    value: str  # "84.3 ± 4.0 cm", or why it is missing
    measured: bool
    segments: tuple[MeasuredSegment, ...]


@dataclass(frozen=True)
class PictureView:
    """A photo to draw on, and the part of it to show (the person, with room around)."""

    image: np.ndarray  # RGB uint8
    shown: Box


def render_measurements(
    views: dict[str, PictureView], rows: list[MeasurementRow], summary: str
) -> bytes:
    """A JPEG: the views (by name, front first) side by side, each cut to its `shown` box, with
    each row's segments and a label, then the table of `rows` and the `summary` line."""
    font = ImageFont.load_default(size=FONT_SIZE)
    scales = {name: VIEW_HEIGHT / view.shown.height for name, view in views.items()}
    widths = {name: round(view.shown.width * scales[name]) for name, view in views.items()}
    offsets, x = {}, 0
    for name in views:
        offsets[name] = x
        x += widths[name]
    width = max(x + LABEL_ROOM, 900)
    line_height = FONT_SIZE + PADDING // 2
    table_height = PADDING * 3 + line_height * (len(rows) + 1)
    picture = Image.new("RGB", (width, VIEW_HEIGHT + table_height), BACKGROUND)
    for name, view in views.items():
        crop = Image.fromarray(view.image[view.shown.slices])
        picture.paste(crop.resize((widths[name], VIEW_HEIGHT), Image.LANCZOS), (offsets[name], 0))
    draw = ImageDraw.Draw(picture)
    taken: list[tuple[float, float, float, float]] = []
    for index, row in enumerate(rows):
        colour = PALETTE[index % len(PALETTE)]
        ends = []
        for segment in row.segments if row.measured else ():
            if segment.view not in views:
                continue
            shown, scale = views[segment.view].shown, scales[segment.view]
            start, end = (
                (offsets[segment.view] + (x - shown.x) * scale, (y - shown.y) * scale)
                for x, y in (segment.start, segment.end)
            )
            draw.line((start, end), fill=OUTLINE, width=STROKE + 2)
            draw.line((start, end), fill=colour, width=STROKE)
            ends.append(max(start, end))
        if ends:  # one label a row, at its rightmost end
            text = f"{row.name.replace('_', ' ')} {row.value}"
            taken.append(_label(draw, max(ends), text, colour, font, taken))
    top = VIEW_HEIGHT + PADDING
    for index, row in enumerate(rows):
        colour = PALETTE[index % len(PALETTE)] if row.measured else MUTED
        y = top + index * line_height
        draw.rectangle((PADDING, y + 4, PADDING + FONT_SIZE - 6, y + FONT_SIZE - 2), fill=colour)
        draw.text((PADDING * 2 + FONT_SIZE, y), row.name.replace("_", " "), fill=TEXT, font=font)
        draw.text((PADDING * 2 + FONT_SIZE + 280, y), row.value, fill=colour, font=font)
    draw.text((PADDING, top + len(rows) * line_height + PADDING), summary, fill=MUTED, font=font)
    output = io.BytesIO()
    picture.save(output, format="JPEG", quality=JPEG_QUALITY)
    return output.getvalue()


def _label(
    draw: ImageDraw.ImageDraw,
    at: tuple[float, float],
    text: str,
    colour: tuple[int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    taken: list[tuple[float, float, float, float]],
) -> tuple[float, float, float, float]:
    """`text` on a dark tab just right of a segment's end (the rightmost), moved down past the
    tabs already `taken`, kept inside the picture; the tab's rectangle."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tab_width, tab_height = right - left + PADDING, bottom - top + PADDING // 2
    x = min(at[0] + PADDING, draw.im.size[0] - tab_width)
    y = min(max(0.0, at[1] - tab_height / 2), VIEW_HEIGHT - tab_height)
    while any(_overlap((x, y, x + tab_width, y + tab_height), other) for other in taken):
        y += tab_height / 2
    tab = (x, y, x + tab_width, y + tab_height)
    draw.rectangle(tab, fill=(0, 0, 0))
    draw.text((x + PADDING / 2 - left, y + PADDING / 4 - top), text, fill=colour, font=font)
    return tab


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
