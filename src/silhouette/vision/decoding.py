"""Ingest: decode an upload safely and normalise it into the working image every later stage
reads. Anything that is not a usable photo is rejected with a reason a person can act on."""

from __future__ import annotations

import io
import itertools
import math
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from silhouette.errors import RejectedInput
from silhouette.schema import ImageFacts
from silhouette.settings import Settings

# Pillow names -> what we tell people. MPO is how Pillow reports multi-picture camera JPEGs.
ACCEPTED_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
_ACCEPTED_TEXT = "JPEG, PNG or WebP"
_SRGB = ImageCms.createProfile("sRGB")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> samples per pixel (greyscale, RGB, palette, greyscale+alpha, RGBA).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: first column, first row, column step, row step.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_JPEG_START_OF_SCAN = b"\xff\xda"
# Start-of-frame markers of arithmetic-coded JPEGs (SOF9-11, SOF13-15).
_JPEG_ARITHMETIC_FRAMES = tuple(
    bytes((0xFF, kind)) for kind in (0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
)
_INFLATE_STEP = 1 << 20  # bytes of pixel data inflated at a time while counting them


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int
    min_side: int
    max_aspect_ratio: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.max_upload_bytes,
            settings.max_pixels,
            settings.min_side,
            settings.max_aspect_ratio,
        )


@dataclass(frozen=True)
class NormalisedImage:
    pixels: np.ndarray  # (H, W, 3) uint8 sRGB
    facts: ImageFacts


def normalise(data: bytes, limits: Limits) -> NormalisedImage:
    """Validate `data` and return its pixels: 8-bit sRGB, upright, without metadata.

    Raises `RejectedInput` for anything that is not an acceptable photo."""
    if not data:
        raise RejectedInput("empty file: the upload has no bytes")
    check_size(len(data), limits)
    image = _open(data, limits)
    facts_format = ACCEPTED_FORMATS[image.format or ""]
    image = _upright(image)
    image = _to_srgb(image)
    return NormalisedImage(
        pixels=np.asarray(image),
        facts=ImageFacts(width=image.width, height=image.height, format=facts_format),
    )


