"""Ingest on real photos and on malformed, hostile and unusual files."""

from __future__ import annotations

import dataclasses
import io
import math
from datetime import UTC, datetime

import pytest
from PIL import Image

from silhouette.errors import RejectedInput
from silhouette.names import WORKING_IMAGE, WORKING_PIXELS
from silhouette.schema import PipelineState
from silhouette.service import keys
from silhouette.service.stages import ingest
from silhouette.service.storage import MemoryStore
from silhouette.settings import get_settings
from silhouette.vision import imaging
from silhouette.vision.decoding import Limits, NormalisedImage, normalise
from tests.hostile_files import (
    CORRUPT,
    encode,
    hostile_files,
    jpeg_with_frame_size,
    png_claiming,
    png_file,
    scene,
    with_bad_crc,
    with_pixel_data_cut,
)

SETTINGS = get_settings()
LIMITS = Limits.from_settings(SETTINGS)


def decoded(result: NormalisedImage) -> Image.Image:
    """The working image as a stage reads it back from storage."""
    return Image.fromarray(imaging.decode(imaging.encode_raw(result.pixels)))


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
    working = decoded(result)
    assert (result.facts.width, result.facts.height, result.facts.format) == (*size, fmt)
    assert working.mode == "RGB" and working.size == size
    # Lossless: the working image is the photo's pixels, not a re-compressed approximation.
    assert working.tobytes() == original.tobytes()


def test_greyscale_photo_is_converted_to_rgb(sample):
    result = normalise(sample.path("camera").read_bytes(), LIMITS)
    working = decoded(result)
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
    store, job_id = MemoryStore(), "e" * 32
    store.put(keys.upload(job_id), data, "image/jpeg")
    state = PipelineState(
        job_id=job_id,
        bucket="photos",
        upload_key=keys.upload(job_id),
        received_at=datetime.now(UTC),
    )

    written = ingest.run(state, store)

    assert (written.facts["image"]["width"], written.facts["image"]["height"]) == (1080, 810)
    expected = Image.open(io.BytesIO(data)).convert("RGB").transpose(Image.Transpose.ROTATE_270)
    pixels = imaging.decode(store.get(written.artifacts[WORKING_PIXELS]))
    assert pixels.tobytes() == expected.tobytes()
    # The PNG users download carries no metadata, and neither object the marker.
    working = Image.open(io.BytesIO(store.get(written.artifacts[WORKING_IMAGE])))
    assert working.tobytes() == expected.tobytes()
    assert not working.getexif() and "exif" not in working.info and not working.text
    assert not any(b"SecretCam" in store.get(key) for key in written.artifacts.values())


def test_transparent_png_is_flattened_on_white(sample):
    photo = Image.open(sample.path("astronaut")).convert("RGBA")
    photo.putalpha(Image.new("L", photo.size, 0))
    working = decoded(normalise(encode(photo, "PNG"), LIMITS))
    assert working.getextrema() == ((255, 255), (255, 255), (255, 255))


def test_sixteen_bit_greyscale_keeps_its_tones():
    ramp = Image.linear_gradient("L").resize((256, 256)).convert("I")
    sixteen = ramp.point(lambda value: value * 257).convert("I;16")
    working = decoded(normalise(encode(sixteen, "PNG"), LIMITS))
    assert working.mode == "RGB"
    assert working.getpixel((0, 0))[0] < 5 and working.getpixel((0, 255))[0] > 250


def test_cmyk_jpeg_and_webp_are_accepted(sample):
    photo = Image.open(sample.path("zidane"))
    cmyk = normalise(encode(photo.convert("CMYK"), "JPEG"), LIMITS)
    webp = normalise(encode(photo, "WEBP"), LIMITS)
    assert cmyk.facts.format == "JPEG" and decoded(cmyk).mode == "RGB"
    assert webp.facts.format == "WebP" and (webp.facts.width, webp.facts.height) == (1280, 720)


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
        (lambda s: png_claiming(10_000, 6_000), "image too large: 10000x6000"),
        (lambda s: png_claiming(100_000, 100_000), "image too large: over 89 megapixels"),
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
        normalise(data, dataclasses.replace(LIMITS, max_bytes=512 * 1024))


SIDE = SETTINGS.min_side
AT_ASPECT_LIMIT = math.floor(SIDE * SETTINGS.max_aspect_ratio)


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (64, 5000),
        (5000, 64),
        (64, 50_000),
        (SIDE, AT_ASPECT_LIMIT + 1),
        (AT_ASPECT_LIMIT + 1, SIDE),
    ],
)
def test_strips_beyond_the_aspect_ratio_are_rejected_from_the_header(width, height):
    # No pixel data at all: the shape alone must decide, before anything is decoded.
    with pytest.raises(RejectedInput) as rejection:
        normalise(png_claiming(width, height), LIMITS)
    assert rejection.value.reason == (
        f"image too narrow: {width}x{height} pixels "
        f"(longest side at most {SETTINGS.max_aspect_ratio:g} times the shortest)"
    )


