"""A batch's own webhook: its `Batch Completed` event POSTed to the URL the client gave, through
the same EventBridge path as the partner webhook (template.yaml, PartnerWebhook*): an API
destination behind a connection that sends the batch's token in a header, a rule on the job
bus matching this batch's event only, retries for up to a day, then the dead-letter queue.

The resources are the batch's own, named after it. Expand creates them, so a batch whose
source never arrives leaves none behind; the batch state machine removes them once the event
has had its day to be delivered (RemoveWebhook)."""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import Any

from silhouette.names import EVENT_SOURCE
from silhouette.settings import get_settings

# The receiver checks this header against the token the batch's creation returned.
TOKEN_HEADER = "X-Silhouette-Webhook-Token"
NAME_PREFIX = "silhouette-batch-"  # the IAM policies in template.yaml grant this prefix only
TARGET_ID = "batch-webhook"
# As the partner webhook's: a receiver down for up to a day loses nothing.
RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}


def new_token() -> str:
    return secrets.token_urlsafe(32)


def resource_name(batch_id: str) -> str:
    """The connection's, the API destination's and the rule's name (at most 64 characters)."""
    return f"{NAME_PREFIX}{batch_id}"


def subscribe(batch_id: str, url: str, token: str, event_type: str, events: Any) -> None:
    """Deliver the batch's `event_type` event to `url`. Run again, it finds what an earlier
    attempt created and completes it."""
    settings, name = get_settings(), resource_name(batch_id)
    connection_arn = _connection(events, name, token)
    destination_arn = _destination(events, name, connection_arn, url)
    pattern = {
        "source": [EVENT_SOURCE],
        "detail-type": [event_type],
        "detail": {"batch_id": [batch_id]},
    }
    events.put_rule(
        Name=name,
        EventBusName=settings.event_bus,
        EventPattern=json.dumps(pattern),
        State="ENABLED",
        Description=f"batch {batch_id}: its event to its webhook",
    )
    target = {
        "Id": TARGET_ID,
        "Arn": destination_arn,
        "RoleArn": settings.batch_webhook_role_arn,
        "RetryPolicy": RETRY_POLICY,
        "DeadLetterConfig": {"Arn": settings.batch_webhook_dead_letter_queue_arn},
    }
    events.put_targets(Rule=name, EventBusName=settings.event_bus, Targets=[target])


def unsubscribe(batch_id: str, events: Any) -> None:
    """Remove what `subscribe` created (what there is of it)."""
    bus, name = get_settings().event_bus, resource_name(batch_id)
    gone = events.exceptions.ResourceNotFoundException
    steps = (
        lambda: events.remove_targets(Rule=name, EventBusName=bus, Ids=[TARGET_ID]),
        lambda: events.delete_rule(Name=name, EventBusName=bus),
        lambda: events.delete_api_destination(Name=name),
        lambda: events.delete_connection(Name=name),
    )
    for step in steps:
        with contextlib.suppress(gone):
            step()


def _connection(events: Any, name: str, token: str) -> str:
    try:
        return str(
            events.create_connection(
                Name=name,
                AuthorizationType="API_KEY",
                AuthParameters={
                    "ApiKeyAuthParameters": {"ApiKeyName": TOKEN_HEADER, "ApiKeyValue": token}
                },
            )["ConnectionArn"]
        )
    except events.exceptions.ResourceAlreadyExistsException:
        return str(events.describe_connection(Name=name)["ConnectionArn"])


def _destination(events: Any, name: str, connection_arn: str, url: str) -> str:
    try:
        return str(
            events.create_api_destination(
                Name=name,
                ConnectionArn=connection_arn,
                InvocationEndpoint=url,
                HttpMethod="POST",
                InvocationRateLimitPerSecond=1,  # one event per batch
            )["ApiDestinationArn"]
        )
    except events.exceptions.ResourceAlreadyExistsException:
        return str(events.describe_api_destination(Name=name)["ApiDestinationArn"])
