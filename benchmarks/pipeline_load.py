"""Throughput of the embedded stack under load: N copies of a portrait submitted at once through
the public API, each followed to its end. Prints jobs per minute, job latency (p50, slowest),
how many invocations waited for a free instance, and per function the warm duration, cold
starts and peak memory against its MemorySize (Lambda's REPORT lines). Asserts nothing.

    make bench        # or: python benchmarks/pipeline_load.py [jobs]   (default 100)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from silhouette.assets import Manifest
from silhouette.client import photo_jobs
from silhouette.client.api_client import ApiClient
from silhouette.local.stack import EmbeddedStack
from silhouette.names import PROJECT_ROOT
from silhouette.schema import JobOptions

KEY = "benchmark-key-0123456789"
# Submitting all at once is the point; the usage plan would space the requests out.
UNTHROTTLED = {"ApiThrottleRateLimit": "100000", "ApiThrottleBurstLimit": "100000"}
PHOTO = Manifest.load(PROJECT_ROOT / "samples" / "manifest.json").path("astronaut")


def function_reports(log_path: Path, kind: str = "platform.report") -> dict[str, list[dict]]:
    """The log's platform records of `kind` (Lambda's REPORT lines; `platform.initReport`:
    provisioned instances' inits) by function (`IngestFunction`)."""
    reports: dict[str, list[dict]] = defaultdict(list)
    for line in log_path.read_text().splitlines():
        record = json.loads(line)
        if record.get("type") == kind:
            reports[record["function_name"].rsplit("-", 1)[-1]].append(record)
    return reports


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "lambda.log"
        with EmbeddedStack(
            log_path=log_path, api_keys={KEY: "bench"}, parameters=UNTHROTTLED
        ) as stack:
            # The CLI's own client and follower, without its pacing (the plan is unthrottled).
            api = ApiClient(stack.api_url, KEY, rate_per_second=1000, burst=1000)
            started = time.monotonic()
            jobs = list(photo_jobs.submit_all(api, [PHOTO] * count, JobOptions()))
            submitted = time.monotonic() - started
            photo_jobs.follow(api, jobs, timeout_seconds=3600)
            elapsed = time.monotonic() - started
            reports = function_reports(log_path)

    statuses = Counter(job.state for job in jobs)
    latencies = sorted(
        (job.status.updated_at - job.status.created_at).total_seconds()
        for job in jobs
        if job.status is not None
    )
    print(f"Pipeline under load: {count} copies of {PHOTO.name} submitted at once (embedded stack)")
    print(f"  submitted in {submitted:.1f}s; all terminal after {elapsed:.1f}s: {dict(statuses)}")
    print(f"  throughput {count / elapsed * 60:.1f} jobs/min")
    print(
        f"  job latency p50 {statistics.median(latencies):.1f}s, "
        f"p95 {latencies[max(0, round(count * 0.95) - 1)]:.1f}s, slowest {latencies[-1]:.1f}s"
    )
    print("  function     invocations  warm p50 ms  cold starts  init p50 ms  peak MB / MemorySize")
    for name, records in sorted(reports.items()):
        warm = [r["duration_ms"] for r in records if "init_duration_ms" not in r]
        inits = [r["init_duration_ms"] for r in records if "init_duration_ms" in r]
        peak = max((r["max_memory_used_mb"] or 0) for r in records)
        print(
            f"  {name:<12} {len(records):>11}  {statistics.median(warm or [0]):>11.0f}"
            f"  {len(inits):>11}  {statistics.median(inits or [0]):>11.0f}"
            f"  {peak:>7} / {records[0]['memory_size_mb']}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
