"""The measurement sheet PDF, read back as a reader would (pypdfium2): one A4 page whatever the
input, every value with its error band, the pictures and the skin tone swatches visible on the
rendered page, text never past the margins."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image
from skimage.color import lab2rgb

from silhouette.assets import Manifest
from silhouette.schema import SkinTone
from silhouette.service.measurement_pdf import MeasurementSheet, SheetRow, render_sheet

A4 = (595.0, 842.0)  # points
SCALE = 2  # pixels per point when rendering
MARGIN = 30.0  # points: nothing may be printed nearer the edge (the sheet keeps ~34)
JOB_ID = "3f2a9c1e-7b4d-4e0a-9c55-1f0b6d2e8a77"
ROWS = (
    SheetRow("chest_circumference", 98.5, 3.1, "adjusted (tape measure)"),
    SheetRow("waist_circumference", 84.04, 2.66),
    SheetRow("shoulder_width", 46.2, None),
    SheetRow("inseam", None, None, "ankles outside the front view"),
)
SKIN_LAB = (52.3, 14.8, 21.5)
SKIN = SkinTone(
    status="ok", lab=SKIN_LAB, ita_degrees=8.1, ita_category="brown", monk=6,
    monk_hex="#a07e56", monk_delta_e=3.2, hue_angle=55.5, undertone="warm", patch_count=3,
    confidence=0.71,
)  # fmt: skip
SHEET = MeasurementSheet(
    job_id=JOB_ID,
    taken_at=datetime(2026, 11, 20, 14, 3, tzinfo=UTC),
    version_label="Version 2: tape measure, by tailor; approved by admin 2026-11-23",
    scale_text="ID-1 card in the front view (\u00b11.5%)",
    confidence=0.74,
    rows=ROWS,
    notes=("Circumferences assume an elliptical section.",),
)
GREEN = (20, 190, 90)  # picture colours found nowhere else on the page
MAGENTA = (200, 30, 170)
# Not latin-1: a core font cannot print these, the sheet must not fail on them.
UNPRINTABLE = "\u2014 \u2248 \u5c3a\u5bf8 \U0001f4cf"


def read(data: bytes) -> tuple[pdfium.PdfPage, str, np.ndarray]:
    """The single A4 page, its text and its rendering (RGB pixels)."""
    pdf = pdfium.PdfDocument(data)
    assert len(pdf) == 1
    page = pdf[0]
    assert page.get_size() == pytest.approx(A4, abs=1)
    text = page.get_textpage().get_text_range()
    pixels = np.asarray(page.render(scale=SCALE).to_pil().convert("RGB")).astype(np.int16)
    return page, text, pixels


def on_one_line(text: str, *parts: str) -> bool:
    """Whether one line of `text` has all `parts`, each whole ("98.5" is not in "98.51")."""
    patterns = [re.compile(rf"(?<![\w.]){re.escape(part)}(?![\w.])") for part in parts]
    return any(all(p.search(line) for p in patterns) for line in text.splitlines())


def matching(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int) -> np.ndarray:
    return np.abs(pixels - np.array(rgb)).max(axis=2) <= tolerance


def has_block(
    pixels: np.ndarray, rgb: tuple[int, int, int], size: int = 30, tolerance: int = 3
) -> bool:
    """Whether some size x size square of the page is all within `tolerance` of `rgb`."""
    inside = np.pad(matching(pixels, rgb, tolerance).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = (
        inside[size:, size:]
        - inside[:-size, size:]
        - inside[size:, :-size]
        + inside[:-size, :-size]
    )
    return bool((counts == size * size).any())


def colour_box(pixels: np.ndarray, rgb: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels of colour `rgb`, in pixels."""
    rows, columns = np.nonzero(matching(pixels, rgb, tolerance=8))
    assert rows.size, f"no pixel of colour {rgb}"
    return int(columns.min()), int(rows.min()), int(columns.max()) + 1, int(rows.max()) + 1


def expected_rgb(lab: tuple[float, float, float]) -> tuple[int, int, int]:
    """The sRGB of a CIELAB (D65) colour, computed independently of the module (scikit-image)."""
    red, green, blue = (round(float(c) * 255) for c in lab2rgb(np.array([[lab]]))[0, 0])
    return red, green, blue


