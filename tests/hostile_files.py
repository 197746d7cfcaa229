"""A corpus of hostile, damaged and unusual uploads, built in memory (no binary files in the
repository), each with the answer a client should get for it.

Decisions the expectations encode:
- An upload is judged by its bytes, never by the content type the client declared: a PNG
  declared as image/jpeg is analysed as the PNG it is (the working image is re-encoded, so
  nothing of the original is ever served back under the declared type).
- Pictures without a person are synthetic (gradients): ingest accepts them and pose rejects
  them with "no person detected", which is cheap. The three real photos expected to COMPLETE
  show people the pipeline finds reliably, in encodings that need converting.
- A file over the upload limit is refused by storage at upload time (the presigned POST's
  content-length-range); storage that stores it regardless (moto without the stack's policy
  checks) leaves it to ingest, which refuses it before decoding with the reason given here.
- Damage that Pillow reports is expected as "corrupt or truncated image" without Pillow's own
  wording, which changes between versions; damage that ingest finds itself is expected with
  ingest's words."""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image

from silhouette.assets import Manifest
from silhouette.settings import Settings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NO_PERSON = "no person detected"
CORRUPT = "corrupt or truncated image"
NOT_AN_IMAGE = "not an image"
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


class Outcome(StrEnum):
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    # POST /uploads answers 400 (the declared content type is not one the API takes).
    REFUSED_AT_REQUEST = "refused at request"
    # Storage answers the presigned POST with 400 (the policy's content-length-range).
    REFUSED_AT_UPLOAD = "refused at upload"


@dataclass(frozen=True)
class HostileFile:
    name: str
    data: bytes
    content_type: str  # as the client declares it
    outcome: Outcome
    reason: str = ""  # a substring of the job's reason (or of the refusal's message)

    @property
    def filename(self) -> str:
        return self.name + EXTENSIONS.get(self.content_type, ".bin")

    @property
    def reaches_ingest(self) -> bool:
        """Whether ingest may see the bytes (an oversized file does where storage stores it)."""
        return self.outcome is not Outcome.REFUSED_AT_REQUEST

    @property
    def ingest_accepts(self) -> bool:
        """Whether ingest turns the bytes into a working image (later stages decide the rest)."""
        return self.outcome is Outcome.COMPLETED or self.reason == NO_PERSON


def hostile_files(samples: Manifest, settings: Settings) -> list[HostileFile]:
    """The whole corpus; limits come from `settings`, real photos from `samples`."""
    return [
        *_not_images(),
        *_unsupported_formats(),
        *_damaged_files(samples),
        *_size_and_shape_limits(settings),
        *_unusual_encodings(),
        *_real_photos_in_odd_encodings(samples),
        *_upload_limits(samples, settings),
    ]


# Building blocks ---------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def scene(width: int = 320, height: int = 240) -> Image.Image:
    """A smooth colour picture with nobody in it."""
    ramp = Image.linear_gradient("L")
    channels = (ramp, ramp.rotate(90), Image.radial_gradient("L"))
    return Image.merge("RGB", channels).resize((width, height))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every whole chunk of a PNG, checksums not checked."""
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return PNG_SIGNATURE + b"".join(png_chunk(kind, body) for kind, body in chunks)


def png_file(width: int, height: int, rows: int | None = None) -> bytes:
    """An 8-bit RGB PNG whose header says `width` x `height` and whose pixel data holds `rows`
    rows (all by default) in one zlib stream that ends cleanly; CRCs and IEND are correct."""
    row_count = height if rows is None else rows
    pixel_rows = b"".join(b"\x00" + bytes([row % 256]) * (width * 3) for row in range(row_count))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return png_from_chunks(
        [(b"IHDR", header), (b"IDAT", zlib.compress(pixel_rows)), (b"IEND", b"")]
    )


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height`, with no pixel data at all."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return png_from_chunks([(b"IHDR", header), (b"IEND", b"")])


def with_pixel_data_cut(png: bytes, keep: float) -> bytes:
    """`png` with only the first `keep` share of its decompressed pixel data, recompressed into
    a clean zlib stream: a valid file in every way except that rows are missing."""
    chunks = png_chunks(png)
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    cut = zlib.compress(pixels[: int(len(pixels) * keep)])
    others = [(kind, body) for kind, body in chunks if kind not in (b"IDAT", b"IEND")]
    return png_from_chunks([*others, (b"IDAT", cut), (b"IEND", b"")])


def with_bad_crc(png: bytes, kind: bytes) -> bytes:
    """`png` with the checksum of its first `kind` chunk wrong."""
    offset = png.index(kind) - 4
    (length,) = struct.unpack_from(">I", png, offset)
    crc_at = offset + 8 + length
    return png[:crc_at] + bytes(b ^ 0xFF for b in png[crc_at : crc_at + 4]) + png[crc_at + 4 :]


def jpeg_with_frame_size(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its baseline frame header (SOF0) claiming another size."""
    frame = jpeg.index(b"\xff\xc0")
    return jpeg[: frame + 5] + struct.pack(">HH", height, width) + jpeg[frame + 9 :]


