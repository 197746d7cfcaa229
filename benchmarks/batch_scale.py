"""A large batch on the embedded stack: N small photos (fast mode, no face) in one ZIP through
the HTTP API, the real batch state machine and a pipeline execution per item. Prints the wall
time, items per minute, the slowest item and the count per status; asserts nothing (the test
tests/e2e/test_batch_scale.py checks that every item is accounted for).

    python benchmarks/batch_scale.py [items]     # default 500
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image, ImageOps

from silhouette.assets import Manifest
from silhouette.local.stack import EmbeddedStack
from silhouette.names import PROJECT_ROOT

KEY = "batch-scale-key-0123456789"
TENANT = "batch-scale"
# Photos of people and photos without (their items end REJECTED: no person detected).
SAMPLES = ("bus", "zidane", "chelsea", "coffee")
SIDE = 256  # small photos: the figure is about the batch machinery, not the models


def small_photos(count: int, manifest: Manifest) -> list[tuple[str, bytes]]:
    """`count` JPEGs, each a different small crop of a sample photo (so no two are alike)."""
    photos = []
    for index in range(count):
        name = SAMPLES[index % len(SAMPLES)]
        with Image.open(manifest.path(name)) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            shrink = 0.85 + 0.15 * ((index // len(SAMPLES)) % 7) / 6
            width, height = round(image.width * shrink), round(image.height * shrink)
            left = (image.width - width) * ((index * 7) % 5) // 4
            image = image.crop((left, 0, left + width, height))
            image.thumbnail((SIDE, SIDE))
            if index % 2:
                image = ImageOps.mirror(image)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=85)
        photos.append((f"{index:04d}-{name}.jpg", buffer.getvalue()))
    return photos


def as_zip(photos: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in photos:
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass(frozen=True)
class BatchRun:
    batch_id: str
    wall_seconds: float
    progress: dict
    report_rows: list[dict[str, str]]
    archive_names: set[str]  # the files of the results archive
    item_timings: list[dict[str, int]]  # each item's result.json `timings_ms`, in report order

    @property
    def items_per_minute(self) -> float:
        return len(self.item_timings) / self.wall_seconds * 60

    @property
    def stage_seconds(self) -> list[float]:
        """Each item's time in its stages (its pipeline, without waiting for its turn)."""
        return [
            sum(ms for stage, ms in timing.items() if stage != "total") / 1000
            for timing in self.item_timings
        ]

    @property
    def end_to_end_seconds(self) -> list[float]:
        """Each item's time from the batch's expansion to its end (its wait included)."""
        return [timing["total"] / 1000 for timing in self.item_timings]


def run_batch(stack: EmbeddedStack, key: str, archive: bytes, timeout: float) -> BatchRun:
    """Submit the ZIP through the API, poll until the batch has ended, and read its report
    and results archive."""
    session = requests.Session()
    session.headers["x-api-key"] = key
    url = stack.api_url
    body = {"source": "zip", "options": {"quality": "fast", "face": False}}
    started = time.monotonic()
    created = session.post(f"{url}/batches", json=body, timeout=30).json()
    form = created["upload"]
    files = {"file": ("photos.zip", archive, "application/zip")}
    session.post(form["url"], data=form["fields"], files=files, timeout=120).raise_for_status()
    batch_id = created["batch"]["batch_id"]
    while True:
        progress = session.get(f"{url}/batches/{batch_id}", timeout=30).json()
        if progress["status"] not in ("WAITING", "RUNNING"):
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"batch {batch_id} still {progress['status']} after {timeout}s")
        time.sleep(2)
    wall = time.monotonic() - started
    links = session.get(f"{url}/batches/{batch_id}/report", timeout=30).json()
    report = requests.get(links["report"]["url"], timeout=60).text
    rows = list(csv.DictReader(io.StringIO(report)))
    results = requests.get(links["results"]["url"], timeout=300).content
    with zipfile.ZipFile(io.BytesIO(results)) as archive:
        names = set(archive.namelist())
        # Each item's times, from the result.json the archive holds for it.
        timings = [json.loads(archive.read(row["result_file"]))["timings_ms"] for row in rows]
    return BatchRun(batch_id, wall, progress, rows, names, timings)


def main(count: int) -> None:
    manifest = Manifest.load(PROJECT_ROOT / "samples" / "manifest.json")
    archive = as_zip(small_photos(count, manifest))
    with (
        tempfile.TemporaryDirectory() as scratch,
        EmbeddedStack(
            log_path=Path(scratch) / "lambda.log", api_keys={KEY: TENANT}, provisioned=True
        ) as stack,
    ):
        run = run_batch(stack, KEY, archive, timeout=3600)
    print(f"batch of {count} photos ({SIDE} px, fast mode, no face) on the embedded stack")
    print(f"  status {run.progress['status']}, counts {run.progress['counts']}")
    print(f"  wall {run.wall_seconds:.0f} s, {run.items_per_minute:.0f} items/min")
    for label, seconds in (
        ("in its stages", run.stage_seconds),
        ("from expansion to end", run.end_to_end_seconds),
    ):
        print(
            f"  item time {label}: median {statistics.median(seconds):.1f} s, "
            f"slowest {max(seconds):.1f} s"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
