"""`silhouette events --follow` against `silhouette serve`, as a person runs it: it prints the
event of a real job as the job finishes, and removes its rule and queue when stopped."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from typing import IO

import boto3
import pytest

from silhouette.local.stack import free_port
from silhouette.names import DEFAULT_REGION
from tests.e2e.helpers import (
    analyze_on_served_stack,
    interruptible,
    served_stack,
    silhouette_command,
)

pytestmark = pytest.mark.e2e


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines as they come, then None at its end; read in a thread so that waiting
    for a line can time out."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next_line(lines: queue.Queue[str | None], timeout: float, wanted: str = "") -> str:
    """The next line containing `wanted`; fails with what came instead."""
    skipped: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError(f"no line with {wanted!r} within {timeout}s: {skipped}")
        if wanted in line:
            return line
        skipped.append(line)


def test_events_follow_prints_a_finished_job_and_cleans_up_on_ctrl_c(sample, tmp_path):
    photo = tmp_path / "cut.png"
    photo.write_bytes(sample.path("astronaut").read_bytes()[:1500])  # a PNG cut short
    with served_stack(tmp_path / "serve.log", free_port(), free_port()) as printed:
        follower = subprocess.Popen(
            silhouette_command(
                "events", "--follow", "--json", "--endpoint-url", printed["endpoint"]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=interruptible,
        )
        try:
            _next_line(_lines(follower.stderr), 60, "reading silhouette.job events")
            events = _lines(follower.stdout)
            analyzed = analyze_on_served_stack(printed, photo, tmp_path / "out")
            assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
            event = json.loads(_next_line(events, 30))
            follower.send_signal(signal.SIGINT)
            # It removes its queue and rule first, through an emulator that may be busy.
            assert follower.wait(timeout=90) == 0
        finally:
            follower.kill()

        result = json.loads((tmp_path / "out" / "cut" / "result.json").read_text())
        detail = event["detail"]
        assert event["detail-type"] == "Job Rejected"
        assert (detail["job_id"], detail["reason"]) == (result["job_id"], result["reason"])
        aws = {
            "endpoint_url": printed["endpoint"],
            "region_name": DEFAULT_REGION,
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
        rules = boto3.client("events", **aws).list_rules(EventBusName=printed["JobEventBusName"])
        assert rules["Rules"] == []
        queues = boto3.client("sqs", **aws).list_queues(QueueNamePrefix="silhouette-events-")
        assert queues.get("QueueUrls", []) == []
