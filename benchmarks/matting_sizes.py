"""The quality/time curve that chose IS-Net's model and input size (segmentation.MATTING_MODEL,
MATTING_SIDE): for the fp32 model and its int8 quantization (model_conversion.isnet_int8) at
each size, the segment's time and how well the final cutout agrees with fp32's at 1024 x 1024
(the size the model was trained at), on the photos `benchmarks/eval.py` saved in quality mode
(working image, person mask and pose, as the segment stage gets them). Asserts nothing.

    make eval        # runs eval.py first, then this
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from fast_vs_quality import completed, iou
from PIL import Image

from silhouette.names import PROJECT_ROOT
from silhouette.schema import Person
from silhouette.service.subject import subject_of
from silhouette.vision.segmentation import Matting, person_matte, segment_person

CANDIDATES = (
    *(Matting(side, "isnet_fp32") for side in (512, 640, 768, 896, 1024)),
    *(Matting(side, "isnet") for side in (640, 768, 1024)),
)
REFERENCE = Matting(1024, "isnet_fp32")


def cutouts(folder: Path) -> dict[Matting, tuple[np.ndarray, float]]:
    """The cutout's opaque pixels and the segment's milliseconds with every candidate, for one
    photo."""
    image = np.asarray(Image.open(folder / "image.png").convert("RGB"))
    person_mask = np.asarray(Image.open(folder / "person_mask.png").convert("L"))
    person = subject_of(
        Person.model_validate(json.loads((folder / "result.json").read_text())["person"])
    )
    found = {}
    for matting in CANDIDATES:
        started = time.perf_counter()
        result = segment_person(
            image, person_mask, person.keypoints, person.face_box, matting=matting
        )
        found[matting] = (result.alpha >= 128, (time.perf_counter() - started) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "silhouette-out" / "eval")
    parser.add_argument("--photos", type=int, default=30)
    arguments = parser.parse_args()
    names = sorted(completed(arguments.out / "quality"))[: arguments.photos]
    if not names:
        raise SystemExit(f"no COMPLETED photo under {arguments.out / 'quality'}: run make eval")
    for model in {matting.model for matting in CANDIDATES}:  # loaded before any photo's time
        person_matte(np.zeros((64, 64, 3), np.uint8), model=model)
    agreement: dict[Matting, list[float]] = {matting: [] for matting in CANDIDATES}
    milliseconds: dict[Matting, list[float]] = {matting: [] for matting in CANDIDATES}
    for name in names:
        found = cutouts(arguments.out / "quality" / name)
        for matting, (cutout, spent) in found.items():
            agreement[matting].append(iou(cutout, found[REFERENCE][0]))
            milliseconds[matting].append(spent)
    side = REFERENCE.side
    print(f"IS-Net against {REFERENCE.model} at {side} x {side}, {len(names)} photos")
    print("| model | side | segment, median | cutout IoU median | 10th percentile | min |")
    print("|---|---|---|---|---|---|")
    for matting in CANDIDATES:
        chosen = " (chosen)" if matting == Matting() else ""
        values = agreement[matting]
        print(
            f"| {matting.model} | {matting.side}{chosen} | "
            f"{statistics.median(milliseconds[matting]):.0f} ms | "
            f"{statistics.median(values):.3f} | {np.percentile(values, 10):.3f} | "
            f"{min(values):.3f} |"
        )


if __name__ == "__main__":
    main()
