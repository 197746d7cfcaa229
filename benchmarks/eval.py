"""The labelled development set (samples/eval: photos from packages, labelled by hand): every
photo goes through the whole pipeline on the embedded stack, and the answers are scored against
the labels. Prints per photo and overall: person precision and recall, subject accuracy (the
reported box overlaps the labelled subject with IoU >= 0.5) and framing accuracy; writes a
contact sheet of every overlay with the labelled box drawn over it. Asserts nothing.

    make eval        # or: python benchmarks/eval.py [--quality fast|quality] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from silhouette.assets import Manifest
from silhouette.client import photo_jobs
from silhouette.client.api_client import ApiClient
from silhouette.local.stack import EmbeddedStack
from silhouette.names import PROJECT_ROOT
from silhouette.schema import JobOptions

EVAL = PROJECT_ROOT / "samples" / "eval"
KEY = "evaluation-key-0123456789"
UNTHROTTLED = {"ApiThrottleRateLimit": "100000", "ApiThrottleBurstLimit": "100000"}
SUBJECT_IOU = 0.5
TILE_HEIGHT = 260
TILES_PER_ROW = 6
LABEL_COLOUR = (255, 0, 255)


@dataclass
class Scored:
    name: str
    label: dict[str, Any]
    result: dict[str, Any]

    @property
    def labelled_person(self) -> bool:
        return bool(self.label["person"])

    @property
    def found_person(self) -> bool:
        return self.result.get("status") == "COMPLETED"

    @property
    def box(self) -> list[float] | None:
        bbox = (self.result.get("person") or {}).get("bbox")
        return [bbox["x"], bbox["y"], bbox["width"], bbox["height"]] if bbox else None

    @property
    def iou(self) -> float:
        """Overlap with the labelled subject; in a group with no clear subject, with whichever
        of its people (the label's `alternates`) overlaps most."""
        if not self.box or not self.label.get("subject"):
            return 0.0
        acceptable = [self.label["subject"]]
        if "no_clear_subject" in self.label.get("tags", []):
            acceptable += self.label.get("alternates", [])
        return max(iou(self.box, box) for box in acceptable)

    @property
    def framing(self) -> str | None:
        return (self.result.get("person") or {}).get("framing")


def iou(a: list[float], b: list[float]) -> float:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    overlap = max(0.0, right - left) * max(0.0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - overlap
    return overlap / union if union else 0.0


def analyse(photos: list[Path], out: Path, options: JobOptions) -> dict[Path, dict[str, Any]]:
    """Each photo's result.json (its status alone when there is none); artifacts are saved
    under `out/<photo stem>/`."""
    with EmbeddedStack(
        log_path=out / "lambda.log", api_keys={KEY: "eval"}, parameters=UNTHROTTLED
    ) as stack:
        api = ApiClient(stack.api_url, KEY, rate_per_second=1000, burst=1000)
        jobs = list(photo_jobs.submit_all(api, photos, options))
        photo_jobs.follow(api, jobs, timeout_seconds=3600)
        for job in jobs:
            if job.terminal:
                photo_jobs.save(api, job, out)
    return {
        job.photo: job.result or {"status": job.state, "reason": photo_jobs.describe(job)}
        for job in jobs
    }


def report(scored: list[Scored]) -> None:
    print(f"{'photo':<28} {'label':<20} {'answer':<44} {'IoU':>5}")
    for item in scored:
        label = item.label["framing"] if item.labelled_person else "no person"
        answer = (
            f"{item.framing or '?'} conf {item.result['person']['confidence']:.2f}"
            if item.found_person
            else f"{item.result.get('status')}: {item.result.get('reason') or ''}"[:44]
        )
        print(f"{item.name:<28} {label:<20} {answer:<44} {item.iou:>5.2f}")
    people = [s for s in scored if s.labelled_person]
    found = [s for s in scored if s.found_person]
    true_positives = sum(s.labelled_person for s in found)
    precision = true_positives / len(found) if found else 0.0
    recall = true_positives / len(people) if people else 0.0
    subject = sum(s.iou >= SUBJECT_IOU for s in people) / len(people)
    framing = sum(s.framing == s.label["framing"] for s in people) / len(people)
    print(
        f"\n{len(scored)} photos ({len(people)} with a person): "
        f"person precision {precision:.2f}, recall {recall:.2f}; "
        f"subject accuracy {subject:.2f} (IoU >= {SUBJECT_IOU}); framing accuracy {framing:.2f}"
    )


def contact_sheet(scored: list[Scored], photos: dict[str, Path], out: Path) -> Path:
    """Every overlay (the photo itself when there is none) with the labelled box in magenta."""
    tiles = [_tile(item, photos[item.name], out / photos[item.name].stem) for item in scored]
    width = max(tile.width for tile in tiles)
    rows = [tiles[i : i + TILES_PER_ROW] for i in range(0, len(tiles), TILES_PER_ROW)]
    sheet = Image.new("RGB", (width * TILES_PER_ROW, (TILE_HEIGHT + 18) * len(rows)), "white")
    for row_index, row in enumerate(rows):
        for column, tile in enumerate(row):
            sheet.paste(tile, (column * width, row_index * (TILE_HEIGHT + 18)))
    path = out / "contact-sheet.png"
    sheet.save(path)
    return path


def _tile(item: Scored, photo: Path, folder: Path) -> Image.Image:
    overlay = folder / "overlay.jpg"
    image = ImageOps.exif_transpose(Image.open(overlay if overlay.exists() else photo))
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    if item.label.get("subject"):
        x, y, w, h = item.label["subject"]
        draw.rectangle([x, y, x + w, y + h], outline=LABEL_COLOUR, width=max(2, image.width // 200))
    scale = TILE_HEIGHT / image.height
    image = image.resize((max(1, round(image.width * scale)), TILE_HEIGHT))
    tile = Image.new("RGB", (TILE_HEIGHT * 3 // 2, TILE_HEIGHT + 18), "white")
    image.thumbnail((tile.width, TILE_HEIGHT))
    tile.paste(image, (0, 0))
    verdict = (
        "ok"
        if item.found_person == item.labelled_person
        and (not item.labelled_person or item.iou >= SUBJECT_IOU)
        else "WRONG"
    )
    caption = f"{item.name[:22]} {item.result.get('status', '?')[:4]} {verdict}"
    ImageDraw.Draw(tile).text((2, TILE_HEIGHT + 3), caption, fill="black")
    return tile


def _saved(folder: Path) -> dict[str, Any]:
    result = folder / "result.json"
    return json.loads(result.read_text()) if result.exists() else {"status": "no result saved"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", choices=["fast", "quality"], default="quality")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "silhouette-out" / "eval")
    parser.add_argument(
        "--rescore", action="store_true", help="score the results saved by the last run again"
    )
    arguments = parser.parse_args()
    out = arguments.out / arguments.quality
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.load(EVAL / "manifest.json")
    labels = json.loads((EVAL / "labels.json").read_text())
    photos = {asset.name: manifest.path(asset.name) for asset in manifest.assets}
    if arguments.rescore:
        results = {photo: _saved(out / photo.stem) for photo in photos.values()}
    else:
        for photo in photos.values():  # an earlier run's overlay must not pass for this one's
            shutil.rmtree(out / photo.stem, ignore_errors=True)
        started = time.monotonic()
        results = analyse(list(photos.values()), out, JobOptions(quality=arguments.quality))
        print(f"{len(photos)} photos analysed in {time.monotonic() - started:.0f}s ({out})\n")
    scored = [Scored(name, labels[name], results[photos[name]]) for name in sorted(photos)]
    report(scored)
    print(f"contact sheet: {contact_sheet(scored, photos, out)}")


if __name__ == "__main__":
    main()
