"""The template's EventBridge delivery resources on the embedded stack: SQS queues and their
policies, connections, API destinations, and rules with their targets (retry policy and
dead-letter queue included), created through the same API calls CloudFormation would make.

moto stores these but does not deliver to API destinations as EventBridge does; lambda_runtime
does that (see there). Queue attributes such as retention and encryption change nothing locally
and are not applied."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.utilities.arns import parse_arn

from silhouette.local.template import Template

ClientFactory = Callable[[str], Any]


def create_event_resources(template: Template, client: ClientFactory) -> None:
    """Create them in dependency order, recording what only the service knows (queue URLs,
    ARNs with random ids) so later references resolve."""
    sqs, events = client("sqs"), client("events")
    for logical_id in template.resources("AWS::SQS::Queue"):
        url = sqs.create_queue(QueueName=template.physical_name(logical_id))["QueueUrl"]
        template.created[logical_id] = {"Ref": url}
    for logical_id in template.resources("AWS::Events::Connection"):
        properties = template.resolve(template.properties(logical_id))
        if properties["AuthorizationType"] != "API_KEY":
            raise ValueError(f"{logical_id}: the local stack emulates API_KEY connections only")
        connection = events.create_connection(
            Name=template.physical_name(logical_id),
            AuthorizationType="API_KEY",
            AuthParameters=properties["AuthParameters"],
        )
        template.created[logical_id] = {"Arn": connection["ConnectionArn"]}
    for logical_id in template.resources("AWS::Events::ApiDestination"):
        properties = template.resolve(template.properties(logical_id))
        destination = events.create_api_destination(
            Name=template.physical_name(logical_id),
            ConnectionArn=properties["ConnectionArn"],
            InvocationEndpoint=properties["InvocationEndpoint"],
            HttpMethod=properties["HttpMethod"],
            InvocationRateLimitPerSecond=int(properties.get("InvocationRateLimitPerSecond", 300)),
        )
        template.created[logical_id] = {"Arn": destination["ApiDestinationArn"]}
    for logical_id in template.resources("AWS::Events::Rule"):
        _create_rule(template, events, logical_id)
    # Last: queue policies name the rules allowed to send.
    for logical_id in template.resources("AWS::SQS::QueuePolicy"):
        properties = template.resolve(template.properties(logical_id))
        for url in properties["Queues"]:
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
            )


def _create_rule(template: Template, events: Any, logical_id: str) -> None:
    properties = template.resolve(template.properties(logical_id))
    name = template.physical_name(logical_id)
    bus = properties.get("EventBusName", "default")
    rule = events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=json.dumps(properties["EventPattern"]),
        State=properties.get("State", "ENABLED"),
    )
    template.created[logical_id] = {"Arn": rule["RuleArn"]}
    # CloudFormation's target properties are the PutTargets API's.
    events.put_targets(Rule=name, EventBusName=bus, Targets=properties["Targets"])


class Schedules:
    """EventBridge schedules (`rate(...)` expressions) on the embedded stack: moto stores
    schedule rules but never fires them, so a timer thread per schedule sends each target
    function the event EventBridge would, asynchronously."""

    _RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
    _UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}

    def __init__(self, deliver: Callable[[str, dict[str, Any]], None]) -> None:
        self._deliver = deliver  # (function name, event)
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def add(self, function_name: str, rule_arn: str, expression: str) -> None:
        match = self._RATE.match(expression)
        if match is None:
            raise ValueError(f"the local stack runs rate(...) schedules only, not {expression!r}")
        interval = int(match.group(1)) * self._UNIT_SECONDS[match.group(2).rstrip("s")]
        thread = threading.Thread(
            target=self._run, args=(function_name, rule_arn, interval), daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _run(self, function_name: str, rule_arn: str, interval: float) -> None:
        while not self._stopped.wait(interval):
            self._deliver(function_name, scheduled_event(rule_arn, datetime.now(UTC)))

    def stop(self) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self._stopped.clear()


def scheduled_event(rule_arn: str, time: datetime) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's target."""
    arn = parse_arn(rule_arn)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": arn.account,
        "time": time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": arn.region,
        "resources": [rule_arn],
        "detail": {},
    }