def hex_rgb(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def encoded(image: Image.Image, kind: str = "PNG") -> bytes:
    output = io.BytesIO()
    image.save(output, kind)
    return output.getvalue()


def embedded(page: pdfium.PdfPage) -> list[pdfium.PdfImage]:
    """The pictures drawn on the page (`get_bounds()`: left, bottom, right, top in points)."""
    return list(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)))


def assert_within_margins(page: pdfium.PdfPage) -> None:
    """Every printed character lies inside the page's margins: nothing is cut off."""
    textpage = page.get_textpage()
    for index in range(textpage.count_chars()):
        left, bottom, right, top = textpage.get_charbox(index)
        if right > left:  # spaces and line breaks have no box
            where = f"{textpage.get_text_range(index, 1)!r} at {left:.0f}, {bottom:.0f}"
            assert MARGIN <= left < right <= A4[0] - MARGIN, where
            assert MARGIN <= bottom < top <= A4[1] - MARGIN, where


@pytest.fixture(scope="module")
def astronaut(sample: Manifest) -> Path:
    return sample.path("astronaut")


def test_every_row_with_its_band_on_one_a4_page() -> None:
    page, text, _ = read(render_sheet(SHEET))
    assert on_one_line(text, "Chest circumference", "98.5", "\u00b1 3.1", "adjusted (tape measure)")
    assert on_one_line(text, "Waist circumference", "84.0", "\u00b1 2.7")
    assert on_one_line(text, "Shoulder width", "46.2", "unknown")
    assert on_one_line(text, "Inseam", "missing", "ankles outside the front view")
    for shown in (SHEET.version_label, SHEET.scale_text, JOB_ID, "Job 3f2a9c1e", "0.74"):
        assert shown in text
    assert "2026-11-20 14:03 UTC" in text
    assert "Circumferences assume an elliptical section." in text
    assert_within_margins(page)


def test_same_sheet_same_bytes_dated_when_analysed() -> None:
    data = render_sheet(SHEET)
    assert render_sheet(SHEET) == data
    assert pdfium.PdfDocument(data).get_metadata_dict()["CreationDate"] == "D:20261120140300Z"


@pytest.mark.parametrize(
    ("lab", "monk", "monk_hex"),
    [(SKIN_LAB, 6, "#a07e56"), ((81.0, 4.0, 15.0), 2, "#f3e7db"),
     ((30.5, 11.0, 14.0), 9, "#3a312a")],
)  # fmt: skip
def test_skin_swatches_show_the_measured_and_monk_colours(
    lab: tuple[float, float, float], monk: int, monk_hex: str
) -> None:
    skin = SKIN.model_copy(update={"lab": lab, "monk": monk, "monk_hex": monk_hex})
    page, text, pixels = read(render_sheet(replace(SHEET, skin=skin)))
    assert has_block(pixels, expected_rgb(lab))
    assert has_block(pixels, hex_rgb(monk_hex))
    expected = f"Monk {monk} (dE 3.2), ITA 8.1\u00b0 (brown), undertone warm, confidence 0.71"
    assert expected in text
    assert_within_margins(page)


@pytest.mark.parametrize(
    ("status", "shown"),
    [("unknown", "Skin tone: unknown - no face found in the front view"), ("off", None),
     (None, None)],
)  # fmt: skip
def test_no_swatch_without_a_skin_reading(status: str | None, shown: str | None) -> None:
    # The colours are set even so: only a reading that is ok may be shown as one.
    skin = None if status is None else SKIN.model_copy(
        update={"status": status, "reason": "no face found in the front view"}
    )  # fmt: skip
    _, text, pixels = read(render_sheet(replace(SHEET, skin=skin)))
    assert not has_block(pixels, expected_rgb(SKIN_LAB), size=10)
    assert not has_block(pixels, hex_rgb("#a07e56"), size=10)
    assert "Monk" not in text
    if shown is None:
        assert "Skin tone" not in text
    else:
        assert shown in text


