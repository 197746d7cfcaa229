"""Job events as partners get them, on the embedded stack: every event matches the published
detail schema (schemas/job-event.v1.json), and the template's example partner rule POSTs each
one to a webhook through an API destination with the partner's API key, retrying what the
webhook refuses and dead-lettering what it never takes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from silhouette.local.lambda_runtime import LOCAL_RETRY_LIMIT
from silhouette.local.stack import EmbeddedStack
from silhouette.names import EVENT_SOURCE
from silhouette.schema import JobStatus
from silhouette.service.notifications import DETAIL_TYPES
from tests.e2e.helpers import (
    TENANT,
    WebhookReceiver,
    dead_letters_in,
    received_events,
    subscribe_to_job_events,
    upload,
    wait_until_finished,
    webhook_receiver,
)

pytestmark = pytest.mark.e2e

PARTNER_API_KEY = "partner-key-for-tests"


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def partner(stack: EmbeddedStack, webhook: WebhookReceiver) -> WebhookReceiver:
    webhook.status = 200
    webhook.requests.clear()
    return webhook


@contextmanager
def partner_delivery(stack: EmbeddedStack, url: str, tenant: str = "") -> Iterator[None]:
    """The stack rebuilt with the partner parameters, as `sam deploy --parameter-overrides`
    would update it, then rebuilt with the parameters it had."""
    parameters = stack.template.parameters
    saved = dict(parameters)
    parameters.update(
        PartnerWebhookUrl=url, PartnerWebhookApiKey=PARTNER_API_KEY, PartnerTenant=tenant
    )
    stack.reset()
    try:
        yield
    finally:
        parameters.clear()
        parameters.update(saved)
        stack.reset()


def assert_is_a_valid_job_event(event: dict[str, Any], validator: Draft202012Validator) -> None:
    validator.validate(event["detail"])
    assert event["source"] == EVENT_SOURCE
    assert event["detail-type"] == DETAIL_TYPES[JobStatus(event["detail"]["status"])]


def corrupt_photo(sample: Any) -> bytes:
    return sample.path("astronaut").read_bytes()[:1500]  # a PNG cut short


def test_partners_get_one_schema_valid_event_per_finished_job(
    stack, partner, sample, job_event_validator
):
    """Through both routes a partner can take: an SQS rule of its own, and the template's
    webhook rule."""
    with partner_delivery(stack, partner.url):
        queue = subscribe_to_job_events(stack)
        completed = upload(sample.path("zidane").read_bytes())
        rejected = upload(corrupt_photo(sample), "image/png", "cut.png")
        for job_id in (completed, rejected):
            wait_until_finished(stack, job_id)

        queued = received_events(stack, queue)
        dead_letters = dead_letters_in(stack, "PartnerWebhookDeadLetterQueueArn")

    expected = sorted([(completed, "Job Completed"), (rejected, "Job Rejected")])
    for route, events in (("sqs", queued), ("webhook", partner.events())):
        for event in events:
            assert_is_a_valid_job_event(event, job_event_validator)
        assert sorted((e["detail"]["job_id"], e["detail-type"]) for e in events) == expected, route
        assert {e["detail"]["tenant"] for e in events} == {TENANT}, route
    api_key_header = stack.template.ref("PartnerWebhookApiKeyHeader")
    assert {headers[api_key_header] for headers, _ in partner.requests} == {PARTNER_API_KEY}
    assert dead_letters == []


@pytest.mark.parametrize(
    ("status", "retried"), [(503, True), (400, False)], ids=["unavailable", "bad-request"]
)
def test_events_the_webhook_refuses_end_in_the_dead_letter_queue(
    stack, partner, sample, job_event_validator, status, retried
):
    partner.status = status
    with partner_delivery(stack, partner.url):
        job_id = upload(corrupt_photo(sample), "image/png", "cut.png")
        wait_until_finished(stack, job_id)

        dead_letters = dead_letters_in(stack, "PartnerWebhookDeadLetterQueueArn")

    # EventBridge retries unavailability (locally a few times, within the rule's RetryPolicy)
    # and gives up on a bad request at once.
    policy = stack.template.properties("PartnerWebhookRule")["Targets"][0]["RetryPolicy"]
    retries = min(policy["MaximumRetryAttempts"], LOCAL_RETRY_LIMIT) if retried else 0
    assert [e["detail"]["job_id"] for e in partner.events()] == [job_id] * (1 + retries)
    [(event, attributes)] = dead_letters
    assert_is_a_valid_job_event(event, job_event_validator)
    assert event["detail"]["job_id"] == job_id
    assert attributes["ERROR_CODE"] == str(status)
    assert attributes["RETRY_ATTEMPTS"] == str(retries)
    assert attributes["RULE_ARN"].endswith(stack.template.physical_name("PartnerWebhookRule"))


def test_partner_rule_delivers_only_its_tenants_events(stack, partner, sample):
    for tenant, delivered in ((TENANT, 1), (f"not-{TENANT}", 0)):
        partner.requests.clear()
        with partner_delivery(stack, partner.url, tenant=tenant):
            job_id = upload(corrupt_photo(sample), "image/png", "cut.png")
            wait_until_finished(stack, job_id)

        assert [e["detail"]["job_id"] for e in partner.events()] == [job_id] * delivered, tenant
