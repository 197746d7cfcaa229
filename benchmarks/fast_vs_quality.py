"""Fast mode against quality mode on the same photos: reads the results and artifacts that
`benchmarks/eval.py` saved for both modes (silhouette-out/eval/{quality,fast}) and prints how
well the fast cutout and clothing mask agree with the quality mode's (IoU of the opaque /
clothing pixels), and the segment stage's time in each mode, the one stage whose code differs:
run again here in process, one photo at a time, on the working image and pose the quality run
saved (the stack's own timings are of 50 jobs sharing two cores). Asserts nothing.

    make eval        # runs both modes, then this
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from silhouette.names import PROJECT_ROOT
from silhouette.schema import Person
from silhouette.service.subject import subject_of
from silhouette.vision.segmentation import person_matte, segment_person


def completed(folder: Path) -> dict[str, dict]:
    """Each photo's result.json in `folder`, for the photos that COMPLETED."""
    results = {}
    for path in sorted(folder.glob("*/result.json")):
        result = json.loads(path.read_text())
        if result.get("status") == "COMPLETED":
            results[path.parent.name] = result
    return results


def opaque(path: Path, band: int) -> np.ndarray:
    """The pixels of an artifact whose `band` (alpha of a cutout, or the mask) is set."""
    with Image.open(path) as image:
        return np.asarray(image.getchannel(band)) >= 128


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def segment_times(folder: Path) -> dict[bool, float]:
    """Milliseconds segment_person takes on the saved photo in quality and in fast mode."""
    image = np.asarray(Image.open(folder / "image.png").convert("RGB"))
    person_mask = np.asarray(Image.open(folder / "person_mask.png").convert("L"))
    person = subject_of(
        Person.model_validate(json.loads((folder / "result.json").read_text())["person"])
    )
    times = {}
    for fast in (False, True):
        started = time.perf_counter()
        segment_person(image, person_mask, person.keypoints, person.face_box, fast)
        times[fast] = (time.perf_counter() - started) * 1000
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "silhouette-out" / "eval")
    arguments = parser.parse_args()
    quality, fast = completed(arguments.out / "quality"), completed(arguments.out / "fast")
    both = sorted(set(quality) & set(fast))
    if not both:
        raise SystemExit(f"no photo COMPLETED in both modes under {arguments.out}: run make eval")
    person_matte(np.zeros((64, 64, 3), np.uint8))  # loads IS-Net: not part of any photo's time
    print(f"{len(both)} photos COMPLETED in both modes\n")
    segment_ms: dict[bool, list[float]] = {False: [], True: []}
    for name in both:
        for fast_mode, milliseconds in segment_times(arguments.out / "quality" / name).items():
            segment_ms[fast_mode].append(milliseconds)
    print("| segment, one photo at a time | quality | fast |")
    print("|---|---|---|")
    for what, pick in (("median", statistics.median), ("slowest", max)):
        print(f"| {what} | {pick(segment_ms[False]):.0f} ms | {pick(segment_ms[True]):.0f} ms |")
    totals = [
        statistics.median(mode[name]["timings_ms"]["total"] for name in both) / 1000
        for mode in (quality, fast)
    ]
    print(f"| job, median under load (50 at once) | {totals[0]:.0f} s | {totals[1]:.0f} s |")
    cutout, clothing = [], []
    for name in both:
        folders = arguments.out / "quality" / name, arguments.out / "fast" / name
        cutout.append(iou(*(opaque(folder / "cutout.png", 3) for folder in folders)))
        clothing.append(iou(*(opaque(folder / "clothing_mask.png", 0) for folder in folders)))
    for what, values in (("cutout", cutout), ("clothing mask", clothing)):
        print(
            f"\n{what} IoU, fast vs quality: median {statistics.median(values):.2f}, "
            f"10th percentile {np.percentile(values, 10):.2f}, min {min(values):.2f} "
            f"({both[int(np.argmin(values))]})"
        )


if __name__ == "__main__":
    main()
