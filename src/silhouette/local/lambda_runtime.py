"""In-process Lambda runtime for the embedded stack: the one place where a part of AWS is
replaced rather than emulated.

moto stores Lambda functions but runs their code only inside Docker, which this project does not
assume. This adapter makes moto call the project's real handler (the `app.handler` that the
function's image would run) in-process, with a Lambda-shaped context, and returns its result or
its error exactly as the Lambda Invoke API would (`errorType`/`errorMessage`, so Step Functions'
Retry and Catch match on the exception's class name).

It also delivers the EventBridge rule targets that moto does not: Lambda functions, and API
destinations. moto 5.2.5 calls an API destination only when MOTO_EVENTS_INVOKE_HTTP is set, and
then without the event, the connection's API key, retries or dead-letter queue; here the event is
POSTed as EventBridge does, with the key header, retried as the target's RetryPolicy allows (a few
quick retries locally) and sent to its DeadLetterConfig queue when it is not accepted. Only
loopback endpoints are called; a target's InputTransformer and HttpParameters (which the template
does not use) are not applied, nor the destination's rate limit. All hooks depend on moto
internals and are pinned to the moto version below; they live in this one module."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import sys
import threading
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, sleep
from types import ModuleType
from typing import Any, TextIO
from urllib.parse import urlsplit

import moto
import requests
from moto.awslambda.models import LambdaFunction
from moto.awslambda.utils import get_backend
from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
from moto.events.models import Destination, Rule, events_backends
from moto.sqs.models import sqs_backends
from moto.utilities.arns import parse_arn

from silhouette.observability import function_output

MOTO_VERSION = "5.2.5"
# EventBridge retries an API destination for up to a day; locally a few quick tries show the
# same outcome (delivered, or dead-lettered) without holding up the job that sent the event.
LOCAL_RETRY_LIMIT = 3
FIRST_RETRY_DELAY_SECONDS = 0.05  # doubled on every retry
API_DESTINATION_TIMEOUT_SECONDS = 5  # how long EventBridge waits for an endpoint's answer
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class FunctionCode:
    """Where a function's handler lives: `path` is the module file, `attribute` the callable."""

    path: Path
    attribute: str
    timeout_seconds: int
    memory_mb: int


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - monotonic()) * 1000))


class _LockedLog(io.TextIOBase):
    """The function log file: one line at a time from concurrent invocations."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()
        return len(text)


class LambdaRuntime:
    """Registry of the stack's functions and the hooks that let moto run them."""

    def __init__(self, log_path: Path) -> None:
        if moto.__version__ != MOTO_VERSION:
            raise RuntimeError(
                f"the in-process Lambda adapter is written for moto {MOTO_VERSION}, "
                f"found {moto.__version__}: run `make setup`"
            )
        self.log_path = log_path
        self._functions: dict[str, FunctionCode] = {}
        self._modules: dict[Path, ModuleType] = {}
        self._faults: dict[str, list[BaseException]] = defaultdict(list)
        # One invocation at a time per function, as in one Lambda container: handlers keep
        # models in module state that need not be thread-safe.
        self._containers: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._lock = threading.Lock()
        self._restore: list[Callable[[], None]] = []
        self._log: _LockedLog | None = None

    def register(self, function_name: str, code: FunctionCode) -> None:
        self._functions[function_name] = code

    def inject_fault(self, function_name: str, error: BaseException, times: int = 1) -> None:
        """Make the next `times` invocations of a function raise `error` (for fault tests)."""
        with self._lock:
            self._faults[function_name].extend([error] * times)

    def invoke(self, function_name: str, function_arn: str, event: Any) -> tuple[str, bool]:
        """Run the handler; returns (payload JSON, errored) like the Invoke API."""
        code = self._functions[function_name]
        context = LambdaContext(function_name, function_arn, code.memory_mb, code.timeout_seconds)
        try:
            with self._lock:
                fault = self._faults[function_name].pop(0) if self._faults[function_name] else None
            if fault is not None:
                raise fault
            handler = getattr(self._module(code.path), code.attribute)
            with (
                self._containers[function_name],
                function_output.redirected(self._log or sys.stdout),
            ):
                return json.dumps(handler(event, context)), False
        except Exception as error:  # the Lambda runtime reports every handler error this way
            payload = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return json.dumps(payload), True

    def _module(self, path: Path) -> ModuleType:
        with self._lock:
            if path not in self._modules:
                name = f"silhouette_function_{path.parent.name}_{path.stem}"
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._modules[path] = module
            return self._modules[path]

    # moto hooks ---------------------------------------------------------------------------

    def install(self) -> None:
        runtime = self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("a", encoding="utf-8")
        self._log = _LockedLog(log)

        def invoke_lambda(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            if isinstance(event, str):
                event = json.loads(event or "{}")
            payload, errored = runtime.invoke(
                function.function_name, function.function_arn, event or {}
            )
            return payload, errored, ""

        original_send = Rule.send_to_targets

        def send_to_targets(rule: Rule, event: Any, transform_input: bool = True) -> None:
            delivered_here = [t for t in rule.targets if _delivered_here(t["Arn"])]
            others = copy.copy(rule)  # moto cannot deliver these: give it only the rest
            others.targets = [t for t in rule.targets if t not in delivered_here]
            original_send(others, event, transform_input)
            if not delivered_here or not rule.event_pattern.matches_event(event):
                return
            for target in delivered_here:
                arn = parse_arn(target["Arn"])
                if arn.service == "lambda":
                    function = get_backend(arn.account, arn.region).get_function(target["Arn"])
                    function.invoke(json.dumps(event), {"x-amz-invocation-type": "Event"}, {})
                else:
                    deliver_to_api_destination(rule, target, event)

        original_invoke = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = invoke_lambda  # type: ignore[method-assign]
        Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]

        def restore() -> None:
            LambdaFunction._invoke_lambda = original_invoke  # type: ignore[method-assign]
            Rule.send_to_targets = original_send  # type: ignore[method-assign]
            log.close()

        self._restore.append(restore)

    def uninstall(self) -> None:
        while self._restore:
            self._restore.pop()()
        self._log = None