def jpeg_with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """`jpeg` with an APP1 segment holding `payload` right after its SOI marker."""
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "this is a zip archive, not a photo\n" * 20)
    return buffer.getvalue()


def exif_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def animation(fmt: str, **options: object) -> bytes:
    frames = [scene().rotate(angle) for angle in (0, 90, 180)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)


# The corpus --------------------------------------------------------------------------------


def _not_images() -> list[HostileFile]:
    rejected = Outcome.REJECTED
    svg = b"<svg xmlns='http://www.w3.org/2000/svg' width='640' height='480'/>"
    return [
        HostileFile("empty", b"", "image/jpeg", rejected, "empty file"),
        HostileFile("plain-text", b"just some text\n" * 40, "image/jpeg", rejected, NOT_AN_IMAGE),
        HostileFile(
            "html",
            b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
            "image/png",
            rejected,
            NOT_AN_IMAGE,
        ),
        HostileFile("svg", svg, "image/png", rejected, NOT_AN_IMAGE),
        HostileFile(
            "svg-declared-svg",
            svg,
            "image/svg+xml",
            Outcome.REFUSED_AT_REQUEST,
            "400 invalid_request: content_type",
        ),
        HostileFile(
            "pdf-header",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
            "image/jpeg",
            rejected,
            NOT_AN_IMAGE,
        ),
        HostileFile("zip-renamed", zip_archive(), "image/jpeg", rejected, NOT_AN_IMAGE),
        HostileFile(
            "heic-ftyp-header",
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200),
            "image/jpeg",
            rejected,
            NOT_AN_IMAGE,
        ),
    ]


def _unsupported_formats() -> list[HostileFile]:
    picture = scene()
    psd_header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 240, 320, 8, 3)
    psd = psd_header + struct.pack(">IIIH", 0, 0, 0, 0) + bytes(320 * 240 * 3)
    cases = [
        ("gif", encode(picture, "GIF"), "GIF"),
        ("gif-animated", animation("GIF"), "GIF"),
        ("bmp", encode(picture, "BMP"), "BMP"),
        ("tiff", encode(picture, "TIFF"), "TIFF"),
        ("ico", encode(picture, "ICO"), "ICO"),
        ("psd", psd, "PSD"),
        ("avif", encode(picture, "AVIF"), "AVIF"),
    ]
    return [
        HostileFile(name, data, "image/jpeg", Outcome.REJECTED, f"unsupported format: {fmt}")
        for name, data, fmt in cases
    ]