@pytest.mark.parametrize(("width", "height"), [(SIDE, AT_ASPECT_LIMIT), (AT_ASPECT_LIMIT, SIDE)])
def test_a_photo_exactly_at_the_aspect_limit_is_accepted(width, height):
    result = normalise(encode(scene(width, height), "PNG"), LIMITS)
    assert (result.facts.width, result.facts.height) == (width, height)


def test_a_complete_png_built_chunk_by_chunk_is_accepted():
    """The control for the truncation tests below: the same builder, every row present."""
    working = decoded(normalise(png_file(200, 100), LIMITS))
    assert working.size == (200, 100) and working.getpixel((0, 99)) == (99, 99, 99)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: png_file(200, 100, rows=50),
        lambda s: png_file(200, 100, rows=99),
        lambda s: with_pixel_data_cut(encode(scene(), "PNG", interlace=1), keep=0.9),
        lambda s: with_pixel_data_cut(s.path("astronaut").read_bytes(), keep=0.999),
    ],
    ids=["half-the-rows", "last-row-missing", "interlaced", "real-photo"],
)
def test_png_whose_pixel_data_ends_early_but_cleanly_is_rejected(sample, make):
    # Pillow pads such files with black rows instead of failing.
    with pytest.raises(RejectedInput) as rejection:
        normalise(make(sample), LIMITS)
    assert rejection.value.reason.startswith(f"{CORRUPT}: the pixel data ends after")


def jpeg_without_scans(jpeg: bytes) -> bytes:
    """`jpeg` cut where its first scan starts: only headers left."""
    return jpeg[: jpeg.index(b"\xff\xda")]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: with_bad_crc(encode(scene(), "PNG"), b"IDAT"), "bad checksum in 'IDAT' chunk"),
        (lambda s: encode(scene(), "PNG")[:-12], "the file ends before its last chunk"),
        (lambda s: s.path("astronaut").read_bytes()[:1500], ""),  # samples/truncated.png
        (lambda s: s.path("astronaut").read_bytes()[:-100_000], "the file ends inside a chunk"),
        (lambda s: jpeg_without_scans(s.path("zidane").read_bytes()), "a damaged JPEG file"),
        (lambda s: b"\xff\xd8\xff\xd9", "a damaged JPEG file"),
    ],
    ids=[
        "png-bad-crc",
        "png-no-iend",
        "demo-truncated",
        "png-cut",
        "jpeg-cut-in-header",
        "soi-eoi",
    ],
)
def test_damaged_and_cut_files_are_rejected_as_corrupt_or_truncated(sample, make, reason):
    with pytest.raises(RejectedInput) as rejection:
        normalise(make(sample), LIMITS)
    assert rejection.value.reason.startswith(f"{CORRUPT}: {reason}")


def test_jpeg_data_too_short_for_the_size_its_header_claims_is_rejected():
    # libjpeg would fill 12 megapixels of grey from these few kilobytes without complaint.
    tiny = jpeg_with_frame_size(encode(scene(), "JPEG"), 4000, 3000)
    with pytest.raises(RejectedInput) as rejection:
        normalise(tiny, LIMITS)
    assert rejection.value.reason.startswith(CORRUPT)
    assert rejection.value.reason.endswith("bytes of JPEG data cannot hold 4000x3000 pixels")


@pytest.mark.parametrize("progressive", [False, True])
def test_a_flat_jpeg_compressed_as_far_as_jpeg_goes_is_accepted(progressive):
    flat = Image.new("L", (2000, 1500), 128)
    data = encode(flat, "JPEG", quality=1, optimize=True, progressive=progressive)
    assert normalise(data, LIMITS).facts.width == 2000


def test_every_hostile_file_gets_its_answer_from_ingest(sample):
    """The end-to-end corpus, through ingest alone: what it must reject, with which reason, and
    what it must pass on to the models."""
    mismatches = []
    for case in hostile_files(sample, SETTINGS):
        if not case.reaches_ingest:
            continue
        try:
            normalise(case.data, LIMITS)
            answer = "accepted"
        except RejectedInput as rejection:
            answer = rejection.reason
        expected = "accepted" if case.ingest_accepts else case.reason
        if (answer == "accepted") != case.ingest_accepts or expected not in answer:
            mismatches.append(f"{case.name}: expected {expected!r}, got {answer!r}")
    assert not mismatches, "\n".join(mismatches)
