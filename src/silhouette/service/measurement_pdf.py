"""A job's measurements as a one-page PDF a tailor takes away: the views with the measured lines,
every value with its error band (or why it is missing), the scale the values rest on, the skin
tone as colour swatches and the notes. Always exactly one A4 page: text too long for its place is
cut short with "...", and rows, notes or pictures beyond the room are counted, not printed."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PIL import Image, ImageOps

from silhouette.schema import SkinTone

if TYPE_CHECKING:
    from fpdf import FPDF

# Millimetres on an A4 portrait page.
PAGE_HEIGHT = 297.0
MARGIN = 12.0
WIDTH = 210.0 - 2 * MARGIN
PICTURE_HEIGHT = 70.0
PICTURE_GAP = 4.0
MAX_PICTURES = 4
# Pictures are resampled to this before embedding: a 12 MP photo would make a 5 MB sheet.
PICTURE_DPI = 200
JPEG_QUALITY = 90
# (width, heading, alignment) of the table's columns; the note takes the rest of the width.
COLUMNS = ((58.0, "Measurement", "L"), (24.0, "Value (cm)", "R"), (22.0, "\u00b1 (cm)", "R"))
NOTE_WIDTH = WIDTH - sum(width for width, _, _ in COLUMNS)
# Rows shrink towards the minimum when there are many of them, so ~25 still fit.
ROW_HEIGHT_MAX, ROW_HEIGHT_MIN = 6.0, 4.2
LINE = 4.5
NOTE_LINE = 4.0
SWATCH = 14.0
# With every block at its largest (4 pictures, skin, all these notes) ~26 rows still fit.
MAX_NOTES = 5
# Core fonts are latin-1 only: common typographic marks get a look-alike, anything else "?".
LOOKALIKES = str.maketrans(
    {"\u2014": "-", "\u2013": "-", "\u0394": "d", "\u2248": "~", "\u2026": "...", "\u2018": "'",
     "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2264": "<=", "\u2265": ">="}
)  # fmt: skip


@dataclass(frozen=True)
class SheetRow:
    name: str  # e.g. "chest_circumference", printed "Chest circumference"
    value_cm: float | None  # None: missing
    error_cm: float | None  # +- band (about 1 sigma); None if unknown
    note: str = ""  # why missing, or e.g. "adjusted (tape measure)"


@dataclass(frozen=True)
class MeasurementSheet:
    job_id: str
    taken_at: datetime  # when the photos were analysed (naive: taken as UTC)
    version_label: str  # e.g. "Original analysis"
    scale_text: str  # e.g. "ID-1 card in the front view (+-1.5%)"
    confidence: float | None  # overall, 0..1
    rows: tuple[SheetRow, ...]
    notes: tuple[str, ...] = ()
    skin: SkinTone | None = None
    pictures: tuple[tuple[str, bytes], ...] = ()  # (caption, JPEG or PNG bytes)


def render_sheet(sheet: MeasurementSheet) -> bytes:
    """The sheet as PDF bytes: always exactly one A4 page."""
    taken_at = sheet.taken_at if sheet.taken_at.tzinfo else sheet.taken_at.replace(tzinfo=UTC)
    from fpdf import FPDF  # here: 0.3 s of imports the API's other routes do without

    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)  # the layout below keeps inside the page: never a second one
    pdf.set_creation_date(taken_at)  # the same sheet renders to the same bytes
    pdf.add_page()
    notes = list(sheet.notes)
    if len(sheet.pictures) > MAX_PICTURES:
        notes.insert(0, f"{len(sheet.pictures) - MAX_PICTURES} more pictures in the result")
    y = _header(pdf, sheet, taken_at)
    y = _pictures(pdf, sheet.pictures[:MAX_PICTURES], y)
    skin_height = _skin_height(sheet.skin)
    notes_height = (min(len(notes), MAX_NOTES + 1) + 1) * NOTE_LINE if notes else 0.0
    bottom = PAGE_HEIGHT - MARGIN - 2 * LINE - skin_height - notes_height
    y = _table(pdf, sheet.rows, y, bottom)
    confidence = "not given" if sheet.confidence is None else f"{sheet.confidence:.2f}"
    pdf.set_font("Helvetica", size=9)
    _text(pdf, MARGIN, y + 1, WIDTH * 0.7, LINE, f"Scale: {sheet.scale_text}")
    right = MARGIN + WIDTH * 0.7
    _text(pdf, right, y + 1, WIDTH * 0.3, LINE, f"Overall confidence: {confidence}", "R")
    y = _skin(pdf, sheet.skin, y + 2 * LINE)
    _notes(pdf, notes, y)
    return bytes(pdf.output())


def _header(pdf: FPDF, sheet: MeasurementSheet, taken_at: datetime) -> float:
    pdf.set_font("Helvetica", "B", 18)
    _text(pdf, MARGIN, MARGIN, WIDTH * 0.6, 8, "Measurement sheet")
    pdf.set_font("Helvetica", "B", 12)
    _text(pdf, MARGIN + WIDTH * 0.6, MARGIN, WIDTH * 0.4, 8, f"Job {sheet.job_id[:8]}", "R")
    pdf.set_font("Helvetica", size=8)
    y = MARGIN + 9
    _text(pdf, MARGIN, y, WIDTH * 0.6, LINE, f"Job id {sheet.job_id}")
    stamp = taken_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    _text(pdf, MARGIN + WIDTH * 0.6, y, WIDTH * 0.4, LINE, f"Analysed {stamp}", "R")
    pdf.set_font("Helvetica", "B", 10)
    _text(pdf, MARGIN, y + LINE, WIDTH, 5, sheet.version_label)
    pdf.line(MARGIN, y + LINE + 6, MARGIN + WIDTH, y + LINE + 6)
    return y + LINE + 8


def _pictures(pdf: FPDF, pictures: tuple[tuple[str, bytes], ...], y: float) -> float:
    """The pictures side by side at one height, aspect kept, shrunk together to fit the width."""
    if not pictures:
        return y
    images = [ImageOps.exif_transpose(Image.open(io.BytesIO(data))) for _, data in pictures]
    widths = [PICTURE_HEIGHT * image.width / image.height for image in images]
    gaps = PICTURE_GAP * (len(images) - 1)
    shrink = min(1.0, (WIDTH - gaps) / sum(widths))
    height = PICTURE_HEIGHT * shrink
    x = MARGIN + (WIDTH - sum(widths) * shrink - gaps) / 2
    pdf.set_font("Helvetica", size=8)
    for (caption, _), image, width in zip(pictures, images, widths, strict=True):
        width *= shrink
        pixels = (max(1, round(width / 25.4 * PICTURE_DPI)), round(height / 25.4 * PICTURE_DPI))
        pdf.image(_thumbnail(image, pixels), x=x, y=y, w=width, h=height)
        _text(pdf, x, y + height + 0.5, width, LINE, caption, "C")
        x += width + PICTURE_GAP
    return y + height + LINE + 3


def _thumbnail(image: Image.Image, size: tuple[int, int]) -> io.BytesIO:
    """`image` at no more than `size` pixels as a JPEG (a tenth of the lossless size), transparent
    parts on white as on paper."""
    rgba = image.convert("RGBA")
    rgba.thumbnail(size)
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    jpeg = io.BytesIO()
    flat.save(jpeg, "JPEG", quality=JPEG_QUALITY)
    return jpeg


def _table(pdf: FPDF, rows: tuple[SheetRow, ...], y: float, bottom: float) -> float:
    row_height = max(ROW_HEIGHT_MIN, min(ROW_HEIGHT_MAX, (bottom - y) / (len(rows) + 1)))
    fitting = int((bottom - y) / row_height) - 1  # the heading takes a row
    shown = rows if len(rows) <= fitting else rows[: fitting - 1]
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_fill_color(225, 225, 225)
    headings = (*COLUMNS, (NOTE_WIDTH, "Note", "L"))
    _row(pdf, y, row_height, [(w, title, align) for w, title, align in headings], fill=True)
    pdf.set_font("Helvetica", size=8.5)
    pdf.set_fill_color(244, 244, 244)
    for index, row in enumerate(shown):
        y += row_height
        missing = row.value_cm is None
        value = "missing" if missing else f"{row.value_cm:.1f}"
        error = (
            "" if missing else "unknown" if row.error_cm is None else f"\u00b1 {row.error_cm:.1f}"
        )
        name = row.name.replace("_", " ")
        texts = (name[:1].upper() + name[1:], value, error, row.note)
        pdf.set_text_color(*((150, 40, 40) if missing else (0, 0, 0)))
        cells = [(w, text, align) for (w, _, align), text in zip(headings, texts, strict=True)]
        _row(pdf, y, row_height, cells, fill=index % 2 == 1)
    pdf.set_text_color(0, 0, 0)
    if len(shown) < len(rows):
        y += row_height
        more = f"({len(rows) - len(shown)} more measurements in the result)"
        _text(pdf, MARGIN, y, WIDTH, row_height, more)
    return y + row_height


def _row(
    pdf: FPDF, y: float, height: float, cells: list[tuple[float, str, str]], fill: bool
) -> None:
    x = MARGIN
    for width, text, align in cells:
        _text(pdf, x, y, width, height, text, align, fill)
        x += width


def _skin_height(skin: SkinTone | None) -> float:
    """The room the skin tone block takes (the table is laid out to leave it)."""
    if skin is None or skin.status == "off":
        return 0.0  # not asked for: nothing to say
    return SWATCH + LINE + 2 if skin.status == "ok" else LINE + 2


def _skin(pdf: FPDF, skin: SkinTone | None, y: float) -> float:
    if skin is None or skin.status == "off":
        return y
    pdf.set_font("Helvetica", "B", 9)
    if skin.status == "unknown":
        reason = skin.reason or "no reason given"
        _text(pdf, MARGIN, y, WIDTH, LINE, f"Skin tone: unknown - {reason}")
        return y + _skin_height(skin)
    monk = f"Monk {_number(skin.monk, 'd')}"
    swatches = (
        ("measured", _lab_to_srgb(skin.lab) if skin.lab else None),
        (monk, _hex_rgb(skin.monk_hex)),
    )
    pdf.set_font("Helvetica", size=7)
    pdf.set_draw_color(120, 120, 120)  # a very light swatch still shows its edge
    for index, (label, rgb) in enumerate(swatches):
        if rgb is not None:
            x = MARGIN + index * (SWATCH + 4)
            pdf.set_fill_color(*rgb)
            pdf.rect(x, y, SWATCH, SWATCH, style="DF")
            _text(pdf, x - 2, y + SWATCH, SWATCH + 4, LINE, label, "C")
    pdf.set_draw_color(0, 0, 0)
    summary = (
        f"{monk} (dE {_number(skin.monk_delta_e, '.1f')}), "
        f"ITA {_number(skin.ita_degrees, '.1f')}\u00b0 ({skin.ita_category or '?'}), "
        f"undertone {skin.undertone or '?'}, confidence {_number(skin.confidence, '.2f')}"
    )
    lab = "L* {:.1f}, a* {:.1f}, b* {:.1f}".format(*skin.lab) if skin.lab else "no reading"
    details = f"CIELAB (D65) {lab}, from {skin.patch_count} skin patches"
    x = MARGIN + 2 * (SWATCH + 4) + 2
    pdf.set_font("Helvetica", "B", 9)
    _text(pdf, x, y, MARGIN + WIDTH - x, LINE, "Skin tone")
    pdf.set_font("Helvetica", size=9)
    _text(pdf, x, y + LINE, MARGIN + WIDTH - x, LINE, summary)
    _text(pdf, x, y + 2 * LINE, MARGIN + WIDTH - x, LINE, details)
    return y + _skin_height(skin)


def _number(value: float | None, spec: str) -> str:
    return "?" if value is None else format(value, spec)


def _notes(pdf: FPDF, notes: list[str], y: float) -> None:
    if not notes:
        return
    pdf.set_font("Helvetica", "B", 9)
    _text(pdf, MARGIN, y, WIDTH, NOTE_LINE, "Notes")
    pdf.set_font("Helvetica", size=8)
    for note in notes[:MAX_NOTES]:
        y += NOTE_LINE
        _text(pdf, MARGIN, y, WIDTH, NOTE_LINE, f"- {note}")
    if len(notes) > MAX_NOTES:
        more = f"({len(notes) - MAX_NOTES} more notes in the result)"
        _text(pdf, MARGIN, y + NOTE_LINE, WIDTH, NOTE_LINE, more)


def _text(
    pdf: FPDF, x: float, y: float, width: float, height: float, text: str,
    align: str = "L", fill: bool = False,
) -> None:  # fmt: skip
    """One line of `text` in a cell at (x, y): latin-1 only, cut short with "..." to fit."""
    text = " ".join(text.translate(LOOKALIKES).split())  # a newline would spill out of the cell
    text = text.encode("latin-1", "replace").decode("latin-1")
    room = width - 2 * pdf.c_margin
    if pdf.get_string_width(text) > room:
        low, high = 0, len(text)  # the longest prefix that fits with "...", by bisection
        while low < high:
            middle = (low + high + 1) // 2
            if pdf.get_string_width(text[:middle].rstrip() + "...") <= room:
                low = middle
            else:
                high = middle - 1
        text = text[:low].rstrip() + "..."
    pdf.set_xy(x, y)
    pdf.cell(width, height, text, align=align, fill=fill)


def _lab_to_srgb(lab: tuple[float, float, float]) -> tuple[int, int, int]:
    """CIELAB (D65) -> sRGB 0-255 by the CIE and IEC 61966-2-1 formulas, clipped to the gamut."""
    lightness, a, b = lab
    fy = (lightness + 16) / 116
    white = (0.95047, 1.0, 1.08883)
    x, y, z = (
        w * (t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29))
        for w, t in zip(white, (fy + a / 500, fy, fy - b / 200), strict=True)
    )
    linear = (
        3.2404542 * x - 1.5371385 * y - 0.4985314 * z,
        -0.9692660 * x + 1.8760108 * y + 0.0415560 * z,
        0.0556434 * x - 0.2040259 * y + 1.0572252 * z,
    )
    encoded = (
        12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055
        for c in (min(max(c, 0.0), 1.0) for c in linear)
    )
    red, green, blue = (round(255 * c) for c in encoded)
    return red, green, blue


def _hex_rgb(text: str | None) -> tuple[int, int, int] | None:
    """(160, 126, 86) for "#a07e56"; None for anything else (no swatch rather than a failure)."""
    if text is None or not re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        return None
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
