"""Roles, measurement versions and the tenant's data through the public API on the embedded
stack: what each role may do, what is audited, the errors a client gets, and an erasure that
leaves nothing behind even of a job being analysed. (The README walk-through, run by
test_readme_api.py, covers the usual path: adjust, approve, sheet, audit, export, erase.)"""

from __future__ import annotations

import io
import time
import zipfile

import pypdfium2 as pdfium
import pytest
import requests

from silhouette.schema import JobStatus
from tests.conftest import ADMIN_KEY, API_KEYS, TAILOR_KEY
from tests.e2e.test_api import call, job_objects, poll_until_finished, post_file, request_upload

pytestmark = pytest.mark.e2e

USER_KEY, OTHER_TENANT_KEY = API_KEYS


def measured_photo(stack, sample) -> str:
    """A single photo measured from a stated height (no side view: depths are missing)."""
    created = call(
        stack,
        "POST",
        "/uploads",
        json={"content_type": "image/jpeg", "options": {"height_cm": 178, "face": False}},
    ).json()
    assert post_file(created["upload"], sample.path("bus").read_bytes()).ok
    job_id = created["job"]["job_id"]
    assert poll_until_finished(stack, job_id, timeout=240)["status"] == "COMPLETED"
    return job_id


def audit_entries(stack) -> list[dict]:
    return call(stack, "GET", "/tenant/audit?limit=100", key=ADMIN_KEY).json()["entries"]


def audit_log(stack) -> list[tuple[str, str, str]]:
    return [(entry["action"], entry["role"], entry["target"]) for entry in audit_entries(stack)]


def wait_for_erasure(stack, timeout: float = 120) -> dict:
    """The audit entry of tenant-a's erasure once the tenant-data function has done it."""
    deadline = time.monotonic() + timeout
    while True:
        entries = audit_entries(stack)
        done = [e for e in entries if e["action"] == "erase" and e["detail"]["status"] == "done"]
        if done:
            return done[-1]
        assert time.monotonic() < deadline, "the erasure never finished"
        time.sleep(0.5)


def test_measurement_versions_refuse_what_the_job_does_not_have(stack, sample):
    job_id = measured_photo(stack, sample)
    path = f"/jobs/{job_id}/measurements"
    measured = call(stack, "GET", f"/jobs/{job_id}/result").json()["measurements"]["values"]

    unknown = call(stack, "PATCH", path, json={"values": {"shoe_size": 42}, "source": "tape"})
    assert unknown.status_code == 400 and unknown.json()["field"] == "values"
    assert "shoe_size" in unknown.json()["message"]
    negative = call(stack, "PATCH", path, json={"values": {"hip_width": -1}, "source": "tape"})
    assert negative.status_code == 400 and negative.json()["field"] == "values.hip_width"
    elsewhere = call(
        stack,
        "PATCH",
        path,
        key=OTHER_TENANT_KEY,
        json={"values": {"hip_width": 30}, "source": "x"},
    )
    assert elsewhere.status_code == 404  # another tenant's job does not exist for this key

    adjusted = call(stack, "PATCH", path, json={"values": {"hip_width": 33.3}, "source": "tape"})
    assert adjusted.status_code == 200 and adjusted.json()["current"] == 1
    # Approving needs a role above user; a version must exist.
    approval = f"{path}/approval"
    refused = call(stack, "POST", approval, json={"version": 1})
    assert refused.status_code == 403 and "tailor" in refused.json()["message"]
    missing = call(stack, "POST", approval, key=TAILOR_KEY, json={"version": 2})
    assert missing.status_code == 400 and missing.json()["field"] == "version"
    assert (
        call(stack, "POST", approval, key=TAILOR_KEY, json={"version": 0}).json()["approved"] == 0
    )

    # The sheet of any version; the analysis' values stay in the result.
    original = call(stack, "GET", f"{path}.pdf?version=0")
    assert original.headers["Content-Type"] == "application/pdf"
    text = pdfium.PdfDocument(original.content)[0].get_textpage().get_text_range()
    assert f"{measured['hip_width']['value_cm']:.1f}" in text and "Original analysis" in text
    assert "33.3" not in text
    latest = pdfium.PdfDocument(call(stack, "GET", f"{path}.pdf").content)
    assert "33.3" in latest[0].get_textpage().get_text_range()
    assert call(stack, "GET", f"{path}.csv?version=2").status_code == 404
    result = call(stack, "GET", f"/jobs/{job_id}/result").json()
    assert result["measurements"]["values"]["hip_width"] == measured["hip_width"]


