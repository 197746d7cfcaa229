"""Silhouette against the naive script on the same photos, in turn: `silhouette analyze` (the
embedded stack, quality mode, a fresh process as a user runs it) and the seed-style script a
user would write instead (one process, one photo after another: Pillow -> one MediaPipe pose
pass -> rembg IS-Net -> KMeans on the cutout's pixels), each round timing both. Prints the wall
times and their ratio per round and the median ratio. Asserts nothing. The naive script runs
once on no photo first, untimed: its first `import rembg` may compile numba kernels.

    python benchmarks/side_by_side.py [--rounds N] [--photos N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from silhouette.assets import Manifest
from silhouette.names import PROJECT_ROOT

EVAL = PROJECT_ROOT / "samples" / "eval"
# Portraits, the photos users upload most (as in the 14-portrait run of issue 12).
FRAMINGS = ("head_and_shoulders", "upper_body")


def portraits(count: int) -> list[Path]:
    """Up to `count` photos of the labelled set with one person, head to at most the hips."""
    manifest = Manifest.load(EVAL / "manifest.json")
    labels = json.loads((EVAL / "labels.json").read_text())
    chosen = [
        manifest.path(asset.name)
        for asset in manifest.assets
        if labels[asset.name]["person"]
        and labels[asset.name]["framing"] in FRAMINGS
        and labels[asset.name].get("people", 1) <= 2
    ]
    return chosen[:count]


def naive(photos: list[Path]) -> None:
    """The naive script itself (run in its own process by `timed`)."""
    import os

    import mediapipe as mp
    import numpy as np
    from mediapipe.tasks.python import BaseOptions, vision
    from PIL import Image
    from rembg import new_session, remove
    from sklearn.cluster import KMeans

    from silhouette.vision.model_files import manifest, model_path

    isnet = manifest().release_path("isnet")  # IS-Net as it ships: fp16, 1024 x 1024
    os.environ["U2NET_HOME"] = str(isnet.parent)
    matting = new_session("dis_custom", model_path=str(isnet))
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path("pose_landmarker"))),
        output_segmentation_masks=True,
    )
    with vision.PoseLandmarker.create_from_options(options) as landmarker:
        for photo in photos:
            image = np.asarray(Image.open(photo).convert("RGB"))
            landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
            cutout = np.asarray(remove(Image.fromarray(image), session=matting))
            pixels = cutout[cutout[..., 3] > 128][:, :3]
            if len(pixels) >= 5:
                KMeans(n_clusters=5, n_init="auto", random_state=0).fit(pixels[::10])


def timed(command: list[str]) -> float:
    """Wall seconds of `command` run to its end (it must succeed)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=PROJECT_ROOT)
    return time.perf_counter() - started


def silhouette_command(photos: list[Path], out: Path) -> list[str]:
    """`silhouette analyze` as a user runs it: a fresh process with its embedded stack."""
    silhouette = str(Path(sys.executable).with_name("silhouette"))
    return [silhouette, "analyze", *map(str, photos), "--out", str(out)]


def naive_command(photos: list[Path]) -> list[str]:
    return [sys.executable, __file__, "--naive", *map(str, photos)]


def warm_up() -> None:
    """The naive script once on no photo, so that rembg's numba kernels are compiled and
    cached before anything is timed."""
    timed(naive_command([]))


def compare(photos: list[Path], rounds: int) -> list[tuple[float, float]]:
    """Wall seconds of (`silhouette analyze`, the naive script) on `photos`, per round."""
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as out:
            ours = timed(silhouette_command(photos, Path(out)))
        times.append((ours, timed(naive_command(photos))))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=14)
    parser.add_argument("--naive", nargs="*", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.naive is not None:
        naive(arguments.naive)
        return
    photos = portraits(arguments.photos)
    warm_up()
    print(f"{len(photos)} portraits, {arguments.rounds} rounds, wall seconds:")
    ratios = []
    for round_number, (ours, theirs) in enumerate(compare(photos, arguments.rounds), 1):
        ratios.append(ours / theirs)
        print(
            f"round {round_number}: silhouette {ours:6.1f}  naive script {theirs:6.1f}  "
            f"silhouette / naive {ratios[-1]:.2f}"
        )
    print(f"median ratio {statistics.median(ratios):.2f} (below 1: Silhouette is faster)")


if __name__ == "__main__":
    main()
