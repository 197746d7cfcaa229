"""Captures through the public HTTP API on the embedded stack: one job, several photos of one
person (front, side, portrait, card), each uploaded through its own presigned POST; the pipeline
starts once the last has arrived, and a view that never comes expires the job, named."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from PIL import Image

from silhouette.schema import View
from silhouette.service import keys, records
from silhouette.settings import get_settings
from tests.e2e.test_api import call, job_objects, poll_until_finished, post_file
from tests.synthetic_scenes import (
    TUNGSTEN_LIKE,
    card_texture,
    chart_texture,
    load,
    pinhole_homography,
    render,
    true_mm_per_px,
    with_cast,
)

pytestmark = pytest.mark.e2e

SWEEPER = "SweeperFunction"


def request_capture(stack, views: dict[str, str], **options) -> dict:
    body = {
        "views": {
            view: {
                "content_type": "image/png" if name.endswith(".png") else "image/jpeg",
                "filename": name,
            }
            for view, name in views.items()
        },
        "options": options,
    }
    response = call(stack, "POST", "/uploads", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def photo_bytes(sample, name: str) -> bytes:
    return sample.path(name).read_bytes()


def test_a_capture_starts_once_its_last_view_arrives_and_measures_the_body(stack, sample, eval_set):
    created = request_capture(
        stack, {"front": "bus.jpg", "side": "messi.jpg", "portrait": "astronaut.png"}, height_cm=178
    )
    job_id = created["job"]["job_id"]
    forms = created["views"]
    assert set(forms) == {"front", "side", "portrait"}
    assert created["upload"] == forms["front"]
    assert created["job"]["views"] == {
        "front": "bus.jpg",
        "side": "messi.jpg",
        "portrait": "astronaut.png",
    }
    assert created["job"]["options"]["measurements"] is True  # a capture measures by default

    assert post_file(forms["side"], eval_set.path("messi").read_bytes()).status_code == 204
    assert post_file(forms["front"], photo_bytes(sample, "bus")).status_code == 204
    time.sleep(1.5)  # the two arrivals' events have long been delivered
    assert call(stack, "GET", f"/jobs/{job_id}").json()["status"] == "QUEUED"

    portrait = post_file(forms["portrait"], photo_bytes(sample, "astronaut"), "image/png")
    assert portrait.status_code == 204
    assert poll_until_finished(stack, job_id, timeout=240)["status"] == "COMPLETED"

    result = call(stack, "GET", f"/jobs/{job_id}/result").json()
    assert set(result["view_images"]) == {"side", "portrait"}
    assert result["side_person"]["keypoints"]
    assert result["skin"]["status"] == "ok" and result["skin"]["view"] == "portrait"
    assert 1 <= result["skin"]["monk"] <= 10
    assert result["calibration"]["source"] == "grey_world" and result["calibration"]["estimated"]
    measured = result["measurements"]
    assert measured["status"] == "ok" and measured["scale"]["source"] == "height"
    hips = measured["values"]["hip_width"]
    assert hips["status"] == "ok" and hips["error_cm"] > 0
    assert 20 < hips["value_cm"] < 60  # a grown man's hips, from his stated height
    # The side photo is a kick, not a standing profile: its depths are refused, and say why.
    for name in ("hip_depth", "hip_circumference"):
        depth = measured["values"][name]
        assert depth["status"] == "missing" and "side view" in depth["reason"], depth
    assert measured["confidence"] < 0.5 and measured["notes"]
    sheet = call(stack, "GET", f"/jobs/{job_id}/measurements.csv")
    assert sheet.status_code == 200 and sheet.headers["Content-Type"].startswith("text/csv")
    rows = {row["measurement"]: row for row in csv.DictReader(io.StringIO(sheet.text))}
    assert list(rows) == list(measured["values"])
    assert float(rows["hip_width"]["value_cm"]) == hips["value_cm"]
    assert rows["hip_depth"]["reason"] == measured["values"]["hip_depth"]["reason"]
    picture = requests.get(result["downloads"]["measurements"]["url"], timeout=30)
    assert picture.content.startswith(b"\xff\xd8")  # the measured lines and values, a JPEG
    for artifact in ("person_mask_side", "cutout_side", "overlay", "measurements"):
        assert artifact in result["downloads"], artifact
    # Without store_images, a capture's photos and working images are gone once it has ended.
    assert not any(name.startswith("image") for name in result["downloads"])
    left = job_objects(stack, job_id)
    assert left and not any(key.startswith(keys.PHOTO_PREFIXES) for key in left), left


def test_a_capture_with_store_images_keeps_its_photos(stack, sample):
    created = request_capture(stack, {"front": "bus.jpg", "card": "card.png"}, store_images=True)
    job_id = created["job"]["job_id"]
    assert post_file(created["views"]["card"], photo_bytes(sample, "coffee"), "image/png").ok
    assert post_file(created["views"]["front"], photo_bytes(sample, "bus")).status_code == 204
    assert poll_until_finished(stack, job_id, timeout=240)["status"] == "COMPLETED"

    result = call(stack, "GET", f"/jobs/{job_id}/result").json()
    assert {"image", "image_card"} <= set(result["downloads"])
    stored = job_objects(stack, job_id)
    assert keys.upload(job_id, View.CARD) in stored
    assert result["calibration"]["source"] == "grey_world"  # no card in either photo

    # The bucket's lifecycle keeps the photos the job stored for KeptPhotoDays, and what was
    # derived from them (cutouts, masks, pictures, result.json) for the retention period.
    bucket = stack.outputs["PhotoBucketName"]
    rules = stack.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    kept_days, retention_days = (
        int(stack.template.ref(name)) for name in ("KeptPhotoDays", "ResultRetentionDays")
    )
    assert kept_days < retention_days
    photos = {key for key in stored if key.startswith(keys.PHOTO_PREFIXES)}
    assert keys.working_image(job_id, "image") in photos, stored
    assert len(photos) == 6, stored  # per view: its upload, working image and pixels
    for key in stored:
        expires_in = min(
            rule["Expiration"]["Days"]
            for rule in rules
            if rule["Status"] == "Enabled" and key.startswith(rule["Filter"].get("Prefix", ""))
        )
        assert expires_in == (kept_days if key in photos else retention_days), key


def test_a_capture_whose_view_never_arrives_expires_naming_it(stack, sample):
    created = request_capture(stack, {"front": "bus.jpg", "side": "side.jpg"})
    job_id = created["job"]["job_id"]
    assert post_file(created["views"]["front"], photo_bytes(sample, "bus")).status_code == 204
    expiry = timedelta(seconds=get_settings().capture_upload_expiry_seconds)

    # A capture's forms last longer than a photo's: not due when a photo's form would be.
    photo_due = timedelta(seconds=get_settings().upload_url_expiry_seconds)
    assert stack.run_scheduled(SWEEPER, datetime.now(UTC) + photo_due * 2) == {}
    due = expiry + records.UPLOAD_EVENT_GRACE + timedelta(minutes=1)
    assert stack.run_scheduled(SWEEPER, datetime.now(UTC) + due) == {"expired": 1}

    status = call(stack, "GET", f"/jobs/{job_id}").json()
    assert status["status"] == "EXPIRED"
    assert status["reason"] == "the side view was not uploaded before the upload forms expired"
    assert call(stack, "DELETE", f"/jobs/{job_id}").status_code == 204
    assert job_objects(stack, job_id) == []


def test_a_capture_with_a_broken_view_is_rejected_naming_it(stack, sample):
    created = request_capture(stack, {"front": "bus.jpg", "card": "card.jpg"})
    job_id = created["job"]["job_id"]
    assert post_file(created["views"]["card"], b"\xff\xd8\xff\xe0 not really").status_code == 204
    assert post_file(created["views"]["front"], photo_bytes(sample, "bus")).status_code == 204

    status = poll_until_finished(stack, job_id, timeout=120)
    assert status["status"] == "REJECTED"
    assert status["reason"].startswith("card view: ")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"views": {"side": {"content_type": "image/jpeg"}}}, "views.front"),
        ({"views": {"front": {"content_type": "image/gif"}}}, "views.front.content_type"),
        ({"views": {"front": {"content_type": "image/jpeg"}, "back": {}}}, "views.back"),
        (
            {"views": {"front": {"content_type": "image/jpeg"}}, "content_type": "image/jpeg"},
            "content_type",
        ),
        (
            {"views": {"front": {"content_type": "image/jpeg"}}, "options": {"height_cm": 20}},
            "options.height_cm",
        ),
    ],
)
def test_a_malformed_capture_request_gets_400_naming_the_field(stack, body, field):
    answer = call(stack, "POST", "/uploads", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field


def test_an_oversized_view_is_refused_before_anything_is_created(stack):
    limit = get_settings().max_upload_bytes
    body = {
        "views": {
            "front": {"content_type": "image/jpeg", "size": 1000},
            "side": {"content_type": "image/jpeg", "size": limit + 1},
        }
    }
    answer = call(stack, "POST", "/uploads", json=body)
    assert answer.status_code == 413
    assert call(stack, "GET", "/jobs").json()["jobs"] == []


def test_a_single_photo_job_is_unchanged_by_captures(stack, sample):
    body = {"content_type": "image/jpeg", "filename": "bus.jpg"}
    created = call(stack, "POST", "/uploads", json=body).json()
    assert created.get("views") is None and created["job"].get("views") is None
    assert created["upload"]["fields"]["key"] == keys.upload(created["job"]["job_id"])
    assert post_file(created["upload"], photo_bytes(sample, "bus")).status_code == 204
    assert poll_until_finished(stack, created["job"]["job_id"])["status"] == "COMPLETED"
    result = call(stack, "GET", f"/jobs/{created['job']['job_id']}/result").json()
    assert result["measurements"]["status"] == "off"
    sheet = call(stack, "GET", f"/jobs/{created['job']['job_id']}/measurements.csv")
    assert sheet.status_code == 404 and "measurements" in sheet.json()["message"]
    assert result["skin"]["status"] in ("ok", "unknown")
    assert result["side_person"] is None


def test_a_card_in_the_photo_scales_it_and_a_chart_balances_its_colours(stack, sample):
    # A card drawn 150 px long on the dark coat beside the subject (the detector needs the
    # card's edges to contrast with what is behind them, and about 120 px; the scale this gives
    # is not a real person's, but the stage must carry it through exactly), and the card view, a
    # colour chart on a table: both under the same tungsten-like light.
    bus = load(sample.path("bus"))
    held = pinhole_homography(bus.shape[:2], (400, 560), 150, tilt=20, tilt_axis=30, roll=5)
    front = with_cast(render(bus, held, *card_texture()), TUNGSTEN_LIKE)
    table = load(sample.path("coffee"))
    chart_pose = pinhole_homography(table.shape[:2], (300, 200), 260, tilt=15, tilt_axis=60, roll=0)
    chart_view = with_cast(render(table, chart_pose, *chart_texture()), TUNGSTEN_LIKE)
    created = request_capture(stack, {"front": "front.png", "card": "chart.png"})
    for view, image in (("card", chart_view), ("front", front)):
        assert post_file(created["views"][view], png(image), "image/png").status_code == 204
    job_id = created["job"]["job_id"]
    assert poll_until_finished(stack, job_id, timeout=300)["status"] == "COMPLETED"

    result = call(stack, "GET", f"/jobs/{job_id}/result").json()
    calibration = result["calibration"]
    assert (calibration["source"], calibration["found_in"]) == ("colour_checker", "card")
    assert calibration["residual_delta_e"] < 3 and calibration["cct_before_k"] < 5500
    card = calibration["card"]  # the one in the front photo: the scale
    assert card["mm_per_px"] == pytest.approx(true_mm_per_px(held), rel=0.015)
    measured = result["measurements"]
    assert measured["scale"]["source"] == "card"
    assert measured["scale"]["cm_per_px"] == pytest.approx(card["mm_per_px"] / 10, rel=1e-3)
    shoulders = measured["values"]["shoulder_width"]
    assert shoulders["value_cm"] == pytest.approx(
        shoulders["value_px"] * measured["scale"]["cm_per_px"], abs=0.1
    )


def png(image) -> bytes:
    output = io.BytesIO()
    Image.fromarray(image).save(output, format="PNG")
    return output.getvalue()
