"""IS-Net as setup converts it (silhouette.model_conversion): the same matte as the release it
was made from, at any input size, on real photos."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from silhouette.vision import segmentation
from silhouette.vision.model_files import manifest
from silhouette.vision.segmentation import MATTING_SIDE, TRAINED_SIDE, person_matte


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= 128, b >= 128
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def astronaut(sample) -> np.ndarray:
    return np.asarray(Image.open(sample.path("astronaut")).convert("RGB"))


def test_the_converted_model_gives_the_releases_matte(astronaut, monkeypatch):
    converted = person_matte(astronaut, TRAINED_SIDE)
    release = ort.InferenceSession(
        str(manifest().release_path("isnet")), providers=["CPUExecutionProvider"]
    )
    monkeypatch.setattr(segmentation, "matting_session", lambda: release)

    released = person_matte(astronaut, TRAINED_SIDE)

    # fp16 weights computed in fp32 either way: the same matte, to rounding.
    assert np.abs(converted.astype(int) - released.astype(int)).mean() < 0.5
    assert iou(converted, released) > 0.999


def test_the_converted_model_takes_any_input_size(astronaut):
    # The release fixes its input at 1024 x 1024 (it fails at any other size).
    mattes = {side: person_matte(astronaut, side) for side in (MATTING_SIDE, 1000)}

    for side, matte in mattes.items():
        assert matte.shape == astronaut.shape[:2], side
        assert iou(matte, person_matte(astronaut, TRAINED_SIDE)) > 0.97, side
