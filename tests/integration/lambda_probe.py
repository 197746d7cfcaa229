"""A Lambda handler for tests/integration/test_lambda_runtime.py: does what its event says, so
the tests can watch the runtime handle slow, crashing, failing and chatty invocations."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

time.sleep(float(os.environ.get("PROBE_INIT_SECONDS", 0)))  # a model loading, say
INVOCATIONS = 0  # module state: survives between invocations of one instance only


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global INVOCATIONS
    INVOCATIONS += 1
    time.sleep(event.get("sleep", 0))
    if "print" in event:
        print(event["print"])
        os.write(2, f"native: {event['print']}\n".encode())  # as a C library would
        sys.stdout.flush()
    if event.get("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if "raise" in event:
        raise ValueError(event["raise"])
    return {
        "pid": os.getpid(),
        "invocations": INVOCATIONS,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "variable": os.environ.get("PROBE_VARIABLE"),
    }
