"""Measures the activation ranges IS-Net int8 is quantized with (model_conversion.isnet_int8)
and writes them to layers/models/isnet-int8-calibration.json: the fp32 model run at
MATTING_SIDE on 16 photos of the labelled set that the benchmarks' portraits do not include
(people in groups, full figures, faces, greyscale, outdoors). Run it again only to change the
ranges; then setup makes a new int8 model, whose sha256 goes in layers/models/manifest.json.

    python benchmarks/calibrate_matting.py
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, quantize_static
from PIL import Image
from side_by_side import EVAL, portraits

from silhouette.assets import Manifest
from silhouette.model_conversion import ISNET_INT8_CALIBRATION, isnet_int8_settings
from silhouette.vision.model_files import model_path
from silhouette.vision.segmentation import MATTING_SIDE, matting_input

PHOTOS = 16


class Photos(CalibrationDataReader):
    def __init__(self, photos: list[str]) -> None:
        self._inputs: Iterator[dict[str, np.ndarray]] = (
            {"input": matting_input(np.asarray(Image.open(photo).convert("RGB")), MATTING_SIDE)}
            for photo in photos
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._inputs, None)


def main() -> None:
    manifest = Manifest.load(EVAL / "manifest.json")
    held_out = set(portraits(len(manifest.assets)))
    photos = [
        str(path)
        for path in map(manifest.path, (asset.name for asset in manifest.assets))
        if path not in held_out
    ][:PHOTOS]
    ISNET_INT8_CALIBRATION.unlink(missing_ok=True)  # else quantize_static reads it back
    with tempfile.TemporaryDirectory() as folder:
        quantize_static(
            model_path("isnet_fp32"),
            f"{folder}/int8.onnx",
            calibration_data_reader=Photos(photos),
            calibration_cache_path=ISNET_INT8_CALIBRATION,
            **isnet_int8_settings(),
        )
    print(f"{ISNET_INT8_CALIBRATION}: ranges from {len(photos)} photos")


if __name__ == "__main__":
    main()
