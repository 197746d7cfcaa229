"""The embedded stack's Lambda service: the one place where a part of AWS is replaced rather
than emulated.

moto stores Lambda functions but runs their code only inside Docker, which this project does not
assume. This adapter makes moto run the project's real handler (the `app.handler` that the
function's image would run) in Lambda-like execution environments (lambda_instances: one process
per instance, the function's concurrency, timeout and init) and answers exactly as the Invoke API
would: the result, or the error as `errorType`/`errorMessage` (Step Functions' Retry and Catch
match on the exception's class name), or TooManyRequestsException when every instance stays busy
for a few seconds (CAPACITY_WAIT_SECONDS).
Asynchronous invocations (InvocationType Event, S3 notifications, EventBridge targets) are
queued and run as instances free up, retried twice on error as Lambda does, without holding up
the request that caused them.

moto's Step Functions reports every failed Invoke call as error "Exception"; AWS reports
`Lambda.<error code>` (e.g. `Lambda.TooManyRequestsException`), which is what the state
machine's Retry names, so that mapping is restored here.

It also delivers the EventBridge rule targets that moto does not: Lambda functions, and API
destinations. moto 5.2.5 calls an API destination only when MOTO_EVENTS_INVOKE_HTTP is set, and
then without the event, the connection's API key, retries or dead-letter queue; here the event is
POSTed as EventBridge does, with the key header, retried as the target's RetryPolicy allows (a few
quick retries locally) and sent to its DeadLetterConfig queue when it is not accepted. Only
loopback endpoints are called; a target's InputTransformer and HttpParameters (which the template
does not use) are not applied, nor the destination's rate limit.

moto 5.2.5's Step Functions tasks on Step Functions itself (`states:startExecution.sync:2`, how
a batch runs the pipeline on each item) pass the ASL's parameter names (`StateMachineArn`) to the
SDK, which wants the API's (`stateMachineArn`), and read the answer the other way round; the
names are translated here, as AWS does. And moto checks that an execution's name is free
apart from recording the new execution, so two starts with one name at the same moment (an
upload announced twice at once) could both run; Step Functions does the two as one step, and
so do they here, under a lock. All hooks depend on moto
internals and are pinned to the moto version below; they live in this one module."""

from __future__ import annotations

import copy
import functools
import json
import logging
import queue
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, sleep
from typing import Any
from urllib.parse import urlsplit

