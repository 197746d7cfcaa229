"""A contact sheet of the labelled development set (samples/eval): every photo, upright as its
EXIF orientation says, with its labelled subject box (magenta), the other acceptable subjects
(orange) and a caption giving its framing, people count and tags, so the labels can be checked
at a glance. Fetches the photos on first use. Asserts nothing.

    python benchmarks/eval_labels_sheet.py silhouette-out/eval-labels.png [--tile 240 --columns 7]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from silhouette.assets import Manifest
from silhouette.names import PROJECT_ROOT

EVAL = PROJECT_ROOT / "samples" / "eval"
SUBJECT = (255, 0, 255)
ALTERNATE = (255, 150, 0)
CAPTION_LINES = 3
LINE_HEIGHT = 12


def tile(photo: Path, name: str, label: dict[str, Any], size: int) -> Image.Image:
    """The photo fitted into a size x size square with its boxes, above a short caption."""
    image = ImageOps.exif_transpose(Image.open(photo))
    if image.mode in ("RGBA", "LA", "P"):  # show transparency as grey, not as hidden colour
        background = Image.new("RGB", image.size, (128, 128, 128))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    image = image.convert("RGB")
    if label.get("size") and list(image.size) != label["size"]:
        raise SystemExit(f"{name}: the photo is {image.size}, labels.json says {label['size']}")
    scale = size / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    boxes = [(box, ALTERNATE, 1) for box in label.get("alternates", [])]
    if label["subject"]:
        boxes.append((label["subject"], SUBJECT, 3))  # drawn last, on top
    for (x, y, w, h), colour, width in boxes:
        draw.rectangle(
            [x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1],
            outline=colour,
            width=width,
        )
    cell = Image.new("RGB", (size, size + CAPTION_LINES * LINE_HEIGHT + 4), "white")
    cell.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    verdict = f"{label['framing']}, {label['people']} people" if label["person"] else "NO PERSON"
    caption = [name, verdict, ", ".join(label.get("tags", []))]
    text = ImageDraw.Draw(cell)
    for line, words in enumerate(caption):
        colour = "black" if line < 2 else (90, 90, 90)
        text.text((2, size + 2 + line * LINE_HEIGHT), words[: size // 6], fill=colour)
    return cell


def contact_sheet(size: int, columns: int) -> Image.Image:
    manifest = Manifest.load(EVAL / "manifest.json")
    labels = json.loads((EVAL / "labels.json").read_text())
    missing = {asset.name for asset in manifest.assets} ^ set(labels)
    if missing:
        raise SystemExit(f"manifest.json and labels.json disagree about: {sorted(missing)}")
    cells = [
        tile(manifest.path(asset.name), asset.name, labels[asset.name], size)
        for asset in manifest.assets
    ]
    rows = -(-len(cells) // columns)
    height = cells[0].height
    sheet = Image.new("RGB", (columns * (size + 6), rows * (height + 6)), (220, 220, 220))
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        sheet.paste(cell, (column * (size + 6) + 3, row * (height + 6) + 3))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the PNG")
    parser.add_argument("--tile", type=int, default=240, help="tile size in pixels")
    parser.add_argument("--columns", type=int, default=7)
    arguments = parser.parse_args()
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(arguments.tile, arguments.columns).save(arguments.out)
    print(arguments.out)


if __name__ == "__main__":
    main()
