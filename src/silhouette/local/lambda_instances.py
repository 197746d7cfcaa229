"""Lambda execution environments for the embedded stack: each instance of a function is its own
process (lambda_worker) that imports the handler once and runs one invocation at a time, so
functions run side by side on every core, keep their models in their own memory, and a crash
or a runaway invocation takes down one instance, never the stack.

What is Lambda-like here, because correctness depends on it: a function has at most `limit`
instances (its concurrency) and an invocation that finds them all busy for longer than the
caller agreed to wait is refused (the caller sees TooManyRequestsException); each invocation's
handler gets the function's `Timeout`, after which the instance is killed and the invocation
fails with `Sandbox.Timedout`; an instance that dies mid-invocation fails it with
`Runtime.ExitError`; a new instance pays its init (imports, models) once. Optionally every
instance runs on a read-only filesystem with a private writable temporary directory (TMPDIR), as
in a Lambda container image."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import IO, Any

from silhouette.local.lambda_worker import PARENT_PID_VARIABLE, RESULT_FD_VARIABLE

# Lambda gives init its own budget; a generous cap here only guards against a hung import.
INIT_TIMEOUT_SECONDS = 600
# As a Lambda container image: the whole filesystem read-only, and one private writable 512 MB
# temporary directory (Lambda's default ephemeral storage) as TMPDIR. It is mounted on an empty
# directory the runtime provides, not over /tmp, which may hold the virtualenv or the checkout.
# Needs a mount namespace, hence Linux and CAP_SYS_ADMIN (root).
_READ_ONLY_SCRIPT = (
    'mount -t tmpfs -o size=512m tmpfs "$TMPDIR" '
    "&& mount --bind / / && mount -o remount,bind,ro / "
    '&& exec "$@"'
)


def read_only_sandbox(scratch: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    """The environment and command prefix that run an instance read-only, writing only in a
    private temporary directory mounted on the empty directory `scratch`."""
    command = (
        *("unshare", "--mount", "--propagation", "private"),
        *("sh", "-c", _READ_ONLY_SCRIPT, "sandbox"),
    )
    return {"TMPDIR": str(scratch)}, command


@dataclass(frozen=True)
class FunctionSpec:
    """A function as the runtime runs it: its handler, limits and environment."""

    name: str
    arn: str
    module_path: Path
    attribute: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """An invocation's answer as the Invoke API gives it: the payload JSON and whether it is an
    error; `instance_lost` when the instance died or was killed (it is not reused)."""

    payload: str
    errored: bool
    instance_lost: bool = False


def _platform_error(error_type: str, message: str) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message})


class LogSink:
    """The functions' log file: one JSON object per line, each tagged with its function and
    instance (`log_stream`), whichever instance wrote it. A new sink starts a new file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str)
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def output_line(self, function_name: str, log_stream: str, line: str) -> None:
        """A line the instance printed: the function's JSON logs keep their fields; anything
        else (native libraries' chatter) becomes a message of that instance."""
        text = line.rstrip("\n")
        if not text.strip():
            return
        record: dict[str, Any] | None = None
        if text.startswith("{"):
            try:
                record = json.loads(text)
            except ValueError:
                record = None
        if not isinstance(record, dict):
            record = {"function_name": function_name, "message": text}
        record.setdefault("function_name", function_name)
        record["log_stream"] = log_stream
        self.write(record)

    def close(self) -> None:
        with self._lock:
            self._file.close()