# EventBridge targets that moto does not deliver ------------------------------------------


def _delivered_here(target_arn: str) -> bool:
    arn = parse_arn(target_arn)
    return arn.service == "lambda" or arn.resource_type == "api-destination"


@dataclass(frozen=True)
class DeliveryFailure:
    """Why an endpoint did not take an event: what the dead-letter message's attributes say."""

    code: str
    message: str
    retryable: bool


def deliver_to_api_destination(rule: Rule, target: dict[str, Any], event: Any) -> None:
    backend = events_backends[rule.account_id][rule.region_name]
    destination = backend.destinations[parse_arn(target["Arn"]).resource_id.split("/")[0]]
    connection_name = parse_arn(destination.connection_arn).resource_id.split("/")[0]
    api_key = backend.connections[connection_name].auth_parameters["ApiKeyAuthParameters"]
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Amazon/EventBridge/ApiDestinations",
        api_key["ApiKeyName"]: api_key["ApiKeyValue"],
    }
    body = json.dumps(_as_delivered(event))
    policy = target.get("RetryPolicy", {})
    retries = min(policy.get("MaximumRetryAttempts", 185), LOCAL_RETRY_LIMIT)
    give_up_at = monotonic() + policy.get("MaximumEventAgeInSeconds", 86400)
    failure = _request(destination, headers, body)
    attempts = 1
    while failure and failure.retryable and attempts <= retries and monotonic() < give_up_at:
        sleep(FIRST_RETRY_DELAY_SECONDS * 2 ** (attempts - 1))
        failure = _request(destination, headers, body)
        attempts += 1
    if failure and "DeadLetterConfig" in target:
        _dead_letter(target, rule, body, failure, attempts)


def _as_delivered(event: Any) -> dict[str, Any]:
    """The event as EventBridge sends it: ISO 8601 time, without moto's bookkeeping."""
    delivered = {key: value for key, value in event.items() if key != "ingestion-time"}
    delivered["time"] = iso_8601_datetime_without_milliseconds(
        utcfromtimestamp(float(event["time"]))
    )
    return delivered


def _request(
    destination: Destination, headers: dict[str, str], body: str
) -> DeliveryFailure | None:
    endpoint = destination.invocation_endpoint
    if urlsplit(endpoint).hostname not in LOOPBACK_HOSTS:
        return DeliveryFailure(
            "SDK_CLIENT_ERROR", f"the local stack calls loopback endpoints only: {endpoint}", False
        )
    try:
        response = requests.request(
            destination.http_method,
            endpoint,
            headers=headers,
            data=body,
            timeout=API_DESTINATION_TIMEOUT_SECONDS,
        )
    except requests.RequestException as error:
        return DeliveryFailure("SDK_CLIENT_ERROR", str(error), True)
    if 200 <= response.status_code < 300:
        return None
    # EventBridge retries these answers; any other is final at once.
    retryable = response.status_code in (401, 407, 409, 429) or response.status_code >= 500
    return DeliveryFailure(str(response.status_code), response.text[:256], retryable)


def _dead_letter(
    target: dict[str, Any], rule: Rule, body: str, failure: DeliveryFailure, attempts: int
) -> None:
    queue = parse_arn(target["DeadLetterConfig"]["Arn"])
    attributes = {
        "ERROR_CODE": failure.code,
        "ERROR_MESSAGE": failure.message or failure.code,
        "RETRY_ATTEMPTS": str(attempts - 1),
        "RULE_ARN": rule.arn,
        "TARGET_ARN": target["Arn"],
    }
    sqs_backends[queue.account][queue.region].send_message(
        queue_name=queue.resource_id,
        message_body=body,
        message_attributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
    )
