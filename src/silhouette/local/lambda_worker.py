"""One Lambda instance of the embedded stack: a process that imports a function's handler once
(the init phase) and then runs one invocation at a time, as a Lambda execution environment does.

The parent (lambda_instances) sends invocations as JSON lines on stdin and reads each outcome as
one JSON line on the result pipe (`SILHOUETTE_RESULT_FD`). Everything the function prints, native
libraries included, goes to stdout/stderr, which the parent ships to the log file: the result
pipe carries nothing else, so no library chatter can corrupt an answer."""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import signal
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any, TextIO

from silhouette.local.aws_calls import CALL_LOG_VARIABLE, record_calls

RESULT_FD_VARIABLE = "SILHOUETTE_RESULT_FD"
PARENT_PID_VARIABLE = "SILHOUETTE_PARENT_PID"
_PR_SET_PDEATHSIG = 1


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline = monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - monotonic()) * 1000))


def error_payload(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """What the Lambda runtime reports for a handler error (Step Functions matches errorType)."""
    return {
        "errorType": error_type or type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _die_with_parent() -> None:
    """Never outlive the stack: the kernel kills this process when its parent thread ends, and
    a parent that already ended before this line ran is caught by the pid check."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(os.environ.get(PARENT_PID_VARIABLE, os.getppid())):
        sys.exit(1)


def _load_handler(module_path: Path, attribute: str) -> Any:
    """Import the handler as the Lambda image does: its folder is the task root on sys.path."""
    sys.path.insert(0, str(module_path.parent))
    return getattr(importlib.import_module(module_path.stem), attribute)


def _max_memory_mb() -> int:
    """Peak resident memory of this instance (VmHWM: ru_maxrss would count the parent's too,
    as Linux carries it across exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _send(results: TextIO, message: dict[str, Any]) -> None:
    sys.stdout.flush()  # the invocation's logs reach the log file before its outcome
    results.write(json.dumps(message) + "\n")
    results.flush()


def serve(module_path: Path, attribute: str, results: TextIO) -> None:
    started = perf_counter()
    try:
        handler = _load_handler(module_path, attribute)
    except Exception as error:  # Lambda reports a failed init on the invocation that needed it
        traceback.print_exc()
        _send(results, {"init_error": error_payload(error, "Runtime.ImportModuleError")})
        return
    _send(results, {"ready": True, "init_ms": round((perf_counter() - started) * 1000)})
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(
            function_name=request["function_name"],
            invoked_function_arn=request["function_arn"],
            memory_limit_in_mb=request["memory_mb"],
            timeout_seconds=request["timeout_seconds"],
            aws_request_id=request["request_id"],
        )
        started = perf_counter()
        try:
            payload, errored = json.dumps(handler(request["event"], context)), False
        except Exception as error:  # the runtime reports every handler error this way
            payload, errored = json.dumps(error_payload(error)), True
        _send(
            results,
            {
                "payload": payload,
                "errored": errored,
                "duration_ms": round((perf_counter() - started) * 1000, 1),
                "max_memory_mb": _max_memory_mb(),
            },
        )


def main() -> None:
    _die_with_parent()
    if os.environ.get(CALL_LOG_VARIABLE):  # tests check the calls against the IAM roles
        record_calls(Path(os.environ[CALL_LOG_VARIABLE]))
    module_path, attribute = Path(sys.argv[1]), sys.argv[2]
    with os.fdopen(int(os.environ[RESULT_FD_VARIABLE]), "w") as results:
        serve(module_path, attribute, results)


if __name__ == "__main__":
    main()
