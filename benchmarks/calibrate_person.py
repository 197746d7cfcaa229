"""Fits `person.confidence` (see silhouette/vision/evidence.py): the thresholds and steepness
that maximise the likelihood of the labels of every pose hit on the labelled development set
(samples/eval), written to src/silhouette/vision/person_calibration.json for the pose stage.
A hit on a photo without a person is a negative; a hit overlapping a labelled person (the
subject or an alternate, IoU >= 0.3) a positive; other hits on photos with people (someone
unlabelled in a crowd) are left out. Prints each hit's probability.

    make calibrate        # or: python benchmarks/calibrate_person.py
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np

from silhouette.assets import Manifest
from silhouette.settings import get_settings
from silhouette.vision import decoding, evidence, imaging, pose
from silhouette.vision.types import Box

EVAL = Path(__file__).resolve().parents[1] / "samples" / "eval"
SAME_PERSON_IOU = 0.3
# The grid searched; the steepness stops at 20 (a step 0.1 wide): the set is nearly separable,
# and an unbounded fit would make every probability 0 or 1.
GRID = {
    "agreement": np.arange(0.2, 0.81, 0.05),
    "face": np.arange(0.3, 0.81, 0.05),
    "presence": np.arange(0.1, 0.61, 0.05),
    "steepness": (5.0, 10.0, 20.0),
}


def hits() -> list[tuple[str, int, evidence.Evidence]]:
    """(photo, label, evidence) for every labelled pose hit."""
    manifest = Manifest.load(EVAL / "manifest.json")
    labels = json.loads((EVAL / "labels.json").read_text())
    limits = decoding.Limits.from_settings(get_settings())
    found = []
    for asset in manifest.assets:
        label = labels[asset.name]
        normalised = decoding.normalise(manifest.path(asset.name).read_bytes(), limits)
        image = imaging.decode(normalised.png)
        people = [Box(*box) for box in [label["subject"], *label["alternates"]] if box]
        for hit in pose.candidates(image, pose.find_faces(image)):
            real = any(hit.person.bbox.iou(person) >= SAME_PERSON_IOU for person in people)
            if real or not label["person"]:
                found.append((asset.name, int(real), hit.evidence))
    return found


def log_likelihood(
    labelled: list[tuple[str, int, evidence.Evidence]], fitted: dict[str, float]
) -> float:
    total = 0.0
    for _, label, found in labelled:
        p = min(max(evidence.probability(found, fitted), 1e-6), 1 - 1e-6)
        total += math.log(p if label else 1 - p)
    return total


def main() -> None:
    labelled = hits()
    candidates = [
        dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())
    ]
    best = max(candidates, key=lambda fitted: log_likelihood(labelled, fitted))
    fitted = {name: round(float(value), 3) for name, value in best.items()}
    evidence.CALIBRATION_FILE.write_text(json.dumps(fitted, indent=2) + "\n")
    evidence.calibration.cache_clear()
    for photo, label, found in labelled:
        print(f"{photo:<24} {'person' if label else 'not a person':<13} p={found.probability:.3f}")
    people = sum(label for _, label, _ in labelled)
    print(f"{len(labelled)} hits ({people} people): {fitted} -> {evidence.CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
