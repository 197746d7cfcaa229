"""Ingest on real photos and on malformed, hostile and unusual files."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from silhouette.errors import RejectedInput
from silhouette.stages.ingest import Limits, normalise

LIMITS = Limits(max_bytes=20 * 1024 * 1024, max_pixels=50_000_000, min_side=64)


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "fmt", "size"),
    [
        ("astronaut", "PNG", (512, 512)),
        ("bus", "JPEG", (810, 1080)),
        ("zidane", "JPEG", (1280, 720)),
    ],
)
def test_real_photos_become_rgb_working_images_with_their_facts(sample, name, fmt, size):
    original = Image.open(sample.path(name)).convert("RGB")
    result = normalise(sample.path(name).read_bytes(), LIMITS)
    working = decoded(result.png)
    assert (result.facts.width, result.facts.height, result.facts.format) == (*size, fmt)
    assert working.mode == "RGB" and working.size == size
    # Lossless: the working image is the photo's pixels, not a re-compressed approximation.
    assert working.tobytes() == original.tobytes()


def test_greyscale_photo_is_converted_to_rgb(sample):
    result = normalise(sample.path("camera").read_bytes(), LIMITS)
    working = decoded(result.png)
    assert working.mode == "RGB"
    red, green, blue = working.split()
    assert red.tobytes() == green.tobytes() == blue.tobytes()
    assert red.tobytes() == Image.open(sample.path("camera")).tobytes()


def test_exif_orientation_is_applied_and_metadata_stripped(sample):
    photo = Image.open(sample.path("bus"))  # 810 wide, 1080 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = "SecretCam"  # Make
    data = encode(photo, "JPEG", exif=exif.tobytes(), quality=95)
    result = normalise(data, LIMITS)
    working = decoded(result.png)
    assert (result.facts.width, result.facts.height) == (1080, 810)
    expected = Image.open(io.BytesIO(data)).convert("RGB").transpose(Image.Transpose.ROTATE_270)
    assert working.tobytes() == expected.tobytes()
    assert not working.getexif() and "exif" not in working.info and not working.text


def test_transparent_png_is_flattened_on_white(sample):
    photo = Image.open(sample.path("astronaut")).convert("RGBA")
    photo.putalpha(Image.new("L", photo.size, 0))
    working = decoded(normalise(encode(photo, "PNG"), LIMITS).png)
    assert working.getextrema() == ((255, 255), (255, 255), (255, 255))


def test_sixteen_bit_greyscale_keeps_its_tones():
    ramp = Image.linear_gradient("L").resize((256, 256)).convert("I")
    sixteen = ramp.point(lambda value: value * 257).convert("I;16")
    working = decoded(normalise(encode(sixteen, "PNG"), LIMITS).png)
    assert working.mode == "RGB"
    assert working.getpixel((0, 0))[0] < 5 and working.getpixel((0, 255))[0] > 250


def test_cmyk_jpeg_and_webp_are_accepted(sample):
    photo = Image.open(sample.path("zidane"))
    cmyk = normalise(encode(photo.convert("CMYK"), "JPEG"), LIMITS)
    webp = normalise(encode(photo, "WEBP"), LIMITS)
    assert cmyk.facts.format == "JPEG" and decoded(cmyk.png).mode == "RGB"
    assert webp.facts.format == "WebP" and (webp.facts.width, webp.facts.height) == (1280, 720)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` (a decompression bomb's first bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", 0)
        + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND"))
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: b"", "empty file"),
        (lambda s: b"hello, this is a text file\n" * 10, "not an image"),
        (lambda s: b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image"),
        (lambda s: s.path("bus").read_bytes()[:2000], "corrupt"),
        (lambda s: encode(Image.open(s.path("zidane")), "GIF"), "unsupported format: GIF"),
        (lambda s: encode(Image.open(s.path("zidane")), "BMP"), "unsupported format: BMP"),
        (
            lambda s: encode(Image.open(s.path("zidane")).resize((40, 30)), "PNG"),
            "image too small: 40x30",
        ),
        (lambda s: _png_claiming(10_000, 6_000), "image too large: 10000x6000"),
        (lambda s: _png_claiming(100_000, 100_000), "image too large: over 89 megapixels"),
    ],
    ids=["empty", "text", "svg", "truncated", "gif", "bmp", "tiny", "bomb", "huge-bomb"],
)
def test_bad_uploads_are_rejected_with_a_reason(sample, make, reason):
    with pytest.raises(RejectedInput) as rejection:
        normalise(make(sample), LIMITS)
    assert rejection.value.reason.startswith(reason)


def test_oversized_upload_is_rejected_before_decoding(sample):
    data = sample.path("astronaut").read_bytes()
    with pytest.raises(RejectedInput, match=r"file too large: 0\.8 MB \(limit 0\.5 MB\)"):
        normalise(data, Limits(max_bytes=512 * 1024, max_pixels=50_000_000, min_side=64))
