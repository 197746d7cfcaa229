"""Batches on the embedded stack: a ZIP and a CSV of URLs run through the real batch state
machine (a Distributed Map over the item list, one pipeline execution per item), and end with
per-item statuses, a report that matches the jobs, a results archive and one event."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from jsonschema import Draft202012Validator

from silhouette.names import PROJECT_ROOT
from silhouette.schema import JobOptions, JobStatus
from silhouette.service import batch_webhooks, batches, jobs, keys
from silhouette.service.batch_records import (
    BATCH_RECORDS,
    TENANT_SLOTS,
    BatchSource,
    BatchStatus,
    TenantSlots,
)
from tests.conftest import API_KEYS
from tests.e2e.helpers import (
    TENANT,
    dead_letters_in,
    received_events,
    subscribe_to_job_events,
    webhook_receiver,
)
from tests.e2e.test_api import KEY_A, call, post_file

FAST = JobOptions(quality="fast", face=False)


def submit(source: BatchSource, data: bytes, options: JobOptions = FAST) -> str:
    """Create a batch and upload its source as a client does; the batch's id."""
    record, form = batches.create_batch(TENANT, source, options)
    content_type = batches.SOURCE_TYPES[source]
    response = requests.post(
        form.url, data=form.fields, files={"file": ("source", data, content_type)}, timeout=30
    )
    assert response.status_code == 204, response.text
    return record.batch_id


def wait_for_batch(stack, batch_id: str, timeout: float = 240) -> batches.BatchProgress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = BATCH_RECORDS.find(batch_id)
        if record is not None and BatchStatus(record.status).is_terminal:
            stack.wait_for_executions(max(1.0, deadline - time.monotonic()))
            return batches.progress(BATCH_RECORDS.find(batch_id))
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} still running after {timeout}s")


def report_rows(stack, batch_id: str) -> list[dict[str, str]]:
    body = stack.client("s3").get_object(
        Bucket=stack.outputs["PhotoBucketName"], Key=keys.batch_report(batch_id)
    )["Body"]
    return list(csv.DictReader(io.StringIO(body.read().decode())))


def results_archive(stack, batch_id: str) -> zipfile.ZipFile:
    body = stack.client("s3").get_object(
        Bucket=stack.outputs["PhotoBucketName"], Key=keys.batch_results(batch_id)
    )["Body"]
    return zipfile.ZipFile(io.BytesIO(body.read()))


