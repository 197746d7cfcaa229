"""Ingest's decoder against mutated real photos (hypothesis): byte flips, cuts, duplicated spans
and chunks, inserted bytes and edited header fields, in every encoding ingest accepts. Whatever
arrives, ingest answers with a valid working image within the limits or with a rejection: never
another exception, never a crash, never a long stall.

`make test` runs a short, reproducible sample (derandomized, no example database);
`make fuzz` runs SILHOUETTE_FUZZ_EXAMPLES=5000 with fresh random inputs every time."""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from silhouette.errors import RejectedInput
from silhouette.settings import get_settings
from silhouette.vision.decoding import Limits, normalise
from tests.conftest import SAMPLES
from tests.hostile_files import encode, exif_orientation, png_chunks, png_from_chunks

EXAMPLES_VARIABLE = "SILHOUETTE_FUZZ_EXAMPLES"
LONG_RUN = EXAMPLES_VARIABLE in os.environ
EXAMPLES = int(os.environ.get(EXAMPLES_VARIABLE, "150"))
# Most inputs take milliseconds; the largest an input can claim and still be decoded takes well
# under a second on one slow core. The margin is for a machine busy with other work.
DEADLINE = timedelta(seconds=5)
LIMITS = Limits.from_settings(get_settings())


@functools.cache
def seed_files() -> dict[str, bytes]:
    """Small real photos in every encoding ingest accepts: small, so each example is quick."""
    portrait = Image.open(SAMPLES.path("astronaut")).convert("RGB").resize((160, 160))
    players = Image.open(SAMPLES.path("zidane")).convert("RGB").resize((192, 108))
    grey = portrait.convert("L").convert("I").point(lambda value: value * 257)
    palette = players.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    return {
        "png": encode(portrait, "PNG"),
        "png-interlaced": encode(players, "PNG", interlace=1),
        "png-palette-transparent": encode(palette, "PNG", transparency=0),
        "png-grey-alpha": encode(portrait.convert("LA"), "PNG"),
        "png-16-bit-grey": encode(grey.convert("I;16"), "PNG"),
        "apng": encode(portrait, "PNG", save_all=True, append_images=[portrait.rotate(90)]),
        "jpeg-exif-rotated": encode(players, "JPEG", exif=exif_orientation(6)),
        "jpeg-progressive": encode(portrait, "JPEG", progressive=True),
        "jpeg-cmyk": encode(players.convert("CMYK"), "JPEG"),
        "webp-lossy": encode(portrait, "WEBP", quality=60),
        "webp-lossless": encode(players, "WEBP", lossless=True),
    }


# Mutations: each says where as a share of the file, so it applies to any seed. ---------------


class Mutation(Protocol):
    def apply(self, data: bytes) -> bytes: ...


def _index(data: bytes, share: float) -> int:
    return min(int(len(data) * share), max(len(data) - 1, 0))


def _flip(data: bytes, index: int, mask: int) -> bytes:
    if index >= len(data):
        return data
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


@dataclass(frozen=True)
class FlipByte:
    at: float
    mask: int

    def apply(self, data: bytes) -> bytes:
        return _flip(data, _index(data, self.at), self.mask)


@dataclass(frozen=True)
class FlipHeaderByte:
    """In the first bytes, where every format keeps its signature, sizes and first segments."""

    index: int
    mask: int

    def apply(self, data: bytes) -> bytes:
        return _flip(data, self.index, self.mask)


@dataclass(frozen=True)
class Cut:
    keep: float

    def apply(self, data: bytes) -> bytes:
        return data[: int(len(data) * self.keep)]


@dataclass(frozen=True)
class DuplicateSpan:
    start: float
    length: int
    to: float

    def apply(self, data: bytes) -> bytes:
        start = _index(data, self.start)
        span, to = data[start : start + self.length], _index(data, self.to)
        return data[:to] + span + data[to:]


@dataclass(frozen=True)
class Insert:
    at: float
    inserted: bytes

    def apply(self, data: bytes) -> bytes:
        i = _index(data, self.at)
        return data[:i] + self.inserted + data[i:]


# PNG mutations keep every checksum right, so the damage reaches zlib and the decoder.
PNG_HEADER_FIELDS = {  # name -> (offset in IHDR, struct format)
    "width": (0, ">I"),
    "height": (4, ">I"),
    "bit_depth": (8, ">B"),
    "colour_type": (9, ">B"),
    "compression": (10, ">B"),
    "filter": (11, ">B"),
    "interlace": (12, ">B"),
}


def _is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG") and bool(png_chunks(data))