def test_a_job_without_measurements_or_not_finished_has_no_versions(stack, sample):
    created = request_upload(stack, content_type="image/png")
    job_id = created["job"]["job_id"]
    adjustment = {"values": {"hip_width": 30}, "source": "tape"}
    queued = call(stack, "PATCH", f"/jobs/{job_id}/measurements", json=adjustment)
    assert queued.status_code == 409 and queued.json()["error"] == "not_finished"

    assert post_file(created["upload"], sample.path("astronaut").read_bytes(), "image/png").ok
    assert poll_until_finished(stack, job_id, timeout=240)["status"] == "COMPLETED"
    for method, path in (("PATCH", ""), ("GET", "/history"), ("GET", ".pdf")):
        body = adjustment if method == "PATCH" else None
        answer = call(stack, method, f"/jobs/{job_id}/measurements{path}", json=body)
        assert answer.status_code == 404, (path, answer.text)


def test_tenant_wide_operations_need_an_admin_key_and_admin_reads_are_audited(stack):
    for key in (USER_KEY, TAILOR_KEY):
        for method, path in (("GET", "/tenant/audit"), ("GET", "/tenant/export")):
            assert call(stack, method, path, key=key).status_code == 403
        refused = call(stack, "DELETE", "/tenant/data", key=key)
        assert refused.status_code == 403 and "admin" in refused.json()["message"]

    assert call(stack, "GET", "/jobs", key=USER_KEY).status_code == 200
    assert call(stack, "GET", "/jobs?limit=5", key=ADMIN_KEY).status_code == 200
    log = audit_log(stack)
    assert ("read", "admin", "/jobs") in log
    assert not [entry for entry in log if entry[1] != "admin"]  # a user's read is not audited
    assert {"limit": "5"} in [entry.get("detail") for entry in audit_entries(stack)]
    # Another tenant's user key may not read it either.
    assert call(stack, "GET", "/tenant/audit", key=OTHER_TENANT_KEY).status_code == 403


def test_erasing_the_tenant_leaves_nothing_of_a_job_being_analysed(stack, sample):
    other = request_upload(stack, content_type="image/png", key=OTHER_TENANT_KEY)
    created = request_upload(stack, content_type="image/png")
    job_id = created["job"]["job_id"]
    assert post_file(created["upload"], sample.path("astronaut").read_bytes(), "image/png").ok
    deadline = time.monotonic() + 120
    while call(stack, "GET", f"/jobs/{job_id}").json()["status"] != JobStatus.PROCESSING:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)

    erasure = call(stack, "DELETE", "/tenant/data", key=ADMIN_KEY)

    assert erasure.status_code == 202 and erasure.json()["status"] == "ERASING", erasure.text
    assert wait_for_erasure(stack)["detail"]["jobs"] == 1
    # The execution runs on: each stage finds the record gone and erases what it wrote.
    stack.wait_for_executions()
    assert call(stack, "GET", f"/jobs/{job_id}").status_code == 404
    assert job_objects(stack, job_id) == []
    assert call(stack, "GET", "/jobs").json()["jobs"] == []
    # Another tenant's job is untouched.
    assert call(stack, "GET", f"/jobs/{other['job']['job_id']}", key=OTHER_TENANT_KEY).ok


def test_an_export_is_prepared_in_the_background_and_then_handed_out(stack, sample):
    job_id = measured_photo(stack, sample)

    first = call(stack, "GET", "/tenant/export", key=ADMIN_KEY)
    assert first.status_code == 202 and first.headers["Retry-After"] == "5"
    assert first.json()["status"] == "RUNNING" and first.json()["download"] is None
    deadline = time.monotonic() + 60
    while (ready := call(stack, "GET", "/tenant/export", key=ADMIN_KEY)).status_code == 202:
        assert ready.json()["export_id"] == first.json()["export_id"]  # the same, not a new one
        assert time.monotonic() < deadline, "the export never finished"
        time.sleep(0.3)

    export = ready.json()
    assert ready.status_code == 200 and export["status"] == "READY" and export["jobs"] == 1
    archive = zipfile.ZipFile(
        io.BytesIO(requests.get(export["download"]["url"], timeout=30).content)
    )
    assert f"jobs/{job_id}/result.json" in archive.namelist()
    assert {name.split("/")[2] for name in archive.namelist() if name.startswith("jobs/")} >= {
        "result.json",
        "uploads",
        "artifacts",
    }
    # Asked again, the same export; asked for a fresh one, a new one.
    assert (
        call(stack, "GET", "/tenant/export", key=ADMIN_KEY).json()["export_id"]
        == export["export_id"]
    )
    fresh = call(stack, "GET", "/tenant/export?fresh=true", key=ADMIN_KEY)
    assert fresh.status_code == 202 and fresh.json()["export_id"] != export["export_id"]
    assert stack.runtime.wait_until_idle(60)
    entries = audit_entries(stack)
    exports = [entry["detail"]["status"] for entry in entries if entry["action"] == "export"]
    assert exports == ["requested", "done", "requested", "done"]