def a_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_batch_ends_with_every_item_accounted_for(stack, sample):
    bus, zidane = sample.path("bus").read_bytes(), sample.path("zidane").read_bytes()
    queue_url = subscribe_to_job_events(stack)
    batch_id = submit(
        BatchSource.ZIP,
        a_zip(
            {
                "shoot/bus.jpg": bus,
                "shoot/zidane.jpg": zidane,
                "shoot/cat.png": sample.path("chelsea").read_bytes(),
                "shoot/cut-off.jpg": bus[: len(bus) // 3],
                "notes.txt": b"the shoot of Tuesday",
                "more.zip": a_zip({"inner.jpg": bus}),
                "__MACOSX/shoot/._bus.jpg": b"resource fork",
            }
        ),
    )

    final = wait_for_batch(stack, batch_id)

    assert final.status == BatchStatus.COMPLETED
    assert final.total == 6  # __MACOSX is skipped, not an item
    assert final.done == 6
    assert final.counts == {JobStatus.COMPLETED: 2, JobStatus.REJECTED: 4}
    rows = {row["item"]: row for row in report_rows(stack, batch_id)}
    assert set(rows) == {
        "shoot/bus.jpg", "shoot/zidane.jpg", "shoot/cat.png", "shoot/cut-off.jpg",
        "notes.txt", "more.zip",
    }  # fmt: skip
    for item, row in rows.items():
        job = jobs.get_job(TENANT, row["job_id"])  # each item is a job of its own
        assert job.batch is not None and job.batch.batch_id == batch_id
        assert job.batch.item == item
        assert row["status"] == job.status.value
        assert row["reason"] == (job.reason or "")
    assert rows["shoot/bus.jpg"]["status"] == "COMPLETED"
    assert float(rows["shoot/bus.jpg"]["person_confidence"]) > 0.5
    assert rows["shoot/bus.jpg"]["top_colours"]
    assert rows["shoot/cat.png"]["reason"] == "no person detected"
    assert "nested archive" in rows["more.zip"]["reason"]
    assert "not an image" in rows["notes.txt"]["reason"]
    assert rows["shoot/cut-off.jpg"]["status"] == "REJECTED"

    archive = results_archive(stack, batch_id)
    names = set(archive.namelist())
    assert "report.csv" in names
    for row in rows.values():
        assert row["result_file"] in names
    cutout = rows["shoot/bus.jpg"]["cutout_file"]
    assert cutout in names and archive.read(cutout).startswith(b"\x89PNG")

    events = received_events(stack, queue_url)
    batch_events = [e for e in events if e["detail-type"] == batches.BATCH_COMPLETED]
    assert len(batch_events) == 1
    assert batch_events[0]["detail"]["counts"] == {"COMPLETED": 2, "REJECTED": 4}
    job_events = [
        e for e in events if e["detail"].get("job_id") in {r["job_id"] for r in rows.values()}
    ]
    assert len(job_events) == 6  # every item announced as a single job is


class _Photos(BaseHTTPRequestHandler):
    photos: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        data = self.photos.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def photo_server(sample) -> Iterator[str]:
    _Photos.photos = {
        "/bus.jpg": sample.path("bus").read_bytes(),
        "/coffee.jpg": sample.path("coffee").read_bytes(),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Photos)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_csv_batch_fetches_each_url_and_rejects_the_ones_it_must_not_or_cannot(
    stack, photo_server
):
    text = (
        "id,image_url,sku\n"
        f"p1,{photo_server}/bus.jpg,SKU-1\n"
        f"p2,{photo_server}/coffee.jpg,SKU-2\n"
        f"p3,{photo_server}/gone.jpg,SKU-3\n"
        "p4,http://10.0.0.7/photo.jpg,SKU-4\n"
        "p5,,SKU-5\n"
    )
    batch_id = submit(BatchSource.CSV, text.encode())

    final = wait_for_batch(stack, batch_id)

    assert final.status == BatchStatus.COMPLETED
    assert final.total == 5
    rows = {row["item"]: row for row in report_rows(stack, batch_id)}
    assert [rows[i]["status"] for i in ("p1", "p2", "p3", "p4", "p5")] == [
        "COMPLETED", "REJECTED", "REJECTED", "REJECTED", "REJECTED",
    ]  # fmt: skip
    assert rows["p2"]["reason"] == "no person detected"
    assert "404" in rows["p3"]["reason"]
    assert "private" in rows["p4"]["reason"]
    assert "image_url is empty" in rows["p5"]["reason"]
    assert rows["p1"]["source"] == f"{photo_server}/bus.jpg"
    assert [rows[i]["sku"] for i in ("p1", "p4")] == ["SKU-1", "SKU-4"]  # carried through


def test_hostile_zips_are_refused_with_reasons_and_nothing_of_them_is_analysed(stack, sample):
    not_a_zip = submit(BatchSource.ZIP, b"PK\x03\x04 but nothing after it")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("../../etc/cron.d/photo.jpg", sample.path("bus").read_bytes())
        # A JPEG's first bytes, then zeros that inflate a thousand times over.
        archive.writestr("bomb.jpg", b"\xff\xd8\xff\xe0" + b"\0" * (64 * 1024 * 1024))
    hostile = submit(BatchSource.ZIP, bomb.getvalue())

    refused = wait_for_batch(stack, not_a_zip)
    assert refused.status == BatchStatus.REJECTED
    assert refused.reason == "not a valid ZIP archive"
    assert refused.total is None and refused.counts == {}

    final = wait_for_batch(stack, hostile)
    assert final.status == BatchStatus.COMPLETED
    rows = {row["source"]: row for row in report_rows(stack, hostile)}
    assert rows["../../etc/cron.d/photo.jpg"]["status"] == "REJECTED"
    assert "unsafe path" in rows["../../etc/cron.d/photo.jpg"]["reason"]
    assert rows["bomb.jpg"]["status"] == "REJECTED"
    assert "compression ratio" in rows["bomb.jpg"]["reason"]


def test_a_photos_batch_waits_for_every_photo_then_runs_them_as_one_batch(stack, sample):
    photos = {"bus.jpg": sample.path("bus"), "coffee.jpg": sample.path("coffee")}
    declared = [{"content_type": "image/jpeg", "filename": name} for name in photos]
    body = {"source": "photos", "photos": declared, "options": {"quality": "fast", "face": False}}
    created = call(stack, "POST", "/batches", json=body)
    assert created.status_code == 201, created.text
    created = created.json()
    batch_id, uploads = created["batch"]["batch_id"], created["photos"]
    assert created["upload"] is None
    assert [upload["filename"] for upload in uploads] == list(photos)

    assert post_file(uploads[0]["upload"], photos["bus.jpg"].read_bytes()).status_code == 204
    time.sleep(2)  # the first arrival's event has long been handled
    assert call(stack, "GET", f"/batches/{batch_id}").json()["status"] == "WAITING"
    assert post_file(uploads[1]["upload"], photos["coffee.jpg"].read_bytes()).status_code == 204
    final = wait_for_batch(stack, batch_id)

    assert final.status == BatchStatus.COMPLETED
    assert (final.total, final.counts) == (2, {JobStatus.COMPLETED: 1, JobStatus.REJECTED: 1})
    rows = {row["item"]: row for row in report_rows(stack, batch_id)}
    assert [rows[name]["job_id"] for name in photos] == [upload["job_id"] for upload in uploads]
    assert (rows["bus.jpg"]["status"], rows["coffee.jpg"]["reason"]) == (
        "COMPLETED",
        "no person detected",
    )
    job = call(stack, "GET", f"/jobs/{uploads[0]['job_id']}").json()
    assert (job["status"], job["batch"]["batch_id"]) == ("COMPLETED", batch_id)


@pytest.mark.parametrize(
    "body",
    [
        {"source": "zip", "photos": [{"content_type": "image/jpeg"}]},
        {"source": "photos"},
        {"source": "photos", "photos": []},
        {"source": "photos", "photos": [{"content_type": "image/gif"}]},
        {"source": "photos", "photos": [{"content_type": "image/jpeg"}], "size": 10},
    ],
)
def test_a_photos_batch_is_refused_unless_it_lists_its_photos_and_only_them(stack, body):
    response = call(stack, "POST", "/batches", json=body)
    assert response.status_code == 400, response.text


@pytest.fixture(scope="module")
def batch_event_validator() -> Draft202012Validator:
    schema = json.loads((PROJECT_ROOT / "schemas" / "batch-event.v1.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_a_batch_webhook_gets_the_batch_s_event_once_with_its_token_then_goes_away(
    stack, sample, batch_event_validator
):
    photo = sample.path("bus").read_bytes()
    with webhook_receiver() as receiver:
        body = {
            "source": "photos",
            "photos": [{"content_type": "image/jpeg", "filename": "bus.jpg"}],
            "options": {"quality": "fast", "face": False},
            "webhook_url": receiver.url,
        }
        created = call(stack, "POST", "/batches", json=body).json()
        batch_id, token = created["batch"]["batch_id"], created["webhook_token"]
        assert post_file(created["photos"][0]["upload"], photo).status_code == 204
        final = wait_for_batch(stack, batch_id)  # and for its execution: the webhook removed

    [(headers, event)] = receiver.requests
    assert headers[batch_webhooks.TOKEN_HEADER] == token and len(token) >= 32
    assert (event["detail-type"], event["detail"]["batch_id"]) == ("Batch Completed", batch_id)
    batch_event_validator.validate(event["detail"])
    assert (
        event["detail"]["counts"]
        == {"COMPLETED": 1}
        == {status.value: count for status, count in final.counts.items()}
    )
    assert call(stack, "GET", f"/batches/{batch_id}").json()["webhook_url"] == receiver.url
    events = stack.client("events")
    name = batch_webhooks.resource_name(batch_id)
    bus = stack.outputs["JobEventBusName"]
    assert events.list_rules(EventBusName=bus, NamePrefix=name)["Rules"] == []
    assert events.list_api_destinations(NamePrefix=name)["ApiDestinations"] == []
    assert events.list_connections(NamePrefix=name)["Connections"] == []


def test_a_webhook_that_refuses_the_event_leaves_it_in_the_dead_letter_queue(stack, sample):
    with webhook_receiver() as receiver:
        receiver.status = 400  # a client error: EventBridge does not retry it
        body = {
            "source": "zip",
            "options": {"quality": "fast", "face": False},
            "webhook_url": receiver.url,
        }
        created = call(stack, "POST", "/batches", json=body).json()
        archive = a_zip({"cat.png": sample.path("chelsea").read_bytes()})
        assert post_file(created["upload"], archive, "application/zip").status_code == 204
        wait_for_batch(stack, created["batch"]["batch_id"])

    assert len(receiver.requests) == 1
    letters = dead_letters_in(stack, "BatchWebhookDeadLetterQueueArn")
    mine = [(e, a) for e, a in letters if e["detail"]["batch_id"] == created["batch"]["batch_id"]]
    [(event, attributes)] = mine
    assert event["detail"]["counts"] == {"REJECTED": 1}
    assert attributes["ERROR_CODE"] == "400"


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.7/hook", "ftp://example.com/hook", "https://user:pw@example.com/hook"],
)
def test_a_webhook_url_the_service_may_not_call_is_refused(stack, url):
    body = {"source": "zip", "webhook_url": url}
    response = call(stack, "POST", "/batches", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "webhook_url"


def test_a_tenant_s_slots_in_the_batches_table_are_not_a_batch(stack):
    tenant = API_KEYS[KEY_A]
    TENANT_SLOTS.take(tenant, "0" * 32, limit=1)
    try:
        response = call(stack, "GET", f"/batches/{TenantSlots.key(tenant)}")
    finally:
        TENANT_SLOTS.give_back(tenant, "0" * 32)
    assert response.status_code == 404, response.text