class Instance:
    """One execution environment: a worker process serving one invocation at a time."""

    def __init__(
        self,
        spec: FunctionSpec,
        log: LogSink,
        sandbox: tuple[dict[str, str], tuple[str, ...]],
        inherited: dict[str, str],
    ) -> None:
        """`sandbox`: environment and command prefix to run the instance in (or none)."""
        self.spec = spec
        self._log = log
        read_end, write_end = os.pipe()
        sandbox_environment, sandbox_command = sandbox
        environment = {
            **inherited,
            **sandbox_environment,
            **spec.environment,
            RESULT_FD_VARIABLE: str(write_end),
            PARENT_PID_VARIABLE: str(os.getpid()),
            "PYTHONUNBUFFERED": "1",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        }
        command = [
            *sandbox_command,
            sys.executable,
            "-m",
            "silhouette.local.lambda_worker",
            str(spec.module_path),
            spec.attribute,
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
            env=environment,
            text=True,
            start_new_session=True,  # the terminal's Ctrl-C goes to the CLI, which stops us
        )
        os.close(write_end)
        self._results: IO[str] = os.fdopen(read_end, "r")
        self.log_stream = f"{spec.name}/{self.process.pid}"
        threading.Thread(target=self._pump_output, daemon=True).start()
        self.init_ms: float | None = None  # reported once, with the first invocation

    def _pump_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.output_line(self.spec.name, self.log_stream, line)

    def _read_result(self, timeout: float) -> dict[str, Any] | None:
        """The worker's next message; None when it exited. TimeoutError when none came in time."""
        ready, _, _ = select.select([self._results], [], [], max(0.0, timeout))
        if not ready:
            raise TimeoutError
        line = self._results.readline()
        return json.loads(line) if line else None

    def start(self) -> Outcome | None:
        """Wait for the init phase; an error outcome if it failed."""
        try:
            message = self._read_result(INIT_TIMEOUT_SECONDS)
        except TimeoutError:
            message = {"init_error": {"errorType": "Runtime.InitTimeout", "errorMessage": ""}}
        if message and message.get("ready"):
            self.init_ms = message["init_ms"]
            return None
        if message is None:
            message = {
                "init_error": {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"init failed: {self._exit_description()}",
                }
            }
        self.kill()
        return Outcome(json.dumps(message["init_error"]), errored=True, instance_lost=True)

    def invoke(self, event: Any) -> Outcome:
        request_id = str(uuid.uuid4())
        request = {
            "event": event,
            "request_id": request_id,
            "function_name": self.spec.name,
            "function_arn": self.spec.arn,
            "memory_mb": self.spec.memory_mb,
            "timeout_seconds": self.spec.timeout_seconds,
        }
        started = monotonic()
        error: tuple[str, str] | None = None
        message = None
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            message = self._read_result(self.spec.timeout_seconds)
        except TimeoutError:
            error = (
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after "
                f"{self.spec.timeout_seconds:.2f} seconds",
            )
        except (OSError, ValueError):  # the worker is gone: its pipes are closed
            pass
        if message is None:
            if error is None:
                error = (
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited with "
                    f"{self._exit_description()}",
                )
            self.kill()
            self._report(request_id, monotonic() - started, error[0], None)
            return Outcome(_platform_error(*error), errored=True, instance_lost=True)
        self._report(
            request_id,
            message["duration_ms"] / 1000,
            "error" if message["errored"] else "success",
            message["max_memory_mb"],
        )
        return Outcome(message["payload"], message["errored"])

    def _report(
        self, request_id: str, seconds: float, status: str, max_memory_mb: int | None
    ) -> None:
        """Lambda's REPORT line: duration, init on a cold start, memory used against the limit."""
        record: dict[str, Any] = {
            "type": "platform.report",
            "function_name": self.spec.name,
            "function_request_id": request_id,  # Lambda's RequestId, as Powertools names it
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "memory_size_mb": self.spec.memory_mb,
            "max_memory_used_mb": max_memory_mb,
        }
        if self.init_ms is not None:
            record["init_duration_ms"], self.init_ms = self.init_ms, None
        self._log.output_line(self.spec.name, self.log_stream, json.dumps(record))

    def report_provisioned_init(self) -> None:
        """Log the init of an instance started ahead of its invocations on its own line, as
        Lambda's telemetry does for provisioned concurrency: its first REPORT is warm."""
        record = {
            "type": "platform.initReport",
            "function_name": self.spec.name,
            "initialization_type": "provisioned-concurrency",
            "init_duration_ms": self.init_ms,
        }
        self.init_ms = None
        self._log.output_line(self.spec.name, self.log_stream, json.dumps(record))

    def _exit_description(self) -> str:
        code = self.process.wait(timeout=5)
        if code < 0:
            return f"signal: {signal.Signals(-code).name}"
        return f"exit status {code}"

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def discard(self) -> None:
        self.kill()
        self._results.close()


