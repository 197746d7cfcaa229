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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

from silhouette.assets import Manifest
from silhouette.local.stack import PROJECT_ROOT, EmbeddedStack

KEY = "benchmark-key-0123456789"
# Submitting all at once is the point; the usage plan would space the requests out.
UNTHROTTLED = {"ApiThrottleRateLimit": "100000", "ApiThrottleBurstLimit": "100000"}
PHOTO = Manifest.load(PROJECT_ROOT / "samples" / "manifest.json").path("astronaut")


def submit(session: requests.Session, url: str, photo: bytes, number: int) -> str:
    request = {"content_type": "image/png", "filename": f"load-{number:04d}.png"}
    created = session.post(f"{url}/uploads", json=request, timeout=60).json()
    form = created["upload"]
    files = {"file": (request["filename"], photo, "image/png")}
    requests.post(form["url"], data=form["fields"], files=files, timeout=60).raise_for_status()
    return created["job"]["job_id"]


def follow(session: requests.Session, url: str, job_ids: set[str]) -> dict[str, dict]:
    """Every job's final summary, from one list call per 100 jobs per round."""
    finished: dict[str, dict] = {}
    while len(finished) < len(job_ids):
        time.sleep(2)
        cursor = None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = session.get(f"{url}/jobs", params=params, timeout=60).json()
            for job in page["jobs"]:
                if job["job_id"] in job_ids and job["status"] in (
                    "COMPLETED",
                    "REJECTED",
                    "FAILED",
                ):
                    finished[job["job_id"]] = job
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return finished


def function_reports(log_path: Path) -> dict[str, list[dict]]:
    reports: dict[str, list[dict]] = defaultdict(list)
    for line in log_path.read_text().splitlines():
        record = json.loads(line)
        if record.get("type") == "platform.report":
            reports[record["function_name"].rsplit("-", 1)[-1]].append(record)
    return reports


def main(count: int) -> None:
    photo = PHOTO.read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "lambda.log"
        with EmbeddedStack(
            log_path=log_path, api_keys={KEY: "bench"}, parameters=UNTHROTTLED
        ) as stack:
            session, url = requests.Session(), stack.api_url
            session.headers["x-api-key"] = KEY
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=16) as pool:
                job_ids = set(pool.map(lambda n: submit(session, url, photo, n), range(count)))
            submitted = time.monotonic() - started
            finished = follow(session, url, job_ids)
            elapsed = time.monotonic() - started
            reports = function_reports(log_path)

    statuses = Counter(job["status"] for job in finished.values())
    latencies = sorted(
        (_seconds(job["updated_at"]) - _seconds(job["created_at"])) for job in finished.values()
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


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
