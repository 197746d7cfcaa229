"""Load makes jobs wait, not fail: many photos submitted at once on the embedded stack (a 2-core
machine runs one or two cutouts at a time) all end in a terminal state, none FAILED, none lost,
and every duplicate upload announcement is accounted for. `make test` submits 100; `make soak`
300 (SILHOUETTE_LOAD_JOBS). The figures are printed; `make bench` reports them too."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from silhouette.service import jobs
from tests.e2e.helpers import TENANT, upload
from tests.e2e.test_start_paths import announce_uploads

pytestmark = pytest.mark.e2e

JOBS = int(os.environ.get("SILHOUETTE_LOAD_JOBS", "100"))


def metric_total(stack, name: str, offset: int) -> int:
    """The sum of a metric the functions published (EMF lines in the log after `offset`)."""
    total = 0
    with stack.runtime.log_path.open() as log:
        log.seek(offset)
        lines = log.read().splitlines()
    for line in lines:
        record = json.loads(line)
        if "_aws" in record and name in record:
            value = record[name]
            total += int(sum(value) if isinstance(value, list) else value)
    return total


def executions(stack) -> list[dict]:
    sfn = stack.client("stepfunctions")
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=stack.outputs["PipelineStateMachineArn"]
    )
    return [execution for page in pages for execution in page["executions"]]


def waited_for_capacity(stack, execution_arn: str) -> int:
    history = stack.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return sum(
        event.get("lambdaFunctionFailedEventDetails", {}).get("error")
        == "Lambda.TooManyRequestsException"
        for event in history
    )


def test_simultaneous_jobs_all_finish_none_fails_none_is_lost(stack, sample, capsys):
    announce_uploads(stack, s3_notification=True, eventbridge=True)  # each upload: 2 events
    photo = sample.path("astronaut").read_bytes()
    log_offset = stack.runtime.log_path.stat().st_size

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        job_ids = list(
            pool.map(
                lambda n: upload(photo, "image/png", f"load-{n:04d}.png"),
                range(JOBS),
            )
        )
    submitted = time.monotonic() - started
    pending, finished = set(job_ids), {}
    deadline = time.monotonic() + 120 + 30 * JOBS  # generous: the jobs' own timeouts decide
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = jobs.get_job(TENANT, job_id)
            if job.status.is_terminal:
                finished[job_id] = job
                pending.discard(job_id)
        time.sleep(2)
    elapsed = time.monotonic() - started
    assert not pending, f"{len(pending)} of {JOBS} jobs never finished"
    stack.wait_for_executions(timeout_seconds=120)

    statuses = Counter(job.status.value for job in finished.values())
    failures = Counter(job.error for job in finished.values() if job.error)
    assert statuses == {"COMPLETED": JOBS}, (statuses, failures)
    ran = executions(stack)
    assert sorted(e["name"] for e in ran) == sorted(job_ids)  # one each: duplicates ran none
    assert {e["status"] for e in ran} == {"SUCCEEDED"}
    deadline = time.monotonic() + 60  # duplicate announcements may still be queued
    while (
        metric_total(stack, "DuplicateUploadEvents", log_offset) < JOBS
        and time.monotonic() < deadline
    ):
        time.sleep(1)
    assert metric_total(stack, "JobsStarted", log_offset) == JOBS
    assert metric_total(stack, "DuplicateUploadEvents", log_offset) == JOBS
    throttled = sum(waited_for_capacity(stack, e["executionArn"]) for e in ran)
    assert throttled > 0, "no job had to wait: the load did not exceed the capacity"

    latencies = sorted(
        (job.updated_at - job.created_at).total_seconds() for job in finished.values()
    )
    median = statistics.median(latencies)
    with capsys.disabled():  # the figures, in every run's output
        print(
            f"\n{JOBS} jobs submitted in {submitted:.1f}s, all terminal after {elapsed:.1f}s: "
            f"{JOBS / elapsed * 60:.1f} jobs/min; job latency p50 {median:.1f}s, "
            f"slowest {latencies[-1]:.1f}s; {throttled} throttled invocations retried"
        )
