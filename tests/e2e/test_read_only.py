"""On Lambda a container image's filesystem is read-only except /tmp, and HOME is not writable.
Here every function of the stack (API, starter, every stage) runs that way, in a mount namespace
where `/` is remounted read-only with a private writable temporary directory (TMPDIR), and one
real photo goes through the whole product: upload request, upload, pipeline with face, result."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import requests

from silhouette.local.lambda_runtime import FunctionCode
from silhouette.local.stack import EmbeddedStack
from tests.e2e.helpers import FINISHED

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("unshare")),
        reason="a mount namespace needs Linux, root and unshare(1)",
    ),
]

KEY = "read-only-tenant-key-0123456789"
PROBE = Path(__file__).with_name("read_only_probe.py")


@pytest.fixture(scope="module")
def read_only_stack(tmp_path_factory: pytest.TempPathFactory):
    log_path = tmp_path_factory.mktemp("read-only") / "lambda.log"
    with EmbeddedStack(
        log_path=log_path,
        stack_name="silhouette-read-only",
        api_keys={KEY: "read-only"},
        read_only_functions=True,
    ) as stack:
        yield stack


def test_the_sandbox_is_read_only_but_for_tmp(read_only_stack):
    read_only_stack.runtime.register(
        "probe",
        "arn:aws:lambda:us-east-1:123456789012:function:probe",
        FunctionCode(PROBE, "handler", timeout_seconds=10, memory_mb=128),
        environment={},
        concurrency=1,
    )
    paths = {
        "home": os.path.expanduser("~"),
        "package": str(Path(requests.__file__).parent),
        "project": str(PROBE.parent),
        "system temp": "/tmp",
        "temporary directory": "",
    }

    outcome = read_only_stack.runtime.invoke("probe", paths)

    assert not outcome.errored, outcome.payload
    assert json.loads(outcome.payload) == {
        "home": "Read-only file system",
        "package": "Read-only file system",
        "project": "Read-only file system",
        "system temp": "Read-only file system",  # stricter than Lambda: code must use TMPDIR
        "temporary directory": "writable",
    }


def test_every_function_runs_a_real_photo_on_a_read_only_filesystem(read_only_stack, sample):
    api, headers = read_only_stack.api_url, {"x-api-key": KEY}
    created = requests.post(
        f"{api}/uploads",
        headers=headers,
        json={"content_type": "image/jpeg", "filename": "zidane.jpg", "options": {"face": True}},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    job_id, form = created.json()["job"]["job_id"], created.json()["upload"]
    uploaded = requests.post(
        form["url"],
        data=form["fields"],
        files={"file": ("zidane.jpg", sample.path("zidane").read_bytes(), "image/jpeg")},
        timeout=60,
    )
    assert uploaded.status_code == 204, uploaded.text

    deadline = time.monotonic() + 300  # every function starts cold here
    status = {}
    while time.monotonic() < deadline and status.get("status") not in FINISHED:
        time.sleep(0.5)
        status = requests.get(f"{api}/jobs/{job_id}", headers=headers, timeout=60).json()
    result = requests.get(f"{api}/jobs/{job_id}/result", headers=headers, timeout=60).json()

    assert status["status"] == "COMPLETED", status
    assert len(result["person"]["keypoints"]) == 33
    assert result["colors"], "no clothing colours"
    assert result["face"]["status"] == "ok"
    assert {"cutout", "clothing_mask", "overlay", "face_crop"} <= set(result["downloads"])
