"""Fast mode against quality mode on the same photos: reads the results and artifacts that
`benchmarks/eval.py` saved for both modes (silhouette-out/eval/{quality,fast}) and prints, as a
Markdown table, each stage's median time per mode and how well the fast cutout and clothing mask
agree with the quality mode's (IoU of the opaque / clothing pixels). Asserts nothing.

    make eval        # runs both modes, then this
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from silhouette.local.stack import PROJECT_ROOT

STAGES = ("ingest", "pose", "segment", "colors", "face", "finalize", "total")


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


def summary(values: list[float], unit: str = "") -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.0f}{unit} (max {max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "silhouette-out" / "eval")
    arguments = parser.parse_args()
    quality, fast = completed(arguments.out / "quality"), completed(arguments.out / "fast")
    both = sorted(set(quality) & set(fast))
    if not both:
        raise SystemExit(f"no photo COMPLETED in both modes under {arguments.out}: run make eval")
    print(f"{len(both)} photos COMPLETED in both modes (medians, ms; max in brackets)\n")
    print("| stage | quality | fast |")
    print("|---|---|---|")
    for stage in STAGES:
        times = [
            summary(
                [
                    mode[name]["timings_ms"][stage]
                    for name in both
                    if stage in mode[name]["timings_ms"]
                ]
            )
            for mode in (quality, fast)
        ]
        print(f"| {stage} | {times[0]} | {times[1]} |")
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