import moto
import requests
from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaFunction
from moto.awslambda.utils import get_backend
from moto.core.exceptions import JsonRESTError
from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
from moto.events.models import Destination, Rule, events_backends
from moto.s3 import notifications as s3_notifications
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (  # noqa: E501
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import (
    StateTaskLambda,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.utilities.arns import parse_arn

from silhouette.local.lambda_instances import (
    FunctionPool,
    FunctionSpec,
    Instance,
    LogSink,
    Outcome,
    Spawner,
    read_only_sandbox,
)
from silhouette.local.lambda_worker import error_payload

MOTO_VERSION = "5.2.5"
# Lambda retries a failed asynchronous invocation twice, after about 1 and 2 minutes; locally
# the same two retries come sooner.
ASYNC_RETRY_DELAYS_SECONDS = (1.0, 2.0)
# AWS adds instances under load; here a synchronous invocation that finds every local instance
# busy waits this long for one to come free before it is refused (the Task then retries it, as
# the state machine's Retry says). Less than the 5 s by which each Task's TimeoutSeconds exceeds
# its function's Timeout, so the function's own timeout still fires first. Without the wait,
# a freed instance sat idle until a refused job's jittered retry (up to 8 s) came round.
CAPACITY_WAIT_SECONDS = 4.0
# EventBridge retries an API destination for up to a day; locally a few quick tries show the
# same outcome (delivered, or dead-lettered) without holding up the job that sent the event.
LOCAL_RETRY_LIMIT = 3
FIRST_RETRY_DELAY_SECONDS = 0.05  # doubled on every retry
API_DESTINATION_TIMEOUT_SECONDS = 5  # how long EventBridge waits for an endpoint's answer
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Their warnings and errors go to the log file; werkzeug's per-request access log nowhere.
SERVICE_LOGGERS = ("moto", "werkzeug")


class _ServiceLogHandler(logging.Handler):
    def __init__(self, sink: LogSink) -> None:
        super().__init__(logging.WARNING)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self._sink.write(
            {"service": record.name, "level": record.levelname, "message": self.format(record)}
        )


class TooManyRequests(JsonRESTError):
    """The Invoke API's answer when a function has no free instance."""

    code = 429

    def __init__(self, function_name: str) -> None:
        super().__init__(
            "TooManyRequestsException",
            f"Rate Exceeded: every instance of {function_name} is busy "
            "(ReservedFunctionConcurrentInvocationLimitExceeded)",
        )


@dataclass(frozen=True)
class FunctionCode:
    """Where a function's handler lives: `path` is the module file, `attribute` the callable."""

    path: Path
    attribute: str
    timeout_seconds: int
    memory_mb: int


class LambdaRuntime:
    """The stack's functions, their instances, and the hooks that let moto run them."""

    def __init__(
        self,
        log_path: Path,
        read_only: bool = False,
        capacity_wait_seconds: float = CAPACITY_WAIT_SECONDS,
    ) -> None:
        """`read_only`: run every instance read-only, writing only in a private TMPDIR.
        `capacity_wait_seconds`: how long a synchronous invocation waits for a busy function."""
        if moto.__version__ != MOTO_VERSION:
            raise RuntimeError(
                f"the in-process Lambda adapter is written for moto {MOTO_VERSION}, "
                f"found {moto.__version__}: run `make setup`"
            )
        self.log_path = log_path
        self._read_only = read_only
        self._capacity_wait_seconds = capacity_wait_seconds
        self._sandbox: tuple[dict[str, str], tuple[str, ...]] = ({}, ())
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._pools: dict[str, FunctionPool] = {}
        self._queues: dict[str, queue.Queue[Any]] = {}
        self._dispatchers: dict[str, int] = {}
        self._faults: dict[str, list[BaseException]] = defaultdict(list)
        self._delays: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        self._queued = 0  # asynchronous invocations not yet run to their end
        self._queue_changed = threading.Condition()
        self._restore: list[Callable[[], None]] = []
        self._log: LogSink | None = None
        self._spawner: Spawner | None = None
        self._environment: dict[str, str] = {}

    def register(
        self,
        function_name: str,
        function_arn: str,
        code: FunctionCode,
        environment: dict[str, str],
        concurrency: int,
    ) -> None:
        """Make a function invocable with at most `concurrency` instances at once."""
        spec = FunctionSpec(
            name=function_name,
            arn=function_arn,
            module_path=code.path,
            attribute=code.attribute,
            timeout_seconds=code.timeout_seconds,
            memory_mb=code.memory_mb,
            environment=environment,
        )
        existing = self._pools.get(function_name)
        if existing is not None and (existing.spec, existing.limit) == (spec, concurrency):
            return  # recreated resources (a reset): keep the warm instances
        if existing is not None:
            existing.close()
        self._pools[function_name] = FunctionPool(spec, concurrency, self._new_instance)
        if function_name not in self._queues:  # its dispatchers: one per possible instance
            self._queues[function_name] = queue.Queue()
            self._dispatchers[function_name] = concurrency
            for _ in range(concurrency):
                threading.Thread(
                    target=self._run_queued, args=(function_name,), daemon=True
                ).start()

    def provision(self, function_names: Collection[str] | None = None) -> None:
        """Start one instance of every function (or of those named) now, all at once (see
        FunctionPool.provision)."""
        for name, pool in self._pools.items():
            if function_names is None or name in function_names:
                threading.Thread(target=pool.provision, daemon=True).start()

    def _new_instance(self, spec: FunctionSpec) -> Instance:
        assert self._spawner is not None and self._log is not None, "runtime not installed"
        log, sandbox, environment = self._log, self._sandbox, self._environment
        return self._spawner.spawn(lambda: Instance(spec, log, sandbox, environment))

    def inject_fault(self, function_name: str, error: BaseException, times: int = 1) -> None:
        """Make the next `times` invocations of a function raise `error` (for fault tests)."""
        with self._lock:
            self._faults[function_name].extend([error] * times)

    def inject_delay(self, function_name: str, seconds: float, times: int = 1) -> None:
        """Make the next `times` synchronous invocations of a function wait `seconds` before
        they run, as a slow stage would (for timeout tests)."""
        with self._lock:
            self._delays[function_name].extend([seconds] * times)

    def _fault(self, function_name: str) -> Outcome | None:
        with self._lock:
            faults, delays = self._faults[function_name], self._delays[function_name]
            fault = faults.pop(0) if faults else None
            delay = delays.pop(0) if delays else 0.0
        sleep(delay)
        return None if fault is None else Outcome(json.dumps(error_payload(fault)), errored=True)

    def invoke(self, function_name: str, event: Any) -> Outcome:
        """A synchronous invocation (RequestResponse); TooManyRequests when all instances
        stay busy for the capacity wait."""
        pool = self._pools[function_name]
        outcome = self._fault(function_name) or pool.run(event, self._capacity_wait_seconds)
        if outcome is None:
            raise TooManyRequests(function_name)
        return outcome

    def invoke_async(self, function_name: str, event: Any) -> None:
        """An asynchronous invocation (Event): queued, run when an instance is free."""
        with self._queue_changed:
            self._queued += 1
        self._queues[function_name].put(event)

    def _run_queued(self, function_name: str) -> None:
        events = self._queues[function_name]
        while (event := events.get()) is not None:
            for delay in (0.0, *ASYNC_RETRY_DELAYS_SECONDS):
                sleep(delay)
                pool = self._pools.get(function_name)
                outcome = self._fault(function_name) or (pool and pool.run(event, None))
                if outcome is None or not outcome.errored:
                    break
            with self._queue_changed:
                self._queued -= 1
                self._queue_changed.notify_all()

    def wait_for_queued(self, timeout_seconds: float) -> bool:
        """Wait until every asynchronous invocation has run; False if some still wait."""
        with self._queue_changed:
            return self._queue_changed.wait_for(lambda: self._queued == 0, timeout_seconds)

    def wait_until_idle(self, timeout_seconds: float) -> bool:
        """Wait until no invocation runs, including those whose execution has already ended
        (a stopped execution does not stop its running task); False on timeout."""
        deadline = monotonic() + timeout_seconds
        return all(
            pool.wait_until_idle(max(0.0, deadline - monotonic()))
            for pool in list(self._pools.values())
        )

    # moto hooks ---------------------------------------------------------------------------

    def install(self, environment: dict[str, str]) -> None:
        """Start serving invocations. Instances get `environment` under their function's own
        variables; the services' own logs (moto's) go to the log file, not the console."""
        runtime = self
        self._environment = environment
        if self._read_only:  # each instance mounts its own private tmpfs here
            self._scratch = tempfile.TemporaryDirectory(prefix="silhouette-lambda-tmp-")
            self._sandbox = read_only_sandbox(Path(self._scratch.name))
        self._log = LogSink(self.log_path)
        self._spawner = Spawner()
        service_logs = _ServiceLogHandler(self._log)
        for name in SERVICE_LOGGERS:
            logging.getLogger(name).addHandler(service_logs)
            logging.getLogger(name).propagate = False
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

        def invoke(
            function: LambdaFunction, body: str, request_headers: Any, response_headers: Any
        ) -> str | bytes:
            event = json.loads(body or "{}") if isinstance(body, str | bytes) else body
            if request_headers.get("x-amz-invocation-type", "RequestResponse") == "Event":
                runtime.invoke_async(function.function_name, event)
                return ""
            outcome = runtime.invoke(function.function_name, event)
            if outcome.errored:
                response_headers["x-amz-function-error"] = "Unhandled"
            return outcome.payload.encode()

        def invoke_from_s3(account_id: str, event_body: Any, arn: str, region: str) -> None:
            # S3 invokes Lambda asynchronously (moto: synchronously, inside the upload request).
            function = get_backend(account_id, region).get_function(arn)
            runtime.invoke_async(function.function_name, event_body)

        # moto's Step Functions makes a new SDK client for every Lambda call (tens of ms of CPU);
        # under load, with hundreds of throttled tasks retrying, that alone would take a core.
        original_client_for = lambda_eval_utils.boto_client_for
        shared_clients = functools.cache(
            lambda region, service: original_client_for(region=region, service=service)
        )

        def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            return shared_clients(region, service)  # moto ignores the credentials too

        original_from_error = StateTaskLambda._from_error

        def from_error(state: StateTaskLambda, env: Any, ex: Exception) -> FailureEvent:
            if not isinstance(ex, ClientError):
                return original_from_error(state, env, ex)
            # As AWS names the Invoke call's own failures (throttling, service errors).
            error = f"Lambda.{ex.response['Error']['Code']}"
            details = LambdaFunctionFailedEventDetails(
                error=error, cause=ex.response["Error"].get("Message", "")
            )
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.LambdaFunctionFailed,
                event_details=EventDetails(lambdaFunctionFailedEventDetails=details),
            )

        original_send = Rule.send_to_targets

        def send_to_targets(rule: Rule, event: Any, transform_input: bool = True) -> None:
            delivered_here = [t for t in rule.targets if _delivered_here(t["Arn"])]
            others = copy.copy(rule)  # moto cannot deliver these: give it only the rest
            others.targets = [t for t in rule.targets if t not in delivered_here]
            original_send(others, event, transform_input)
            if (
                not delivered_here
                or rule.scheduled_expression  # the schedule's own thread fires these
                or not rule.event_pattern.matches_event(event)
            ):
                return
            for target in delivered_here:
                arn = parse_arn(target["Arn"])
                if arn.service == "lambda":
                    function = get_backend(arn.account, arn.region).get_function(target["Arn"])
                    runtime.invoke_async(function.function_name, event)
                else:
                    deliver_to_api_destination(rule, target, event)

        original_sfn_parameters = StateTaskServiceSfn._normalise_parameters
        original_sfn_response = StateTaskServiceSfn._normalise_response

        def sfn_parameters(
            state: StateTaskServiceSfn, parameters: dict[str, Any], *args: Any
        ) -> None:
            original_sfn_parameters(state, parameters, *args)
            for name in list(parameters):  # StateMachineArn -> stateMachineArn
                parameters[name[:1].lower() + name[1:]] = parameters.pop(name)

        def sfn_response(state: StateTaskServiceSfn, response: Any, *args: Any) -> None:
            original_sfn_response(state, response, *args)
            if isinstance(response, dict):  # executionArn -> ExecutionArn
                for name in list(response):
                    response[name[:1].upper() + name[1:]] = response.pop(name)

        original_start_execution = StepFunctionsParserBackend.start_execution
        start_lock = threading.Lock()

        def start_execution(backend: StepFunctionsParserBackend, *args: Any, **kwargs: Any) -> Any:
            with start_lock:  # the name's check and the execution's record as one step
                return original_start_execution(backend, *args, **kwargs)

        original_invoke = LambdaFunction.invoke
        original_s3_invoke = s3_notifications._invoke_awslambda
        lambda_eval_utils.boto_client_for = client_for
        LambdaFunction.invoke = invoke  # type: ignore[method-assign,assignment]
        s3_notifications._invoke_awslambda = invoke_from_s3
        StateTaskLambda._from_error = from_error  # type: ignore[method-assign]
        Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
        StateTaskServiceSfn._normalise_parameters = sfn_parameters  # type: ignore[method-assign]
        StateTaskServiceSfn._normalise_response = sfn_response  # type: ignore[method-assign]
        StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]

        def restore() -> None:
            for name in SERVICE_LOGGERS:
                logging.getLogger(name).removeHandler(service_logs)
                logging.getLogger(name).propagate = True
            lambda_eval_utils.boto_client_for = original_client_for
            LambdaFunction.invoke = original_invoke  # type: ignore[method-assign]
            s3_notifications._invoke_awslambda = original_s3_invoke
            StateTaskLambda._from_error = original_from_error  # type: ignore[method-assign]
            Rule.send_to_targets = original_send  # type: ignore[method-assign]
            StateTaskServiceSfn._normalise_parameters = original_sfn_parameters  # type: ignore[method-assign]
            StateTaskServiceSfn._normalise_response = original_sfn_response  # type: ignore[method-assign]
            StepFunctionsParserBackend.start_execution = original_start_execution  # type: ignore[method-assign]

        self._restore.append(restore)

    def uninstall(self) -> None:
        """Stop every instance and queue, then give moto its own behaviour back."""
        for function_name, events in self._queues.items():
            for _ in range(self._dispatchers[function_name]):
                events.put(None)
        for pool in self._pools.values():
            pool.close()
        self._queues.clear()
        self._dispatchers.clear()
        self._pools.clear()
        if self._spawner is not None:
            self._spawner.close()
            self._spawner = None
        while self._restore:
            self._restore.pop()()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


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
