"""The quality/time curve that chose IS-Net's input size (segmentation.MATTING_SIDE): for each
size, the matte's time and how well the final cutout agrees with the one at 1024 x 1024 (the
size the model was trained at), on the photos `benchmarks/eval.py` saved in quality mode
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
from silhouette.vision.segmentation import MATTING_SIDE, person_matte, segment_person

SIDES = (512, 640, 768, 896, 1024)
REFERENCE = 1024


def cutouts(folder: Path) -> dict[int, tuple[np.ndarray, float]]:
    """The cutout's opaque pixels and the segment's milliseconds at every size, for one photo."""
    image = np.asarray(Image.open(folder / "image.png").convert("RGB"))
    person_mask = np.asarray(Image.open(folder / "person_mask.png").convert("L"))
    person = subject_of(
        Person.model_validate(json.loads((folder / "result.json").read_text())["person"])
    )
    found = {}
    for side in SIDES:
        started = time.perf_counter()
        result = segment_person(
            image, person_mask, person.keypoints, person.face_box, matting_side=side
        )
        found[side] = (result.alpha >= 128, (time.perf_counter() - started) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "silhouette-out" / "eval")
    parser.add_argument("--photos", type=int, default=30)
    arguments = parser.parse_args()
    names = sorted(completed(arguments.out / "quality"))[: arguments.photos]
    if not names:
        raise SystemExit(f"no COMPLETED photo under {arguments.out / 'quality'}: run make eval")
    person_matte(np.zeros((64, 64, 3), np.uint8))  # loads IS-Net: not part of any photo's time
    agreement: dict[int, list[float]] = {side: [] for side in SIDES}
    milliseconds: dict[int, list[float]] = {side: [] for side in SIDES}
    for name in names:
        found = cutouts(arguments.out / "quality" / name)
        for side, (cutout, spent) in found.items():
            agreement[side].append(iou(cutout, found[REFERENCE][0]))
            milliseconds[side].append(spent)
    print(f"IS-Net input size against {REFERENCE} x {REFERENCE}, {len(names)} photos")
    print("| side | segment, median | cutout IoU median | 10th percentile | min |")
    print("|---|---|---|---|---|")
    for side in SIDES:
        chosen = " (chosen)" if side == MATTING_SIDE else ""
        values = agreement[side]
        print(
            f"| {side}{chosen} | {statistics.median(milliseconds[side]):.0f} ms | "
            f"{statistics.median(values):.3f} | {np.percentile(values, 10):.3f} | "
            f"{min(values):.3f} |"
        )


if __name__ == "__main__":
    main()
