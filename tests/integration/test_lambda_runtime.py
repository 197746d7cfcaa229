"""The embedded stack's Lambda service behaves as Lambda where the pipeline's correctness depends
on it: instances run side by side up to the function's concurrency, a function busy for longer
than the capacity wait refuses with TooManyRequestsException, the function's Timeout ends a
runaway invocation, a crashing instance fails its invocation and is replaced, asynchronous
invocations wait their turn and are retried, and every log line says which function and instance
wrote it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from silhouette.local.lambda_runtime import FunctionCode, LambdaRuntime, TooManyRequests

PROBE = Path(__file__).with_name("lambda_probe.py")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


@contextmanager
def installed(log_path: Path, **options: float) -> Iterator[LambdaRuntime]:
    runtime = LambdaRuntime(log_path, **options)
    runtime.install({"PATH": "/usr/bin:/bin"})
    try:
        yield runtime
    finally:
        runtime.uninstall()


@pytest.fixture
def runtime(tmp_path):
    with installed(tmp_path / "lambda.log") as runtime:
        yield runtime


def register(
    runtime: LambdaRuntime, name: str, concurrency: int = 1, timeout: int = 10, init: float = 0
) -> None:
    runtime.register(
        name,
        ARN.format(name),
        FunctionCode(PROBE, "handler", timeout_seconds=timeout, memory_mb=256),
        environment={"PROBE_VARIABLE": name, "PROBE_INIT_SECONDS": str(init)},
        concurrency=concurrency,
    )


def answer(runtime: LambdaRuntime, name: str, event: dict) -> dict:
    outcome = runtime.invoke(name, event)
    assert not outcome.errored, outcome.payload
    return json.loads(outcome.payload)


def log_records(runtime: LambdaRuntime) -> list[dict]:
    return [json.loads(line) for line in runtime.log_path.read_text().splitlines()]


def test_an_instance_keeps_its_state_and_sees_its_function_environment(runtime):
    register(runtime, "probe")

    first, second = answer(runtime, "probe", {}), answer(runtime, "probe", {})

    assert first["pid"] == second["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert first["variable"] == "probe"
    assert 9000 < first["remaining_ms"] <= 10000


def test_instances_run_side_by_side_up_to_the_concurrency_then_refuse(tmp_path):
    with installed(tmp_path / "lambda.log", capacity_wait_seconds=1.0) as runtime:
        register(runtime, "pair", concurrency=2)
        with ThreadPoolExecutor(max_workers=3) as pool:
            slow = [pool.submit(runtime.invoke, "pair", {"sleep": 4}) for _ in range(2)]
            time.sleep(1)  # both instances are busy for 3 s more: longer than the 1 s wait
            with pytest.raises(TooManyRequests):
                runtime.invoke("pair", {})
            pids = {json.loads(future.result().payload)["pid"] for future in slow}

        assert len(pids) == 2
        assert answer(runtime, "pair", {})["pid"] in pids  # a free instance is reused


def test_a_burst_of_short_invocations_shares_one_instance_instead_of_starting_more(runtime):
    # A second instance would cost a whole cold start of CPU to save a few milliseconds.
    register(runtime, "light", concurrency=4, init=1.0)
    answer(runtime, "light", {})  # started, and its invocations measured as short

    with ThreadPoolExecutor(max_workers=4) as pool:
        burst = list(pool.map(lambda _: answer(runtime, "light", {"sleep": 0.01}), range(12)))

    assert len({result["pid"] for result in burst}) == 1
    assert sorted(result["invocations"] for result in burst) == list(range(2, 14))


def test_an_invocation_waits_a_moment_for_a_busy_instance_instead_of_being_refused(runtime):
    register(runtime, "single", concurrency=1)

    with ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(runtime.invoke, "single", {"sleep": 2})
        time.sleep(0.5)  # the only instance is busy for 1.5 s more: less than the wait
        waited = answer(runtime, "single", {})

    assert waited["pid"] == json.loads(busy.result().payload)["pid"]
    assert waited["invocations"] == 2


def test_the_function_timeout_ends_the_invocation_and_the_instance(runtime):
    register(runtime, "slow", timeout=1)
    before = answer(runtime, "slow", {})["pid"]

    started = time.monotonic()
    outcome = runtime.invoke("slow", {"sleep": 30})

    assert outcome.errored and time.monotonic() - started < 5
    error = json.loads(outcome.payload)
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert answer(runtime, "slow", {})["pid"] != before  # a fresh instance took its place


def test_a_crashing_instance_fails_its_invocation_and_is_replaced(runtime):
    register(runtime, "crashy")
    before = answer(runtime, "crashy", {})["pid"]

    outcome = runtime.invoke("crashy", {"crash": True})

    error = json.loads(outcome.payload)
    assert outcome.errored and error["errorType"] == "Runtime.ExitError"
    assert "SIGSEGV" in error["errorMessage"]
    assert answer(runtime, "crashy", {})["pid"] != before


def test_a_handler_error_is_reported_by_its_class_name(runtime):
    register(runtime, "failing")

    outcome = runtime.invoke("failing", {"raise": "no such artifact"})

    error = json.loads(outcome.payload)
    assert outcome.errored
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no such artifact")


def test_asynchronous_invocations_wait_for_an_instance_and_are_retried(runtime):
    register(runtime, "queued")
    runtime.inject_fault("queued", ValueError("first try fails"))

    runtime.invoke_async("queued", {"print": "queued-1"})
    runtime.invoke_async("queued", {"print": "queued-2"})  # waits: the only instance is busy

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = [r.get("message") for r in log_records(runtime)]
        if "queued-1" in messages and "queued-2" in messages:
            break
        time.sleep(0.2)
    assert "queued-1" in messages and "queued-2" in messages


def test_log_lines_name_their_function_and_instance_and_report_each_invocation(runtime):
    register(runtime, "chatty")
    pid = answer(runtime, "chatty", {"print": "hello"})["pid"]
    answer(runtime, "chatty", {})

    records = log_records(runtime)
    printed = [r for r in records if r.get("message") in ("hello", "native: hello")]
    reports = [r for r in records if r.get("type") == "platform.report"]
    assert len(printed) == 2
    assert all(r["log_stream"] == f"chatty/{pid}" for r in printed + reports)
    assert [r["status"] for r in reports] == ["success", "success"]
    assert "init_duration_ms" in reports[0] and "init_duration_ms" not in reports[1]
    assert all(r["max_memory_used_mb"] > 10 for r in reports)


def test_provisioned_functions_are_initialised_before_their_first_invocation(runtime):
    register(runtime, "ready", concurrency=2)
    register(runtime, "also_ready")

    runtime.provision()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(initialised(runtime)) < 2:
        time.sleep(0.1)
    first = answer(runtime, "ready", {})

    assert set(initialised(runtime)) == {"ready", "also_ready"}  # one instance each, ahead
    assert first["invocations"] == 1
    [report] = [r for r in log_records(runtime) if r.get("type") == "platform.report"]
    assert "init_duration_ms" not in report  # the first invocation did not wait for an init


def initialised(runtime: LambdaRuntime) -> list[str]:
    return [
        r["function_name"]
        for r in log_records(runtime)
        if r.get("type") == "platform.initReport" and r["init_duration_ms"] is not None
    ]
