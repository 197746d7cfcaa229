"""Ingest: decode an upload safely and normalise it into the working image every later stage
reads. Anything that is not a usable photo is rejected with a reason a person can act on."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from silhouette import keys
from silhouette.errors import RejectedInput
from silhouette.schema import ImageFacts, PipelineState, StageResult
from silhouette.settings import get_settings
from silhouette.storage import ArtifactStore

# Pillow names -> what we tell people. MPO is how Pillow reports multi-picture camera JPEGs.
ACCEPTED_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
_ACCEPTED_TEXT = "JPEG, PNG or WebP"
WORKING_IMAGE = "image"
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int
    min_side: int


@dataclass(frozen=True)
class NormalisedImage:
    png: bytes
    facts: ImageFacts


def normalise(data: bytes, limits: Limits) -> NormalisedImage:
    """Validate `data` and return an 8-bit sRGB PNG, upright, without metadata.

    Raises `RejectedInput` for anything that is not an acceptable photo."""
    if not data:
        raise RejectedInput("empty file: the upload has no bytes")
    check_size(len(data), limits)
    image = _open(data, limits)
    facts_format = ACCEPTED_FORMATS[image.format or ""]
    image = _upright(image)
    image = _to_srgb(image)
    output = io.BytesIO()
    # Fast PNG compression: the working image is an intermediate, read once per stage.
    image.save(output, format="PNG", compress_level=1)
    return NormalisedImage(
        png=output.getvalue(),
        facts=ImageFacts(width=image.width, height=image.height, format=facts_format),
    )


def _open(data: bytes, limits: Limits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise RejectedInput(f"not an image: the file is not a {_ACCEPTED_TEXT} photo") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        # Pillow's own guard fires first for headers claiming far beyond any limit of ours.
        raise RejectedInput(
            f"image too large: over {Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels "
            f"(limit {limits.max_pixels / 1e6:g} megapixels)"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise RejectedInput(f"corrupt image: {error}") from None
    if image.format not in ACCEPTED_FORMATS:
        raise RejectedInput(f"unsupported format: {image.format} (accepted: {_ACCEPTED_TEXT})")
    width, height = image.size
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
    try:
        image.seek(0)  # animated files: analyse the first frame
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise RejectedInput(f"corrupt or truncated image: {error}") from None
    return image


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a photo with unreadable EXIF is kept as stored."""
    try:
        return ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """8-bit RGB in sRGB: embedded colour profiles applied, alpha flattened onto white,
    greyscale, palette, CMYK and 16-bit modes converted. Metadata does not survive."""
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
    rgb = image.convert("RGB")
    return Image.frombytes("RGB", rgb.size, rgb.tobytes())


def check_size(size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise RejectedInput(
            f"file too large: {_megabytes(size)} (limit {_megabytes(limits.max_bytes)})"
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    settings = get_settings()
    limits = Limits(settings.max_upload_bytes, settings.max_pixels, settings.min_side)
    if state.upload_size is not None:
        check_size(state.upload_size, limits)  # before downloading a hostile giant
    normalised = normalise(store.get(state.upload_key), limits)
    key = keys.artifact(state.job_id, WORKING_IMAGE, "png")
    store.put(key, normalised.png, "image/png")
    return StageResult(
        artifacts={WORKING_IMAGE: key}, facts={"image": normalised.facts.model_dump()}
    )