def test_pictures_side_by_side_with_their_aspect_and_captions() -> None:
    wide = encoded(Image.new("RGB", (600, 300), GREEN))
    tall = encoded(Image.new("RGB", (300, 600), MAGENTA), "JPEG")
    pictures = (("Front view (measured lines)", wide), ("Side view", tall))
    _, text, pixels = read(render_sheet(replace(SHEET, pictures=pictures)))
    left, top, right, bottom = colour_box(pixels, GREEN)
    assert (right - left) / (bottom - top) == pytest.approx(2.0, rel=0.03)
    tall_left, tall_top, tall_right, tall_bottom = colour_box(pixels, MAGENTA)
    assert (tall_bottom - tall_top) / (tall_right - tall_left) == pytest.approx(2.0, rel=0.03)
    assert right < tall_left and tall_top < bottom and top < tall_bottom  # side by side
    assert has_block(pixels, GREEN, size=60, tolerance=8)
    assert "Front view (measured lines)" in text and "Side view" in text


def test_a_real_photo_is_embedded_as_it_looks(astronaut: Path) -> None:
    with Image.open(astronaut) as image:
        photo = image.convert("RGB")
    page, _, pixels = read(render_sheet(replace(SHEET, pictures=(("Front", encoded(photo)),))))
    (picture,) = embedded(page)
    left, bottom, right, top = picture.get_bounds()
    assert (right - left) / (top - bottom) == pytest.approx(photo.width / photo.height, rel=0.01)
    # The page where the picture is drawn, against the photo scaled to that size.
    box = [round(v * SCALE) for v in (left, A4[1] - top, right, A4[1] - bottom)]
    drawn = pixels[box[1] + 2 : box[3] - 2, box[0] + 2 : box[2] - 2]
    scaled = np.asarray(photo.resize((box[2] - box[0], box[3] - box[1])), dtype=np.int16)
    assert np.abs(drawn - scaled[2:-2, 2:-2]).mean() < 6


def test_stays_one_page_whatever_the_input(astronaut: Path) -> None:
    with Image.open(astronaut) as image:
        big = encoded(image.convert("RGB").resize((4000, 3000)), "JPEG")
    rows = tuple(
        SheetRow(f"measurement_{index}_{UNPRINTABLE}", 50.0 + index, 1.5, "note " * 40)
        for index in range(25)
    )
    notes = tuple(f"Note {index} {UNPRINTABLE} " + "long " * 200 for index in range(30))
    sheet = replace(
        SHEET, rows=rows, notes=notes, skin=SKIN, pictures=((f"Front {UNPRINTABLE}", big),),
        version_label="Version 7 " + UNPRINTABLE * 50, scale_text="stated height " * 30,
    )  # fmt: skip
    data = render_sheet(sheet)
    page, text, pixels = read(data)
    for index in range(25):  # 25 rows still fit, every one of them
        assert on_one_line(text, f"Measurement {index} - ~", f"{50.0 + index:.1f}", "\u00b1 1.5")
    assert "Note 0 - ~ " in text and "(25 more notes in the result)" in text
    assert "Note 5 " not in text
    assert has_block(pixels, expected_rgb(SKIN_LAB))
    (picture,) = embedded(page)
    left, bottom, right, top = picture.get_bounds()
    assert (right - left) / (top - bottom) == pytest.approx(4 / 3, rel=0.01)
    # The 12 MP photo was resampled to a print resolution (300 dpi at most), not embedded whole.
    assert picture.get_px_size()[0] <= (right - left) / 72 * 300
    assert len(data) < 1_000_000
    assert_within_margins(page)


def test_rows_beyond_the_page_are_counted() -> None:
    rows = tuple(SheetRow(f"girth_{index}", 30.0 + index, 1.0) for index in range(80))
    big = encoded(Image.new("RGB", (800, 600), GREEN))
    page, text, _ = read(render_sheet(replace(SHEET, rows=rows, skin=SKIN, pictures=(("", big),))))
    shown = [index for index in range(80) if on_one_line(text, f"Girth {index}", f"{30 + index}.0")]
    assert shown == list(range(len(shown))) and 20 <= len(shown) < 80
    assert f"({80 - len(shown)} more measurements in the result)" in text
    assert_within_margins(page)