@dataclass(frozen=True)
class SetPngHeaderField:
    field: str
    value: int

    def apply(self, data: bytes) -> bytes:
        if not _is_png(data):
            return data
        chunks = png_chunks(data)
        kind, header = chunks[0]
        offset, fmt = PNG_HEADER_FIELDS[self.field]
        size = struct.calcsize(fmt)
        value = self.value % (1 << (8 * size))
        if len(header) >= offset + size:
            header = header[:offset] + struct.pack(fmt, value) + header[offset + size :]
        return png_from_chunks([(kind, header), *chunks[1:]])


@dataclass(frozen=True)
class DuplicatePngChunk:
    index: int

    def apply(self, data: bytes) -> bytes:
        if not _is_png(data):
            return data
        chunks = png_chunks(data)
        i = self.index % len(chunks)
        return png_from_chunks([*chunks[: i + 1], chunks[i], *chunks[i + 1 :]])


@dataclass(frozen=True)
class FlipInPngChunk:
    index: int
    at: float
    mask: int

    def apply(self, data: bytes) -> bytes:
        if not _is_png(data):
            return data
        chunks = png_chunks(data)
        i = self.index % len(chunks)
        kind, body = chunks[i]
        chunks[i] = (kind, FlipByte(self.at, self.mask).apply(body))
        return png_from_chunks(chunks)


JPEG_FRAME_FIELDS = {  # name -> (offset from the SOF marker, struct format)
    "precision": (4, ">B"),
    "height": (5, ">H"),
    "width": (7, ">H"),
    "components": (9, ">B"),
}
JPEG_FRAME_MARKERS = (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2")


@dataclass(frozen=True)
class SetJpegFrameField:
    field: str
    value: int

    def apply(self, data: bytes) -> bytes:
        frames = [i for i in map(data.find, JPEG_FRAME_MARKERS) if i >= 0]
        if not data.startswith(b"\xff\xd8") or not frames:
            return data
        offset, fmt = JPEG_FRAME_FIELDS[self.field]
        at, size = min(frames) + offset, struct.calcsize(fmt)
        value = self.value % (1 << (8 * size))
        return data[:at] + struct.pack(fmt, value) + data[at + size :]


seed_names = st.deferred(lambda: st.sampled_from(sorted(seed_files())))
shares = st.floats(min_value=0, max_value=1, exclude_max=True)
masks = st.integers(min_value=1, max_value=255)
interesting_values = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 63, 64, 65, 255, 256, 641, 4096, 65535]),
    st.sampled_from([2**31 - 1, 2**32 - 1]),
    st.integers(min_value=0, max_value=2**32 - 1),
)
mutations = st.one_of(
    st.builds(FlipByte, at=shares, mask=masks),
    st.builds(FlipHeaderByte, index=st.integers(min_value=0, max_value=63), mask=masks),
    st.builds(Cut, keep=shares),
    st.builds(DuplicateSpan, start=shares, length=st.integers(1, 4096), to=shares),
    st.builds(Insert, at=shares, inserted=st.binary(min_size=1, max_size=64)),
    st.builds(
        SetPngHeaderField,
        field=st.sampled_from(sorted(PNG_HEADER_FIELDS)),
        value=interesting_values,
    ),
    st.builds(DuplicatePngChunk, index=st.integers(0, 15)),
    st.builds(FlipInPngChunk, index=st.integers(0, 15), at=shares, mask=masks),
    st.builds(
        SetJpegFrameField,
        field=st.sampled_from(sorted(JPEG_FRAME_FIELDS)),
        value=interesting_values,
    ),
)


def assert_is_a_working_image_within_the_limits(
    pixels: np.ndarray, width: int, height: int
) -> None:
    assert (pixels.dtype, pixels.shape) == (np.uint8, (height, width, 3))
    assert width * height <= LIMITS.max_pixels
    assert min(width, height) >= LIMITS.min_side
    assert max(width, height) <= LIMITS.max_aspect_ratio * min(width, height)


@settings(
    max_examples=EXAMPLES,
    deadline=DEADLINE,
    derandomize=not LONG_RUN,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=seed_names, changes=st.lists(mutations, min_size=1, max_size=3))
def test_any_mutated_photo_gets_a_working_image_or_a_rejection(seed: str, changes: list[Mutation]):
    data = functools.reduce(
        lambda mutated, change: change.apply(mutated), changes, seed_files()[seed]
    )
    try:
        result = normalise(data, LIMITS)
    except RejectedInput as rejection:
        assert rejection.reason.strip()
        event(rejection.reason.split(":")[0])  # --hypothesis-show-statistics: what was found
        return
    event("accepted")
    assert_is_a_working_image_within_the_limits(
        result.pixels, result.facts.width, result.facts.height
    )
