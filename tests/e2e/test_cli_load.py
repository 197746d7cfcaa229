"""`silhouette analyze` with many photos on the embedded stack, whose gateway throttles the key
as the usage plan does (10 requests/second, burst 20): the client paces itself and polls with
list calls, so it is never throttled; Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import interruptible, silhouette_command

pytestmark = pytest.mark.e2e


def empty_photos(folder: Path, count: int) -> list[str]:
    """Photos the pipeline rejects at once (empty files): the load is on the API, not models."""
    folder.mkdir()
    paths = [folder / f"empty-{number:02d}.jpg" for number in range(count)]
    for path in paths:
        path.write_bytes(b"")
    return [str(path) for path in paths]


def test_forty_photos_stay_within_the_usage_plan(tmp_path):
    run = subprocess.run(
        silhouette_command("analyze", *empty_photos(tmp_path / "in", 40), "--out", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    rejected = [line for line in run.stdout.splitlines() if ": REJECTED: empty file" in line]
    assert len(rejected) == 40, run.stdout
    assert "throttled" not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


def function_instances(parent_pid: int) -> list[int]:
    """The Lambda instances (worker processes) the embedded stack of `parent_pid` started."""
    marker = f"SILHOUETTE_PARENT_PID={parent_pid}".encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


def photos_of_people(folder: Path, count: int, photo: bytes) -> list[str]:
    """Photos every stage works on: a run of them lasts minutes, however busy the machine."""
    folder.mkdir()
    paths = [folder / f"person-{number:02d}.jpg" for number in range(count)]
    for path in paths:
        path.write_bytes(photo)
    return [str(path) for path in paths]


def test_ctrl_c_stops_cleanly_with_exit_code_130_and_leaves_no_process(tmp_path, sample):
    photos = photos_of_people(tmp_path / "in", 30, sample.path("bus").read_bytes())
    analyze = subprocess.Popen(
        silhouette_command("analyze", *photos, "--out", str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=interruptible,
    )
    try:
        first = analyze.stdout.readline()  # printed once the stack is up
        assert first.startswith("analysing 30 photo(s)"), first + analyze.stderr.read()
        deadline = time.monotonic() + 60
        while not function_instances(analyze.pid) and time.monotonic() < deadline:
            time.sleep(0.2)  # jobs are being submitted: the API function has started
        assert function_instances(analyze.pid), "no function instance ever started"
        analyze.send_signal(signal.SIGINT)
        stdout, stderr = analyze.communicate(timeout=60)
    finally:
        analyze.kill()

    assert analyze.returncode == 130, stdout + stderr
    assert "interrupted after submitting" in stdout
    assert "Traceback" not in stderr
    assert function_instances(analyze.pid) == []
