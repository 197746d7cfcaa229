"""Image bytes <-> numpy arrays for the stages that read and write artifacts."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def decode(data: bytes) -> np.ndarray:
    """An artifact image as an array: RGB (H, W, 3), greyscale (H, W) or RGBA, uint8."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def encode_png(array: np.ndarray) -> bytes:
    """Fast-compressed PNG of a uint8 array (RGB, RGBA or a single-channel mask)."""
    output = io.BytesIO()
    Image.fromarray(array).save(output, format="PNG", compress_level=1)
    return output.getvalue()
