"""`silhouette events`: print a stack's job events as they happen, received the way a partner
receives them: through a rule of its own on the job bus and a temporary SQS queue, both removed
on exit (Ctrl-C and SIGTERM included)."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlparse

import boto3
import click

from silhouette.client.targets import stack_outputs
from silhouette.names import DEFAULT_REGION, DEFAULT_STACK_NAME, EVENT_SOURCE

FOLLOW_POLL_SECONDS = 10  # SQS long poll while following
DRAIN_POLL_SECONDS = 1  # without --follow: stop at the first poll that waits this long in vain


@click.command()
@click.option(
    "--endpoint-url",
    help="AWS endpoint (silhouette serve, LocalStack); default: AWS from the environment",
)
@click.option("--stack-name", default=DEFAULT_STACK_NAME, show_default=True)
@click.option(
    "--follow/--no-follow",
    default=False,
    help="print events until Ctrl-C; else until none arrives for a second",
)
@click.option("--tenant", help="only this tenant's jobs")
@click.option("--job", "job_id", help="only this job")
@click.option("--json", "as_json", is_flag=True, help="print each event as one JSON line")
def events(
    endpoint_url: str | None,
    stack_name: str,
    follow: bool,
    tenant: str | None,
    job_id: str | None,
    as_json: bool,
) -> None:
    """Print job events (Job Completed / Rejected / Failed) from the stack's event bus."""
    # `kill` cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    region = _use_endpoint(endpoint_url)
    bus = stack_outputs(endpoint_url, stack_name, region)["JobEventBusName"]
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)
    eventbridge = boto3.client("events", endpoint_url=endpoint_url, region_name=region)
    try:
        with subscription(sqs, eventbridge, bus, event_pattern(tenant, job_id)) as queue_url:
            until = "Ctrl-C to stop" if follow else "until none arrives for a second"
            click.echo(f"reading {EVENT_SOURCE} events on {bus} ({until})", err=True)
            for event in _received(sqs, queue_url, follow):
                click.echo(json.dumps(event) if as_json else describe(event))
    except KeyboardInterrupt:
        pass


def _use_endpoint(endpoint_url: str | None) -> str:
    """The region to use. A local server (loopback endpoint) accepts any credentials, so
    placeholders stand in when none are set; real ones are never invented."""
    if endpoint_url and urlparse(endpoint_url).hostname in ("127.0.0.1", "localhost", "::1"):
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    return boto3.Session().region_name or DEFAULT_REGION


def event_pattern(tenant: str | None, job_id: str | None) -> dict[str, Any]:
    detail = {field: [value] for field, value in (("tenant", tenant), ("job_id", job_id)) if value}
    return {"source": [EVENT_SOURCE], **({"detail": detail} if detail else {})}


@contextmanager
def subscription(sqs: Any, eventbridge: Any, bus: str, pattern: dict[str, Any]) -> Iterator[str]:
    """A temporary queue receiving the bus's matching events through a rule of its own; both
    are deleted when the block ends, however it ends."""
    name = f"silhouette-events-{uuid.uuid4().hex[:12]}"
    with ExitStack() as cleanup:
        queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        cleanup.callback(sqs.delete_queue, QueueUrl=queue_url)
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        rule_arn = eventbridge.put_rule(
            Name=name, EventBusName=bus, EventPattern=json.dumps(pattern)
        )["RuleArn"]
        cleanup.callback(eventbridge.delete_rule, Name=name, EventBusName=bus)
        # Only this rule may send to the queue.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        eventbridge.put_targets(
            Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        cleanup.callback(eventbridge.remove_targets, Rule=name, EventBusName=bus, Ids=["queue"])
        yield queue_url


def _received(sqs: Any, queue_url: str, follow: bool) -> Iterator[dict[str, Any]]:
    wait = FOLLOW_POLL_SECONDS if follow else DRAIN_POLL_SECONDS
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", [])
        if not messages and not follow:
            return
        for message in messages:
            yield json.loads(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def describe(event: dict[str, Any]) -> str:
    """One line: time, detail-type, job id, status, and why it was rejected or failed."""
    detail = event["detail"]
    why = detail.get("reason") or detail.get("error")
    fields = (event["time"], event["detail-type"], detail["job_id"], detail["status"], why)
    return "  ".join(field for field in fields if field)