class Spawner:
    """Starts every instance from one long-lived thread: an instance is killed when the thread
    that started it ends (see lambda_worker), and request threads end after each request."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Callable[[], Instance], Future[Instance]] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._run, name="lambda-spawner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            create, future = request
            try:
                future.set_result(create())
            except BaseException as error:
                future.set_exception(error)
        # Instances die with this thread: it must outlive them (see FunctionPool.close).

    def spawn(self, create: Callable[[], Instance]) -> Instance:
        future: Future[Instance] = Future()
        self._requests.put((create, future))
        return future.result()

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join()


class FunctionPool:
    """A function's instances: at most `limit`, created on demand, reused while healthy.

    Unlike Lambda, which starts an instance whenever all are busy, a request waits a little for
    a busy instance of a function whose invocations are far shorter than its cold start: on a
    developer's two cores a second instance of a 20 ms function costs a second of CPU that the
    photos' models need."""

    def __init__(
        self, spec: FunctionSpec, limit: int, create: Callable[[FunctionSpec], Instance]
    ) -> None:
        self.spec, self.limit = spec, limit
        self._create = create
        self._idle: list[Instance] = []
        self._running: set[Instance] = set()
        self._count = 0
        self._closed = False
        self._changed = threading.Condition()
        self._init_seconds: float | None = None  # the last cold start
        # The latest invocations' durations: their shortest is what the function costs when
        # the machine is not busy starting instances and running models.
        self._invoke_seconds: deque[float] = deque(maxlen=5)

    def run(self, event: Any, wait_seconds: float | None) -> Outcome | None:
        """Invoke on an idle or new instance, waiting at most `wait_seconds` (None: as long as
        it takes) for one; None when all `limit` stayed busy that long."""
        try:
            instance = self._acquire(wait_seconds)
        except InitFailed as failure:
            return failure.outcome
        if instance is None:
            return None
        started = monotonic()
        outcome = instance.invoke(event)
        with self._changed:
            self._invoke_seconds.append(monotonic() - started)
        self._release(instance, lost=outcome.instance_lost)
        return outcome

    def _acquire(self, wait_seconds: float | None) -> Instance | None:
        arrived = monotonic()
        deadline = None if wait_seconds is None else arrived + wait_seconds
        with self._changed:
            while not self._idle:
                now = monotonic()
                scale_at = self._scale_at(arrived) if self._count < self.limit else None
                if scale_at is not None and now >= scale_at:
                    break
                if self._closed or (deadline is not None and now >= deadline):
                    return None
                wake = min((t for t in (deadline, scale_at) if t is not None), default=None)
                self._changed.wait(None if wake is None else wake - now)
            if self._idle:
                instance = self._idle.pop()
                self._running.add(instance)
                return instance
            self._count += 1
        return self._new_instance()

    def _new_instance(self) -> Instance:
        instance = self._create(self.spec)
        with self._changed:
            self._running.add(instance)
        started = monotonic()
        failure = instance.start()
        with self._changed:
            self._init_seconds = monotonic() - started
            self._changed.notify_all()  # requests waiting for this start decide again
        if failure is not None:
            self._release(instance, lost=True)
            raise InitFailed(failure)
        return instance

    def _scale_at(self, arrived: float) -> float | None:
        """When a request that arrived at `arrived` to find no idle instance starts another: at
        once for the first instance or a function whose invocations outlast a third of its cold
        start; for a shorter (or not yet measured) one, after waiting that third for a busy
        instance; None while the first instance still starts, which a second would only slow."""
        if not self._count:
            return arrived
        if self._init_seconds is None:
            return None
        third = self._init_seconds / 3
        if self._invoke_seconds and min(self._invoke_seconds) >= third:
            return arrived
        return arrived + third

    def provision(self) -> None:
        """Start one instance ahead of any invocation, as provisioned concurrency does: its
        init (imports, models) is paid before the first photo arrives, not in its way. An
        instance that fails its init is dropped; the first invocation then starts another."""
        with self._changed:
            if self._count or self._closed:
                return
            self._count += 1
        try:
            instance = self._new_instance()
        except InitFailed:
            return
        instance.report_provisioned_init()
        self._release(instance, lost=False)

    def _release(self, instance: Instance, lost: bool) -> None:
        with self._changed:
            self._running.discard(instance)
            if lost or self._closed:
                self._count -= 1
                instance.discard()
            else:
                self._idle.append(instance)
            self._changed.notify_all()  # a waiting invocation, and wait_until_idle

    def wait_until_idle(self, timeout_seconds: float) -> bool:
        """Wait until no invocation runs; False if one still does after the timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._running, timeout_seconds)

    def close(self) -> None:
        """Stop every instance; invocations still running fail as their instance dies."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            running = list(self._running)
            self._changed.notify_all()
        for instance in idle:
            instance.discard()
        for instance in running:
            instance.kill()  # its invocation sees the exit and releases it


class InitFailed(Exception):
    """A new instance failed its init phase; `outcome` is what the invocation answers."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.payload)
        self.outcome = outcome
