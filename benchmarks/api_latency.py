"""Latency of the public API on the embedded stack (local gateway -> API function -> moto), the
cost a polling client pays per request. Prints p50/p95 per endpoint; asserts nothing.

    make bench        # or: python benchmarks/api_latency.py [requests-per-endpoint]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from silhouette.local.stack import EmbeddedStack

KEY = "benchmark-key-0123456789"
# The usage plan's throttle would measure the throttle, not the API.
UNTHROTTLED = {"ApiThrottleRateLimit": "100000", "ApiThrottleBurstLimit": "100000"}


def percentiles(call: Callable[[], requests.Response], count: int) -> tuple[float, float]:
    elapsed = []
    for _ in range(count):
        started = time.perf_counter()
        response = call()
        elapsed.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    elapsed.sort()
    return statistics.median(elapsed), elapsed[max(0, round(count * 0.95) - 1)]


def main(count: int) -> None:
    with (
        tempfile.TemporaryDirectory() as scratch,
        EmbeddedStack(
            log_path=Path(scratch) / "lambda.log", api_keys={KEY: "bench"}, parameters=UNTHROTTLED
        ) as stack,
    ):
        session, url = requests.Session(), stack.api_url
        session.headers["x-api-key"] = KEY
        upload = {"content_type": "image/jpeg", "filename": "photo.jpg"}
        job_id = session.post(f"{url}/uploads", json=upload).json()["job"]["job_id"]
        calls = {
            "POST /uploads": lambda: session.post(f"{url}/uploads", json=upload),
            "GET /jobs/{id}": lambda: session.get(f"{url}/jobs/{job_id}"),
            "GET /jobs": lambda: session.get(f"{url}/jobs"),
            "GET /health": lambda: session.get(f"{url}/health"),
        }
        percentiles(calls["GET /health"], 5)  # warm the function
        print(f"API latency on the embedded stack, {count} requests each")
        for name, call in calls.items():
            p50, p95 = percentiles(call, count)
            print(f"  {name:<16} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
