"""In-process Lambda runtime for the embedded stack: the one place where a part of AWS is
replaced rather than emulated.

moto stores Lambda functions but runs their code only inside Docker, which this project does not
assume. This adapter makes moto call the project's real handler (the `app.handler` that the
function's image would run) in-process, with a Lambda-shaped context, and returns its result or
its error exactly as the Lambda Invoke API would (`errorType`/`errorMessage`, so Step Functions'
Retry and Catch match on the exception's class name). It also delivers EventBridge rule targets
that are Lambda functions, which moto does not. Both hooks depend on moto internals and are
pinned to the moto version below."""

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
from time import monotonic
from types import ModuleType
from typing import Any, TextIO

import moto
from moto.awslambda.models import LambdaFunction
from moto.awslambda.utils import get_backend
from moto.events.models import Rule
from moto.utilities.arns import parse_arn

from silhouette.observability import function_output

MOTO_VERSION = "5.2.5"


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
            lambdas = [t for t in rule.targets if parse_arn(t["Arn"]).service == "lambda"]
            others = copy.copy(rule)  # moto raises on Lambda targets: give it only the rest
            others.targets = [t for t in rule.targets if t not in lambdas]
            original_send(others, event, transform_input)
            if not lambdas or not rule.event_pattern.matches_event(event):
                return
            for target in lambdas:
                arn = parse_arn(target["Arn"])
                function = get_backend(arn.account, arn.region).get_function(target["Arn"])
                function.invoke(json.dumps(event), {"x-amz-invocation-type": "Event"}, {})

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
