"""Structured logging, metrics and tracing shared by every function (Powertools)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

SERVICE = "silhouette"
NAMESPACE = "Silhouette"


class FunctionOutput:
    """Where the functions' JSON logs and EMF metrics go: stdout, which Lambda ships to
    CloudWatch Logs; looked up at each write, so `contextlib.redirect_stdout` captures them."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


function_output = FunctionOutput()
logger = Logger(service=SERVICE, logger_handler=logging.StreamHandler(function_output))
tracer = Tracer(service=SERVICE)


@contextmanager
def log_keys(**keys: Any) -> Iterator[None]:
    """Add `keys` to the log lines this thread writes inside the block, and to no other thread's;
    a None value hides the key. On exit the thread's keys are exactly as before, so blocks nest
    (a job's request id inside the MinIO webhook request that starts it). Per-invocation keys
    (job, request id, stage) live here rather than in the logger's shared keys, which every
    thread sees: a process running invocations side by side would tag one with another's."""
    before = dict(logger.thread_safe_get_current_keys())
    logger.thread_safe_append_keys(**keys)
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(**before)


def publish_metric(
    name: str, value: float, unit: MetricUnit = MetricUnit.Count, **dimensions: str
) -> None:
    """Emit one CloudWatch metric in Embedded Metric Format now. Each call has its own metric
    set, so concurrent invocations in one process never mix dimensions."""
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for dimension, dimension_value in dimensions.items():
        metrics.add_dimension(name=dimension, value=dimension_value)
    metrics.add_metric(name=name, unit=unit, value=value)
    function_output.write(json.dumps(metrics.serialize_metric_set(), separators=(",", ":")) + "\n")