def _open(data: bytes, limits: Limits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if kind := _signature_of(data):
            raise RejectedInput(f"corrupt or truncated image: a damaged {kind} file") from None
        raise RejectedInput(f"not an image: the file is not a {_ACCEPTED_TEXT} photo") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        # Pillow's own guard fires first for headers claiming far beyond any limit of ours.
        raise RejectedInput(
            f"image too large: over {Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels "
            f"(limit {limits.max_pixels / 1e6:g} megapixels)"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise RejectedInput(f"corrupt or truncated image: {error}") from None
    if image.format not in ACCEPTED_FORMATS:
        raise RejectedInput(f"unsupported format: {image.format} (accepted: {_ACCEPTED_TEXT})")
    check_dimensions(*image.size, limits)
    if image.format == "PNG":
        check_png_complete(data)
    elif image.format in ("JPEG", "MPO"):
        check_jpeg_data_suffices(data, *image.size)
    try:
        image.seek(0)  # animated files: analyse the first frame
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise RejectedInput(f"corrupt or truncated image: {error}") from None
    return image


def _signature_of(data: bytes) -> str | None:
    """The accepted format whose signature `data` starts with: Pillow cannot identify a JPEG
    cut before its first scan, and "not an image" would mislead whoever sent it."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def check_dimensions(width: int, height: int, limits: Limits) -> None:
    """The header's size against the limits, before any pixel is decoded."""
    if width * height > limits.max_pixels:
        raise RejectedInput(
            f"image too large: {width}x{height} pixels "
            f"(limit {limits.max_pixels / 1e6:g} megapixels)"
        )
    if min(width, height) < limits.min_side:
        raise RejectedInput(
            f"image too small: {width}x{height} pixels "
            f"(at least {limits.min_side} pixels on each side)"
        )
    # No photo of a person is this narrow, and the models misbehave on such strips (a 64x5000
    # pixel PNG aborted the pose stage).
    if max(width, height) > limits.max_aspect_ratio * min(width, height):
        raise RejectedInput(
            f"image too narrow: {width}x{height} pixels "
            f"(longest side at most {limits.max_aspect_ratio:g} times the shortest)"
        )


def check_png_complete(data: bytes) -> None:
    """Reject a PNG whose chunks are damaged or cut, or whose pixel data stops short.

    Pillow fills the missing rows of a PNG whose compressed data ends early but cleanly with
    black instead of failing (its decoder's end-of-data check is disabled), and it checks the
    checksums of only some chunks: the file's structure is checked here, before decoding."""
    chunks = list(_png_chunks(data))
    kinds = [kind for kind, _ in chunks]
    if kinds[:1] != [b"IHDR"] or kinds.count(b"IHDR") != 1 or b"IDAT" not in kinds:
        raise RejectedInput(
            "corrupt or truncated image: the PNG has no single header or no pixel data"
        )
    expected = _png_pixel_bytes(chunks[0][1])
    inflated = _inflated_size(_first_idat_run(chunks), expected)
    if inflated < expected:
        raise RejectedInput(
            f"corrupt or truncated image: the pixel data ends after {inflated} of {expected} bytes"
        )


def check_jpeg_data_suffices(data: bytes, width: int, height: int) -> None:
    """Reject a JPEG whose compressed data is too short for the size its header claims.

    libjpeg fills what a cut file lacks with grey and Pillow reports no error, so a few
    kilobytes could claim tens of megapixels. Huffman coding spends at least one bit on every
    8x8 block of the full-resolution component; arithmetic coding (rare) has no such floor."""
    scan = data.find(_JPEG_START_OF_SCAN)
    if scan < 0 or any(marker in data[:scan] for marker in _JPEG_ARITHMETIC_FRAMES):
        return  # no scan: the decoder reports it; arithmetic coded: no floor to check
    scan_bytes = len(data) - scan  # trailers included: an overestimate, never a false alarm
    if scan_bytes < math.ceil(width / 8) * math.ceil(height / 8) // 8:
        raise RejectedInput(
            f"corrupt or truncated image: {scan_bytes} bytes of JPEG data cannot hold "
            f"{width}x{height} pixels"
        )


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk up to IEND, checksums verified."""
    offset = len(_PNG_SIGNATURE)
    while True:
        if offset + 12 > len(data):
            raise RejectedInput("corrupt or truncated image: the file ends before its last chunk")
        length, kind = struct.unpack_from(">I4s", data, offset)
        end = offset + 8 + length
        if end + 4 > len(data):
            raise RejectedInput("corrupt or truncated image: the file ends inside a chunk")
        body = data[offset + 8 : end]
        (checksum,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(kind + body) != checksum:
            name = kind.decode("latin-1")
            raise RejectedInput(f"corrupt or truncated image: bad checksum in {name!r} chunk")
        if kind == b"IEND":
            return
        yield kind, body
        offset = end + 4


def _first_idat_run(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """The image's compressed pixel data: the consecutive IDAT chunks, as decoders read it."""
    start = next(index for index, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    run = itertools.takewhile(lambda chunk: chunk[0] == b"IDAT", chunks[start:])
    return b"".join(body for _, body in run)


def _png_pixel_bytes(header: bytes) -> int:
    """The size of the decompressed pixel data that the IHDR chunk promises."""
    if len(header) != 13:
        raise RejectedInput("corrupt or truncated image: the PNG header has the wrong size")
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    bits_per_pixel = depth * _PNG_SAMPLES.get(colour_type, 0)
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    total = 0
    for first_column, first_row, column_step, row_step in passes:
        columns = -(-(width - first_column) // column_step)
        rows = -(-(height - first_row) // row_step)
        if columns > 0 and rows > 0:
            total += rows * (1 + -(-columns * bits_per_pixel // 8))  # a filter byte per row
    return total


def _inflated_size(compressed: bytes, enough: int) -> int:
    """How many bytes `compressed` inflates to, counting no further than `enough` (a small
    file may claim a huge image) and holding little of it in memory at a time."""
    inflater = zlib.decompressobj()
    produced = 0
    pending = compressed
    try:
        while pending and produced < enough:
            produced += len(inflater.decompress(pending, _INFLATE_STEP))
            pending = inflater.unconsumed_tail
        if produced < enough:
            produced += len(inflater.flush())  # output zlib still holds for input it has read
    except zlib.error as error:
        raise RejectedInput(f"corrupt or truncated image: {error}") from None
    return produced


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a photo with unreadable EXIF is kept as stored."""
    try:
        return ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """8-bit RGB in sRGB: embedded colour profiles applied, alpha flattened onto white,
    greyscale, palette, CMYK and 16-bit modes converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.point(lambda value: value * 255).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "CMYK", "L", "RGBA"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            image = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the plain conversion below
    return image.convert("RGB")


def check_size(size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise RejectedInput(
            f"file too large: {_megabytes(size)} (limit {_megabytes(limits.max_bytes)})"
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
