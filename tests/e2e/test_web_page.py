"""The web page as a person uses it: Debian's headless Chromium (driven through Playwright,
never a downloaded browser) opens the page at `/` of the embedded stack's API gateway, the same
server `silhouette serve` runs, enters the key, drops real photos and reads what is shown. Each
test saves screenshots in its tmp dir and prints their paths."""

from __future__ import annotations

import base64
import csv
import io
import json
import mimetypes
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from playwright.sync_api import (
    BrowserContext,
    Locator,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)

from tests.conftest import API_KEYS

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; scripts/setup installs it
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = next(iter(API_KEYS))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
ANALYSIS_SECONDS = 180  # a cold stack on 2 cores, with another suite running beside it
FINISHED_STATUS = re.compile(r"^(Completed|Rejected|Failed)")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """Chromium with a fresh profile of its own (the persistent context's user data dir)."""
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "chromium-profile",
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport=DESKTOP,
    )
    yield context
    context.close()


def open_page(browser: BrowserContext, stack, viewport: dict[str, int] = DESKTOP) -> Page:
    page = browser.new_page()
    page.set_viewport_size(viewport)
    page.goto(f"{stack.api_url}/")
    return page


def enter_key(page: Page, key: str = KEY) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use this key").click()


def drop(page: Page, *files: tuple[str, bytes, str]) -> None:
    """Drops (name, content, type) files on the drop zone, as a file manager's drag would."""
    data_transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const {name, data, type} of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, {type}));
            }
            return transfer;
        }""",
        [
            {"name": name, "data": base64.b64encode(content).decode(), "type": content_type}
            for name, content, content_type in files
        ],
    )
    page.locator("#drop-zone").dispatch_event("drop", {"dataTransfer": data_transfer})


def photo(path: Path) -> tuple[str, bytes, str]:
    return path.name, path.read_bytes(), mimetypes.guess_type(path.name)[0]


def card(page: Page, filename: str) -> Locator:
    return page.locator(".card").filter(has=page.get_by_role("heading", name=filename))


def wait_until_finished(page: Page, *filenames: str) -> None:
    for filename in filenames:
        expect(card(page, filename).get_by_role("status")).to_have_text(
            FINISHED_STATUS, timeout=ANALYSIS_SECONDS * 1000
        )


def expect_loaded(image: Locator) -> None:
    """The image has arrived and decoded (a broken link has no natural width)."""
    expect(image).to_be_visible()
    image.evaluate("(img) => img.decode()")
    assert image.evaluate("(img) => img.naturalWidth") > 0


def record_status_texts(page: Page) -> None:
    """Keeps every text the cards' status lines show in `window.statusTexts`."""
    page.evaluate(
        """() => {
            window.statusTexts = [];
            new MutationObserver(() => {
                for (const line of document.querySelectorAll('.card .status')) {
                    window.statusTexts.push(line.textContent);
                }
            }).observe(document.getElementById('cards'),
                       {subtree: true, childList: true, characterData: true});
        }"""
    )


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")
    return path


@dataclass(frozen=True)
class LayerToggle:
    label: str  # the checkbox's
    layer: str  # the layer's selector
    colour: tuple[int, int, int]  # what it draws in, as the server's overlay does


LAYER_TOGGLES = (
    LayerToggle("Skeleton", ".skeleton", (255, 145, 0)),  # the person's left side
    LayerToggle("Person's box", ".person-box", (0, 230, 118)),
    LayerToggle("Clothing outline", ".clothing", (224, 64, 251)),  # its edge, drawn solid
)


def pixels_of_colour(
    photo: Locator, colour: tuple[int, int, int], tmp_path: Path, name: str
) -> int:
    """How many pixels of the photo as shown (with its layers) are near `colour`."""
    path = tmp_path / f"{name}.png"
    photo.screenshot(path=path)
    shown = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    return int((np.abs(shown - colour).max(axis=2) <= 24).sum())


