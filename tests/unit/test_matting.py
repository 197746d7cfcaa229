"""IS-Net as setup converts it (silhouette.model_conversion): in fp32 the same matte as the
release it was made from, at any input size; in int8 (the segment stage's) the same matte as
fp32, on real photos."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from silhouette.vision import segmentation
from silhouette.vision.model_files import manifest, model_path
from silhouette.vision.segmentation import (
    MATTING_MODEL,
    MATTING_SIDE,
    TRAINED_SIDE,
    person_matte,
)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= 128, b >= 128
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def astronaut(sample) -> np.ndarray:
    return np.asarray(Image.open(sample.path("astronaut")).convert("RGB"))


def test_the_converted_model_gives_the_releases_matte(astronaut, monkeypatch):
    converted = person_matte(astronaut, TRAINED_SIDE, "isnet_fp32")
    release = ort.InferenceSession(
        str(manifest().release_path("isnet")), providers=["CPUExecutionProvider"]
    )
    monkeypatch.setattr(segmentation, "matting_session", lambda model: release)

    released = person_matte(astronaut, TRAINED_SIDE)

    # fp16 weights computed in fp32 either way: the same matte, to rounding.
    assert np.abs(converted.astype(int) - released.astype(int)).mean() < 0.5
    assert iou(converted, released) > 0.999


def test_the_converted_model_takes_any_input_size(astronaut):
    # The release fixes its input at 1024 x 1024 (it fails at any other size).
    mattes = {side: person_matte(astronaut, side, "isnet_fp32") for side in (MATTING_SIDE, 1000)}

    for side, matte in mattes.items():
        assert matte.shape == astronaut.shape[:2], side
        assert iou(matte, person_matte(astronaut, TRAINED_SIDE, "isnet_fp32")) > 0.97, side


# Photos whose salient object is people (bus.jpg's is the bus and a sign as much: both
# models are unsure of it, and agree at 0.98).
@pytest.mark.parametrize("photo", ["astronaut", "camera", "zidane"])
def test_the_int8_model_gives_the_fp32_matte(sample, photo):
    image = np.asarray(Image.open(sample.path(photo)).convert("RGB"))

    int8 = person_matte(image, MATTING_SIDE, MATTING_MODEL)
    fp32 = person_matte(image, MATTING_SIDE, "isnet_fp32")

    assert iou(int8, fp32) > 0.99


def test_the_stages_model_runs_its_convolutions_on_8_bit_integers():
    graph = onnx.load(str(model_path(MATTING_MODEL))).graph
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    quantized = [node for node in convolutions if set(node.input[:2]) <= dequantized]

    # All but the last two (see model_conversion.isnet_int8).
    assert len(quantized) == len(convolutions) - 2 > 100
