"""Client-side steps the end-to-end tests share: upload as a client would, wait, read events.

The pipeline tests call the job operations in-process for tenant `TENANT`; the API tests go
through the local API gateway with the stack's keys (see tests/conftest.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from silhouette.local.stack import EmbeddedStack
from silhouette.local.template import ACCOUNT_ID
from silhouette.schema import JobOptions, JobResult
from silhouette.service import jobs
from silhouette.service.starter import execution_arn

TENANT = "pipeline-tests"
FINISHED = ("COMPLETED", "REJECTED", "FAILED")  # the statuses a job ends in, as the API says


def upload(
    data: bytes,
    content_type: str = "image/jpeg",
    filename: str = "photo.jpg",
    options: JobOptions | None = None,
) -> str:
    job, post = jobs.create_upload(TENANT, filename, content_type, options or JobOptions())
    response = requests.post(
        post.url, data=post.fields, files={"file": (filename, data, content_type)}, timeout=30
    )
    assert response.status_code == 204, response.text
    return job.job_id


def wait_until_finished(stack: EmbeddedStack, job_id: str, timeout: float = 60) -> JobResult:
    """The job's record once it is terminal and its execution has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_job(TENANT, job_id)
        if job.status.is_terminal:
            stack.wait_for_executions(deadline - time.monotonic())
            return jobs.get_job(TENANT, job_id)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout}s")


def subscribe_to_job_events(stack: EmbeddedStack) -> str:
    """An SQS queue receiving every event on the job bus (as a partner's rule would)."""
    sqs, events = stack.client("sqs"), stack.client("events")
    queue_url = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    bus = stack.outputs["JobEventBusName"]
    events.put_rule(
        Name="all-job-events",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["silhouette.job"]}),
    )
    events.put_targets(
        Rule="all-job-events", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    return queue_url


def received_events(stack: EmbeddedStack, queue_url: str) -> list[dict[str, Any]]:
    messages = (
        stack.client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        .get("Messages", [])
    )
    return [json.loads(message["Body"]) for message in messages]


def job_execution(stack: EmbeddedStack, job_id: str) -> str:
    """The ARN of the job's execution on the stack."""
    return execution_arn(stack.outputs["PipelineStateMachineArn"], job_id)


def execution_ended_event(execution: str, job_id: str, region: str, status: str) -> dict:
    """What Step Functions sends EventBridge when the job's execution ends with `status`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [execution],
        "detail": {"executionArn": execution, "name": job_id, "status": status},
    }


def execution_history(stack: EmbeddedStack, job_id: str) -> list[dict[str, Any]]:
    sfn = stack.client("stepfunctions")
    arn = job_execution(stack, job_id)
    return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def interruptible() -> None:
    """A `preexec_fn` that lets Ctrl-C (SIGINT) reach the child as from a terminal, even when
    the tests run in the background: a shell's background job ignores SIGINT, its children
    inherit that, and Python then installs no KeyboardInterrupt handler at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def silhouette_command(*args: str) -> list[str]:
    """The `silhouette` command line, run by this interpreter."""
    return [sys.executable, "-m", "silhouette.client.cli", *args]


@contextmanager
def served_stack(log_path: Path, port: int, api_port: int) -> Iterator[dict[str, str]]:
    """`silhouette serve` in a subprocess, stopped at the end; yields what it printed before
    'Ctrl-C to stop': `endpoint`, the outputs and the API keys."""
    server = subprocess.Popen(
        silhouette_command(
            "serve", "--port", str(port), "--api-port", str(api_port), "--log", str(log_path)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _printed_until_serving(server)
    finally:
        server.terminate()
        server.wait(timeout=30)


def analyze_on_served_stack(
    printed: dict[str, str], photo: Path, out: Path
) -> subprocess.CompletedProcess[str]:
    """`silhouette analyze` of one photo through the API of `served_stack`, with its key."""
    return subprocess.run(
        silhouette_command(
            "analyze",
            str(photo),
            "--out",
            str(out),
            "--api-url",
            printed["ApiUrl"],
            "--api-key",
            printed["API key for tenant 'local'"],
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _printed_until_serving(server: subprocess.Popen, timeout: float = 60) -> dict[str, str]:
    printed: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            raise AssertionError(f"silhouette serve exited: {server.communicate()}")
        if line.startswith("Silhouette stack"):
            printed["endpoint"] = line.split(" on ")[-1].strip()
        elif ": " in line and line.startswith("  "):
            name, value = line.strip().rsplit(": ", 1)
            printed[name] = value
        elif line.startswith("Ctrl-C"):
            return printed
    raise AssertionError("silhouette serve did not start")


@dataclass
class WebhookReceiver:
    """An HTTP endpoint on 127.0.0.1 that records every request and answers `status`."""

    server: ThreadingHTTPServer
    status: int = 200
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/silhouette-events"

    def events(self) -> list[dict[str, Any]]:
        return [event for _, event in self.requests]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.requests.append((dict(self.headers), json.loads(body)))
            self.send_response(receiver.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:  # no access log in the test output
            pass

    receiver = WebhookReceiver(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def dead_letters_in(
    stack: EmbeddedStack, queue_output: str
) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The events in the dead-letter queue the stack output names, with their attributes."""
    sqs = stack.client("sqs")
    queue_name = stack.outputs[queue_output].rsplit(":", 1)[-1]
    messages = sqs.receive_message(
        QueueUrl=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    return [
        (
            json.loads(message["Body"]),
            {name: value["StringValue"] for name, value in message["MessageAttributes"].items()},
        )
        for message in messages
    ]