def expect_toggle_hides_and_shows_its_layer(
    card_: Locator, toggle: LayerToggle, tmp_path: Path
) -> None:
    photo = card_.locator(".layered")
    slug = toggle.layer.strip(".")
    # The clothing is painted once its mask has arrived: wait for it.
    for _ in range(50):
        shown = pixels_of_colour(photo, toggle.colour, tmp_path, f"layer-{slug}-on")
        if shown > 200:
            break
        time.sleep(0.2)
    assert shown > 200, (toggle, shown)
    checkbox = card_.get_by_label(toggle.label)
    expect(checkbox).to_be_checked()
    checkbox.focus()
    checkbox.press("Space")  # a keyboard toggle, like a click
    expect(checkbox).not_to_be_checked()
    expect(card_.locator(toggle.layer)).to_be_hidden()
    hidden = pixels_of_colour(photo, toggle.colour, tmp_path, f"layer-{slug}-off")
    assert hidden < shown / 5, (toggle, shown, hidden)
    checkbox.press("Space")
    expect(card_.locator(toggle.layer)).to_be_visible()
    checkbox.uncheck()  # left off until every layer has been checked alone


def expect_everything_zip(page: Page, card_: Locator, stem: str) -> None:
    """The ZIP built in the page holds result.json and every artifact, each intact; a file
    storage refuses is named in the error, and no ZIP is offered."""
    button = card_.get_by_role("button", name=f"Download everything of {stem}.jpg as a ZIP")
    refused = re.compile(r"/cutout\.png\?")
    page.route(
        refused,
        lambda route: route.fulfill(status=403, headers={"Access-Control-Allow-Origin": "*"}),
    )
    button.click()
    expect(card_.locator(".zip-progress")).to_have_text(
        "No ZIP: Storage refused the cutout.png (403: the link may have expired, reload the page)."
    )
    page.unroute(refused)

    with page.expect_download() as started:
        button.click()
    download = started.value
    assert download.suggested_filename == f"{stem}-silhouette.zip"
    expect(card_.locator(".zip-progress")).to_have_text(re.compile(rf"^Saved {stem}-silhouette"))
    with zipfile.ZipFile(download.path()) as archive:
        assert archive.testzip() is None  # every entry's CRC-32 matches its bytes
        names = set(archive.namelist())
        assert {f"{stem}/result.json", f"{stem}/cutout.png", f"{stem}/overlay.jpg"} <= names
        result = json.loads(archive.read(f"{stem}/result.json"))
        assert result["status"] == "COMPLETED"
        cutout = Image.open(io.BytesIO(archive.read(f"{stem}/cutout.png")))
        assert cutout.mode == "RGBA" and cutout.size == (
            result["image"]["width"],
            result["image"]["height"],
        )


def job_ids_by_filename(stack) -> dict[str, str]:
    answer = requests.get(f"{stack.api_url}/jobs", headers={"x-api-key": KEY}, timeout=30)
    return {job["filename"]: job["job_id"] for job in answer.json()["jobs"]}


