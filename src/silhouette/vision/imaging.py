"""Image bytes <-> numpy arrays for the stages that read and write artifacts."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image


def decode(data: bytes) -> np.ndarray:
    """An artifact image as an array: RGB (H, W, 3), greyscale (H, W) or RGBA, uint8."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def padded(image: np.ndarray, border: int) -> np.ndarray:
    """`image` inside a mid-grey border `border` pixels wide: the detectors' neutral background
    for making a subject that fills the image small enough to be found."""
    grey = (128,) * (image.shape[2] if image.ndim == 3 else 1)
    return cv2.copyMakeBorder(
        image, border, border, border, border, cv2.BORDER_CONSTANT, value=grey
    )


def encode_png(array: np.ndarray) -> bytes:
    """Fast-compressed PNG of a uint8 array (RGB, RGBA or a single-channel mask)."""
    output = io.BytesIO()
    Image.fromarray(array).save(output, format="PNG", compress_level=1)
    return output.getvalue()
