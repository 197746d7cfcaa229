"""The README's curl walk-throughs work as written (a job, a batch): run their steps with bash,
curl and jq against the embedded stack's API, as a client holding nothing but an API key
would."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from silhouette.names import PROJECT_ROOT
from silhouette.service import records
from tests.conftest import ADMIN_KEY, API_KEYS, TAILOR_KEY
from tests.e2e.helpers import FINISHED
from tests.e2e.test_api import call
from tests.e2e.test_tenant_access import wait_for_erasure

pytestmark = pytest.mark.e2e


def readme_steps(heading: str) -> dict[int, str]:
    """The numbered steps (`# 1. ...`) of the first shell block with any under `heading`."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index(heading) :]
    steps_block = r"```sh\n((?:(?!```).)*?^# 1\. .*?)```"
    block = re.search(steps_block, section, re.DOTALL | re.MULTILINE).group(1)
    steps: dict[int, str] = {}
    number = 0
    for line in block.splitlines():
        if match := re.match(r"# (\d+)\. ", line):
            number = int(match.group(1))
        if number:
            steps[number] = steps.get(number, "") + line + "\n"
    return steps


def step_runner(
    stack, steps: dict[int, str], cwd: Path, variable: str, keys: dict[str, str] | None = None
) -> Callable[..., str]:
    """Runs steps by number with bash, as the reader would, with the API's URL and key (and
    `keys`: more of them by variable) and `variable` (the id an earlier step set) in the
    environment; their output."""
    key = next(iter(API_KEYS))

    def run(*numbers: int, value: str = "") -> str:
        script = "set -euo pipefail\n" + "".join(steps[number] for number in numbers)
        environment = {
            "PATH": "/usr/bin:/bin",
            "API": stack.api_url,
            "KEY": key,
            variable: value,
            **(keys or {}),
        }
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl, jq")
def test_the_readme_curl_walk_through(stack, sample, tmp_path):
    steps = readme_steps("### The HTTP API")
    assert sorted(steps) == [1, 2, 3, 4, 5]
    (tmp_path / "me.jpg").write_bytes(sample.path("zidane").read_bytes())
    run = step_runner(stack, steps, tmp_path, "JOB")

    run(1, 2)
    job_id = json.loads((tmp_path / "job.json").read_text())["job"]["job_id"]
    deadline = time.monotonic() + 90
    while (status := json.loads(run(3, value=job_id)))["status"] not in FINISHED:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["status"] == "COMPLETED"
    result = run(4, value=job_id)

    assert '"filename": "me-cutout.png"' in result
    assert (tmp_path / "me-cutout.png").read_bytes()[:4] == b"\x89PNG"
    assert run(5, value=job_id).strip() == "204"
    assert records.DYNAMODB_RECORDS.find(job_id) is None


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl, jq")
def test_the_readme_batch_walk_through(stack, sample, tmp_path):
    steps = readme_steps("### Batches")
    assert sorted(steps) == [1, 2, 3, 4]
    with zipfile.ZipFile(tmp_path / "shoot.zip", "w") as shoot:
        shoot.write(sample.path("bus"), "bus.jpg")
        shoot.write(sample.path("chelsea"), "cat.png")
    run = step_runner(stack, steps, tmp_path, "BATCH")

    run(1, 2)
    batch_id = json.loads((tmp_path / "batch.json").read_text())["batch"]["batch_id"]
    deadline = time.monotonic() + 180
    while (batch := json.loads(run(3, value=batch_id)))["status"] in ("WAITING", "RUNNING"):
        assert time.monotonic() < deadline, batch
        time.sleep(1)
    run(4, value=batch_id)

    assert (batch["status"], batch["total"], batch["counts"]) == (
        "COMPLETED",
        2,
        {"COMPLETED": 1, "REJECTED": 1},
    )
    stem = f"batch-{batch_id[:8]}"
    with (tmp_path / f"{stem}-report.csv").open(newline="") as report:
        rows = {row["item"]: row for row in csv.DictReader(report)}
    assert (rows["bus.jpg"]["status"], rows["cat.png"]["reason"]) == (
        "COMPLETED",
        "no person detected",
    )
    with zipfile.ZipFile(tmp_path / f"{stem}-results.zip") as results:
        assert "report.csv" in results.namelist()
        assert rows["bus.jpg"]["cutout_file"] in results.namelist()


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl, jq")
def test_the_readme_capture_walk_through(stack, sample, eval_set, tmp_path):
    steps = readme_steps("### Body analysis")
    assert sorted(steps) == [1, 2, 3, 4]
    (tmp_path / "front.jpg").write_bytes(sample.path("bus").read_bytes())
    (tmp_path / "side.jpg").write_bytes(eval_set.path("messi").read_bytes())
    (tmp_path / "portrait.png").write_bytes(sample.path("astronaut").read_bytes())
    run = step_runner(stack, steps, tmp_path, "JOB")

    run(1, 2)
    job_id = json.loads((tmp_path / "capture.json").read_text())["job"]["job_id"]
    deadline = time.monotonic() + 240
    while (status := json.loads(run(3, value=job_id)))["status"] not in FINISHED:
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert status["status"] == "COMPLETED"
    skin, source, hip_width = map(
        json.loads, re.split(r"\n(?=[{\"])", run(4, value=job_id).strip())
    )

    assert skin["status"] == "ok" and skin["view"] == "portrait"
    assert source == "grey_world"
    assert hip_width["status"] == "ok" and hip_width["error_cm"] > 0
    with (tmp_path / "measurements.csv").open(newline="") as sheet:
        rows = {row["measurement"]: row for row in csv.DictReader(sheet)}
    assert float(rows["hip_width"]["value_cm"]) == hip_width["value_cm"]

    # The measurements adjusted, approved, printed; the tenant's data exported and erased.
    steps = readme_steps("#### Adjustments, approvals")
    assert sorted(steps) == [1, 2, 3, 4, 5, 6, 7]
    run = step_runner(
        stack, steps, tmp_path, "JOB", {"TAILOR_KEY": TAILOR_KEY, "ADMIN_KEY": ADMIN_KEY}
    )
    assert run(1, value=job_id).strip() == "1"
    history = [json.loads(line) for line in run(2, value=job_id).splitlines()]
    assert history == [
        {"version": 0, "source": "analysis", "hip_width": hip_width["value_cm"]},
        {"version": 1, "source": "tape measure", "hip_width": 36.5},
    ]
    user_as_tailor = step_runner(
        stack, steps, tmp_path, "JOB", {"TAILOR_KEY": next(iter(API_KEYS))}
    )
    assert user_as_tailor(3, value=job_id).strip() == "null"  # 403: no `approved` in the error
    assert run(3, value=job_id).strip() == "1"

    run(4, value=job_id)
    pdf = pdfium.PdfDocument((tmp_path / "sheet.pdf").read_bytes())
    text = pdf[0].get_textpage().get_text_range()
    assert len(pdf) == 1 and "36.5" in text and "tape measure" in text and "approved" in text
    with (tmp_path / "adjusted.csv").open(newline="") as adjusted:
        rows = {row["measurement"]: row for row in csv.DictReader(adjusted)}
    assert (rows["hip_width"]["value_cm"], rows["hip_width"]["source"]) == ("36.5", "tape measure")

    audit = run(5).splitlines()
    assert {"adjust user " + job_id, "approve tailor " + job_id} <= set(audit), audit
    assert "read admin /tenant/audit" in audit  # an admin's read is logged before it is answered

    run(6)
    with zipfile.ZipFile(tmp_path / "export.zip") as export:
        names = set(export.namelist())
        assert f"jobs/{job_id}/measurement_versions.json" in names
        exported = json.loads(export.read(f"jobs/{job_id}/result.json"))
    assert exported["measurements"]["values"]["hip_width"]["value_cm"] == hip_width["value_cm"]

    assert json.loads(run(7))["status"] == "ERASING"
    done = wait_for_erasure(stack)
    assert done["detail"]["jobs"] >= 1 and done["detail"]["objects"] > 0
    assert call(stack, "GET", f"/jobs/{job_id}").status_code == 404