def test_dropped_photos_show_progress_then_results_and_one_is_deleted(
    stack, sample, browser, tmp_path
):
    page = open_page(browser, stack)
    enter_key(page)
    expect(page.get_by_text("Drop photos here")).to_be_visible()
    record_status_texts(page)
    drop(page, photo(sample.path("zidane")), photo(sample.path("chelsea")))
    wait_until_finished(page, "zidane.jpg", "chelsea.png")

    person = card(page, "zidane.jpg")
    expect(person.get_by_role("status")).to_have_text("Completed")
    seen = page.evaluate("window.statusTexts")
    assert any(text.startswith("Uploading: ") for text in seen), seen
    assert any(text.startswith("Processing") for text in seen), seen
    expect_loaded(person.get_by_role("img", name=re.compile("cut out of the background")))
    annotated = person.get_by_role(
        "img", name=re.compile("with the pose skeleton, the person's box, the clothing outlined")
    )
    expect_loaded(annotated)
    assert person.locator(".swatch").count() > 0
    expect(person.locator(".swatch").first).to_have_text(re.compile(r"\w+ \d+%"))
    expect(person.locator(".facts")).to_contain_text(re.compile(r"Age(\d+–\d+ years|unknown)"))
    expect(person.locator(".facts")).to_contain_text(re.compile(r"Sex(female|male|unknown)"))
    for label in ("Cutout PNG", "Overlay", "result.json"):
        expect(person.get_by_role("link", name=f"Download {label} of zidane.jpg")).to_be_visible()
    result_link = person.get_by_role("link", name="Download result.json of zidane.jpg")
    downloaded = requests.get(result_link.get_attribute("href"), timeout=30)
    assert downloaded.json()["status"] == "COMPLETED"
    screenshot(page, tmp_path, "results-desktop")

    # Under the layers the photo is the plain working image, not the server's overlay.
    assert "/image.png" in annotated.get_attribute("src")
    for toggle in LAYER_TOGGLES:
        expect_toggle_hides_and_shows_its_layer(person, toggle, tmp_path)
    expect(person.get_by_role("img", name="zidane.jpg", exact=True)).to_be_visible()
    for toggle in LAYER_TOGGLES:
        person.get_by_label(toggle.label).check()

    expect_everything_zip(page, person, "zidane")

    cat = card(page, "chelsea.png")
    expect(cat.get_by_role("status")).to_have_text("Rejected: no person detected")
    expect(cat).to_contain_text("Silhouette did not analyse this photo: no person detected.")

    cat_job = job_ids_by_filename(stack)["chelsea.png"]
    delete = cat.get_by_role("button", name="Delete chelsea.png")
    delete.focus()
    page.keyboard.press("Enter")  # the keyboard works as well as a click
    expect(cat).to_have_count(0)
    expect(page.locator(".card")).to_have_count(1)
    gone = requests.get(f"{stack.api_url}/jobs/{cat_job}", headers={"x-api-key": KEY}, timeout=30)
    assert gone.status_code == 404
    screenshot(page, tmp_path, "after-delete")


def test_a_dropped_zip_runs_as_one_batch_with_its_progress_and_report(
    stack, sample, browser, tmp_path
):
    page = open_page(browser, stack)
    enter_key(page)
    expect(page.get_by_text("Drop photos here")).to_be_visible()
    shoot = io.BytesIO()
    with zipfile.ZipFile(shoot, "w") as archive:
        for name in ("zidane", "chelsea"):
            archive.write(sample.path(name), sample.path(name).name)
    record_status_texts(page)
    drop(page, ("shoot.zip", shoot.getvalue(), "application/zip"))

    batch = card(page, "shoot.zip")
    expect(batch.get_by_role("status")).to_have_text(
        "Completed: 2 of 2 photos done (1 completed, 1 rejected)",
        timeout=ANALYSIS_SECONDS * 1000,
    )
    seen = page.evaluate("window.statusTexts")
    assert any(text.startswith("Running: ") for text in seen), seen
    expect(batch.get_by_role("progressbar", name="Progress of shoot.zip")).to_have_attribute(
        "value", "1"
    )
    report_link = batch.get_by_role("link", name="Download Report CSV of shoot.zip")
    report = requests.get(report_link.get_attribute("href"), timeout=30)
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert sorted(row["status"] for row in rows) == ["COMPLETED", "REJECTED"]
    expect(batch.get_by_role("link", name="Download Results ZIP of shoot.zip")).to_be_visible()
    screenshot(page, tmp_path, "batch")


