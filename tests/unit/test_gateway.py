"""The local API gateway behaves as API Gateway where clients depend on it: the usage plan's
token bucket, 504 after its integration timeout, and a retryable 503 (not a bare 500) when the
API function cannot be invoked; it never retries a request itself."""

from __future__ import annotations

import io
import json

from botocore.exceptions import ClientError, ReadTimeoutError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from silhouette.local.gateway import LocalApiGateway, TokenBucket
from silhouette.local.template import Template
from silhouette.names import PROJECT_ROOT


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)

    assert [bucket.take() for _ in range(21)] == [True] * 20 + [False]
    clock.now += 0.5  # half a second refills five
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 60  # never more than the burst
    assert sum(bucket.take() for _ in range(30)) == 20


class FakeLambda:
    """Answers each invoke with the next scripted outcome; counts the calls."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes, self.calls = list(outcomes), 0

    def invoke(self, **_: object) -> dict:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return {"Payload": io.BytesIO(json.dumps(outcome).encode())}


def gateway_answering(*outcomes: object) -> tuple[LocalApiGateway, FakeLambda]:
    function = FakeLambda(*outcomes)
    clients = {"lambda": function, "apigateway": None}
    template = Template(PROJECT_ROOT / "template.yaml", "gateway-test", "us-east-1")
    gateway = LocalApiGateway(template, lambda service, config=None: clients[service], 0)
    gateway._lambda = function  # what start() sets, without serving HTTP
    return gateway, function


def get_health(gateway: LocalApiGateway):
    return gateway.handle(Request(EnvironBuilder(path="/health").get_environ()))


def test_a_function_that_does_not_answer_in_29_seconds_gives_504_and_no_retry():
    gateway, function = gateway_answering(ReadTimeoutError(endpoint_url="http://lambda"))

    response = get_health(gateway)

    assert response.status_code == 504
    assert response.json["error"] == "timeout"
    assert function.calls == 1


def test_a_throttled_function_gives_a_retryable_503():
    throttled = ClientError(
        {"Error": {"Code": "TooManyRequestsException", "Message": "Rate Exceeded"}}, "Invoke"
    )
    gateway, function = gateway_answering(throttled)

    response = get_health(gateway)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json["error"] == "unavailable"
    assert function.calls == 1


def test_the_function_answer_is_passed_through():
    gateway, _ = gateway_answering({"statusCode": 200, "body": '{"status": "ok"}'})

    response = get_health(gateway)

    assert (response.status_code, response.get_data(as_text=True)) == (200, '{"status": "ok"}')


def test_routes_without_an_api_key_are_throttled_for_all_callers_together():
    limit = int(
        Template(PROJECT_ROOT / "template.yaml", "t", "us-east-1").ref("KeylessThrottleRateLimit")
    )
    gateway, function = gateway_answering(*[{"statusCode": 200, "body": "{}"}] * (limit + 1))
    clock = FakeClock()
    gateway.clock = clock

    statuses = [get_health(gateway).status_code for _ in range(limit + 1)]

    assert statuses == [200] * limit + [429]
    assert function.calls == limit  # the refused request never reached the function
    clock.now += 1  # a second later the route's allowance is back
    assert get_health(gateway).status_code == 200


class FakeApiKeys:
    """API Gateway's key calls for one enabled key in one usage plan; counts the lookups."""

    def __init__(self) -> None:
        self.lookups = 0

    def get_api_keys(self, includeValues: bool) -> dict:
        self.lookups += 1
        return {"items": [{"id": "key-1", "value": "secret-key", "enabled": True}]}

    def get_usage_plans(self) -> dict:
        return {"items": [{"id": "plan-1"}]}

    def get_usage_plan_keys(self, usagePlanId: str) -> dict:
        return {"items": [{"id": "key-1"}]}


def test_a_key_is_looked_up_once_and_again_after_a_few_seconds():
    """Each lookup goes through the emulator (~38 ms of CPU): a client polling its jobs every
    second must not pay it on every request, and a disabled key must still stop working."""
    gateway, _ = gateway_answering(*[{"statusCode": 200, "body": "{}"}] * 4)
    keys = FakeApiKeys()
    gateway._apigateway = keys
    gateway.clock = clock = FakeClock()

    def list_jobs() -> int:
        environ = EnvironBuilder(path="/jobs", headers={"x-api-key": "secret-key"}).get_environ()
        return gateway.handle(Request(environ)).status_code

    assert [list_jobs() for _ in range(3)] == [200] * 3
    assert keys.lookups == 1
    clock.now += 10
    assert list_jobs() == 200
    assert keys.lookups == 2