def _damaged_files(samples: Manifest) -> list[HostileFile]:
    rejected = Outcome.REJECTED
    photo_png = samples.path("astronaut").read_bytes()
    photo_jpeg = samples.path("zidane").read_bytes()
    small_png = encode(scene(), "PNG")
    small_jpeg = encode(scene(), "JPEG")
    small_jpeg_scans = len(small_jpeg) - small_jpeg.index(b"\xff\xda")
    interlaced_png = encode(scene(), "PNG", interlace=1)
    scan_start = photo_jpeg.index(b"\xff\xda")
    idat_start = photo_png.index(b"IDAT")
    return [
        HostileFile(
            "jpeg-soi-eoi-only",
            b"\xff\xd8\xff\xd9",
            "image/jpeg",
            rejected,
            f"{CORRUPT}: a damaged JPEG file",
        ),
        HostileFile(
            "jpeg-cut-mid-scan",
            photo_jpeg[: (scan_start + len(photo_jpeg)) // 2],
            "image/jpeg",
            rejected,
            CORRUPT,
        ),
        HostileFile(
            "jpeg-header-only",
            photo_jpeg[:scan_start],
            "image/jpeg",
            rejected,
            f"{CORRUPT}: a damaged JPEG file",
        ),
        HostileFile(
            "png-cut-mid-idat",
            photo_png[: idat_start + (len(photo_png) - idat_start) // 2],
            "image/png",
            rejected,
            f"{CORRUPT}: the file ends inside a chunk",
        ),
        # What `make demo` uploads as samples/truncated.png: cut inside the header chunks.
        HostileFile("demo-truncated", photo_png[:1500], "image/png", rejected, CORRUPT),
        HostileFile(
            "png-rows-missing-clean-zlib",
            png_file(320, 240, rows=120),
            "image/png",
            rejected,
            f"{CORRUPT}: the pixel data ends",
        ),
        HostileFile(
            "png-interlaced-rows-missing",
            with_pixel_data_cut(interlaced_png, keep=0.5),
            "image/png",
            rejected,
            f"{CORRUPT}: the pixel data ends",
        ),
        HostileFile(
            "png-bad-idat-crc",
            with_bad_crc(small_png, b"IDAT"),
            "image/png",
            rejected,
            f"{CORRUPT}: bad checksum in 'IDAT'",
        ),
        HostileFile(
            "png-without-iend", small_png[:-12], "image/png", rejected, f"{CORRUPT}: the file ends"
        ),
        HostileFile(
            "jpeg-frame-claiming-more-pixels",
            jpeg_with_frame_size(small_jpeg, 4000, 3000),
            "image/jpeg",
            rejected,
            f"{CORRUPT}: {small_jpeg_scans} bytes of JPEG data cannot hold 4000x3000 pixels",
        ),
        HostileFile("webp-cut", encode(scene(), "WEBP")[:200], "image/webp", rejected, CORRUPT),
    ]


def _size_and_shape_limits(settings: Settings) -> list[HostileFile]:
    rejected = Outcome.REJECTED
    side = settings.min_side
    at_limit = math.floor(side * settings.max_aspect_ratio)
    over_pixels = math.isqrt(settings.max_pixels) + 1
    jpeg = encode(scene(), "JPEG")

    def strip(width: int, height: int) -> bytes:
        return encode(scene().resize((width, height)), "PNG")

    def narrow(width: int, height: int) -> HostileFile:
        return HostileFile(
            f"png-{width}x{height}",
            strip(width, height),
            "image/png",
            rejected,
            f"image too narrow: {width}x{height} pixels",
        )

    return [
        HostileFile(
            "png-claiming-100000x100000",
            png_claiming(100_000, 100_000),
            "image/png",
            rejected,
            "image too large: over",
        ),
        HostileFile(
            "png-claiming-over-max-pixels",
            png_claiming(over_pixels, over_pixels),
            "image/png",
            rejected,
            f"image too large: {over_pixels}x{over_pixels} pixels",
        ),
        HostileFile(
            "jpeg-frame-claiming-65000x65000",
            jpeg_with_frame_size(jpeg, 65_000, 65_000),
            "image/jpeg",
            rejected,
            "image too large: over",
        ),
        HostileFile(
            "png-1x1", encode(scene(1, 1), "PNG"), "image/png", rejected, "image too small: 1x1"
        ),
        HostileFile(
            "png-below-min-side",
            encode(scene(side - 1, side - 1), "PNG"),
            "image/png",
            rejected,
            f"image too small: {side - 1}x{side - 1} pixels",
        ),
        # The probe's findings: the first killed the stack, the last crashed MediaPipe.
        narrow(64, 5000),
        narrow(5000, 64),
        narrow(64, 50_000),
        narrow(side, at_limit + 1),
        HostileFile(
            "jpeg-frame-claiming-a-strip",
            jpeg_with_frame_size(jpeg, 64, 6400),
            "image/jpeg",
            rejected,
            "image too narrow: 64x6400 pixels",
        ),
        HostileFile(
            f"png-{side}x{at_limit}-at-aspect-limit",
            strip(side, at_limit),
            "image/png",
            rejected,
            NO_PERSON,
        ),
    ]


def _unusual_encodings() -> list[HostileFile]:
    """Valid files nobody is in: ingest must accept every one, pose then finds nobody."""
    picture = scene()
    jpeg = encode(picture, "JPEG")
    png = encode(picture, "PNG")
    sixteen_bit = picture.convert("L").convert("I").point(lambda value: value * 257)
    palette = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    broken_icc = b"broken\x00\x00" + zlib.compress(b"not an ICC profile" * 10)
    broken_exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 0xFFFF) + b"\x00" * 16
    cases = [
        ("apng-animated", animation("PNG"), "image/png"),
        ("webp-animated", animation("WEBP"), "image/webp"),
        ("jpeg-cmyk", encode(picture.convert("CMYK"), "JPEG"), "image/jpeg"),
        ("png-16-bit-grey", encode(sixteen_bit.convert("I;16"), "PNG"), "image/png"),
        ("png-grey-alpha", encode(picture.convert("LA"), "PNG"), "image/png"),
        ("png-palette-transparent", encode(palette, "PNG", transparency=0), "image/png"),
        ("png-interlaced", encode(picture, "PNG", interlace=1), "image/png"),
        (
            "jpeg-exif-orientation-6",
            encode(picture, "JPEG", exif=exif_orientation(6)),
            "image/jpeg",
        ),
        (
            "jpeg-exif-orientation-8",
            encode(picture, "JPEG", exif=exif_orientation(8)),
            "image/jpeg",
        ),
        ("jpeg-broken-exif", jpeg_with_app1(jpeg, broken_exif), "image/jpeg"),
        (
            "png-broken-icc-profile",
            png_from_chunks([png_chunks(png)[0], (b"iCCP", broken_icc), *png_chunks(png)[1:]]),
            "image/png",
        ),
        ("jpeg-zip-polyglot", jpeg + zip_archive(), "image/jpeg"),
        ("png-declared-as-jpeg", png, "image/jpeg"),
        ("jpeg-trailing-garbage", jpeg + b"\x00garbage after the end of image" * 30, "image/jpeg"),
        ("webp-lossless", encode(picture, "WEBP", lossless=True), "image/webp"),
        ("webp-lossy", encode(picture, "WEBP", quality=70), "image/webp"),
        ("jpeg-progressive", encode(picture, "JPEG", progressive=True), "image/jpeg"),
    ]
    return [
        HostileFile(name, data, content_type, Outcome.REJECTED, NO_PERSON)
        for name, data, content_type in cases
    ]


def _real_photos_in_odd_encodings(samples: Manifest) -> list[HostileFile]:
    astronaut = Image.open(samples.path("astronaut")).convert("RGB")
    zidane = Image.open(samples.path("zidane")).convert("RGB")
    grey = astronaut.convert("L").convert("I").point(lambda value: value * 257)
    # Stored turned a quarter left; orientation 6 tells viewers to turn it back to upright.
    sideways = astronaut.transpose(Image.Transpose.ROTATE_90)
    cases = [
        ("astronaut-16-bit-grey", encode(grey.convert("I;16"), "PNG"), "image/png"),
        ("zidane-cmyk", encode(zidane.convert("CMYK"), "JPEG", quality=92), "image/jpeg"),
        (
            "astronaut-exif-rotated",
            encode(sideways, "JPEG", quality=92, exif=exif_orientation(6)),
            "image/jpeg",
        ),
    ]
    return [
        HostileFile(name, data, content_type, Outcome.COMPLETED)
        for name, data, content_type in cases
    ]


def _upload_limits(samples: Manifest, settings: Settings) -> list[HostileFile]:
    photo = samples.path("zidane").read_bytes()
    padding = bytes(settings.max_upload_bytes + 1 - len(photo))
    return [
        HostileFile(
            "one-byte-over-upload-limit",
            photo + padding,  # a real photo: only the limit stands between it and analysis
            "image/jpeg",
            Outcome.REFUSED_AT_UPLOAD,
            "file too large",  # ingest's reason, should storage ever let it through
        )
    ]