def test_the_result_fits_a_phone_and_every_control_is_reachable_by_keyboard(
    stack, sample, browser, tmp_path
):
    page = open_page(browser, stack, PHONE)
    page.get_by_label("API key").focus()
    page.keyboard.type(KEY)
    page.keyboard.press("Enter")
    expect(page.get_by_text("Drop photos here")).to_be_visible()
    # A clothing mask that cannot be read leaves no clothing layer, and no checkbox for one.
    page.route(
        re.compile(r"/clothing_mask\.png\?"),
        lambda route: route.fulfill(status=403, headers={"Access-Control-Allow-Origin": "*"}),
    )
    drop(page, photo(sample.path("zidane")))
    wait_until_finished(page, "zidane.jpg")
    person = card(page, "zidane.jpg")
    expect(person.get_by_role("status")).to_have_text("Completed")
    expect_loaded(person.get_by_role("img", name=re.compile("cut out of the background")))
    expect(person.get_by_label("Clothing outline")).to_be_hidden()
    expect(person.get_by_label("Skeleton")).to_be_visible()
    expect_loaded(
        person.get_by_role("img", name="zidane.jpg with the pose skeleton, the person's box")
    )
    screenshot(page, tmp_path, "results-phone")

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    controls = person.locator("a:visible, button:visible, input:visible")
    for index in range(controls.count()):
        box = controls.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    # Tab from the file input through the page reaches every control of the card.
    page.locator("#file-input").focus()
    reached = set()
    for _ in range(25):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.getAttribute('aria-label')"))
        reached.add(page.evaluate("document.activeElement.closest('label')?.textContent.trim()"))
    assert {
        "Download Cutout PNG of zidane.jpg",
        "Download Overlay of zidane.jpg",
        "Download result.json of zidane.jpg",
        "Download everything of zidane.jpg as a ZIP",
        "Delete zidane.jpg",
        "Skeleton",
        "Person's box",
    } <= reached, reached


def test_refusals_are_shown_in_plain_words(stack, sample, browser, tmp_path):
    page = open_page(browser, stack)
    enter_key(page, "not-a-key-of-this-stack-000")
    expect(page.get_by_role("alert")).to_have_text(
        "The API key was refused. Check the key and enter it again."
    )
    expect(page.get_by_text("Drop photos here")).to_be_hidden()
    screenshot(page, tmp_path, "bad-key")

    enter_key(page)
    expect(page.get_by_text("Drop photos here")).to_be_visible()
    too_large = b"\xff\xd8" + bytes(20 * 1024 * 1024)
    drop(page, ("huge.jpg", too_large, "image/jpeg"), ("notes.txt", b"hello", "text/plain"))
    expect(card(page, "huge.jpg").get_by_role("alert")).to_have_text(
        "This photo is too large (20.1 MB): over the upload limit."
    )
    expect(card(page, "notes.txt").get_by_role("alert")).to_have_text(
        "Not a JPEG, PNG or WebP photo, nor a ZIP of them: Silhouette cannot read this file."
    )

    # The stack's throttle cannot be held at 429 for long: the browser is answered 429 instead.
    throttled: list[str] = []

    def throttle(route: Route) -> None:
        throttled.append(route.request.method)
        route.fulfill(status=429, headers={"Retry-After": "1"}, json={"message": "slow down"})

    page.route("**/uploads", throttle)
    drop(page, photo(sample.path("zidane")))
    expect(card(page, "zidane.jpg").get_by_role("alert")).to_have_text(
        "Too many requests at once: wait a moment and try again.", timeout=30_000
    )
    assert len(throttled) == 4  # the first try and three more, each after Retry-After
    screenshot(page, tmp_path, "refusals")


def test_the_gateway_serves_the_page_files_and_nothing_beside_them(stack):
    page = requests.get(f"{stack.api_url}/", timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    script = requests.get(f"{stack.api_url}/app.js", timeout=30)
    assert script.headers["Content-Type"].startswith("text/javascript")  # ES modules need it
    for outside in ("/../template.yaml", "/%2e%2e/template.yaml", "/web/index.html"):
        assert requests.get(f"{stack.api_url}{outside}", timeout=30).status_code != 200, outside
    # The API's routes come first: a page file never answers for them.
    assert requests.get(f"{stack.api_url}/jobs", timeout=30).status_code == 403
