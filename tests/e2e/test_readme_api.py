"""The README's curl walk-through works as written: run its steps with bash, curl and jq against
the embedded stack's API, as a client holding nothing but an API key would."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest

from silhouette.names import PROJECT_ROOT
from silhouette.service import records
from tests.conftest import API_KEYS
from tests.e2e.helpers import FINISHED

pytestmark = pytest.mark.e2e


def readme_steps() -> dict[int, str]:
    """The numbered steps (`# 1. ...`) of the shell block under '### The HTTP API'."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("### The HTTP API") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    steps: dict[int, str] = {}
    number = 0
    for line in block.splitlines():
        if match := re.match(r"# (\d+)\. ", line):
            number = int(match.group(1))
        if number:
            steps[number] = steps.get(number, "") + line + "\n"
    return steps


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl, jq")
def test_the_readme_curl_walk_through(stack, sample, tmp_path):
    steps = readme_steps()
    assert sorted(steps) == [1, 2, 3, 4, 5]
    (tmp_path / "me.jpg").write_bytes(sample.path("zidane").read_bytes())
    key = next(iter(API_KEYS))

    def run(*numbers: int, job: str = "") -> str:
        script = "set -euo pipefail\n" + "".join(steps[number] for number in numbers)
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "API": stack.api_url, "KEY": key, "JOB": job},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(1, 2)
    job_id = json.loads((tmp_path / "job.json").read_text())["job"]["job_id"]
    deadline = time.monotonic() + 90
    while (status := json.loads(run(3, job=job_id)))["status"] not in FINISHED:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["status"] == "COMPLETED"
    result = run(4, job=job_id)

    assert '"filename": "me-cutout.png"' in result
    assert (tmp_path / "me-cutout.png").read_bytes()[:4] == b"\x89PNG"
    assert run(5, job=job_id).strip() == "204"
    assert records.DYNAMODB_RECORDS.find(job_id) is None
