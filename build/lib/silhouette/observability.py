"""Structured logging, metrics and tracing shared by every function (Powertools)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

SERVICE = "silhouette"
NAMESPACE = "Silhouette"


class FunctionOutput:
    """Where the functions' JSON logs and EMF metrics go: stdout, which Lambda ships to
    CloudWatch Logs. A runtime hosting functions in-process (the embedded stack) can send one
    thread's output to its own stream instead."""

    def __init__(self) -> None:
        self._local = threading.local()

    def write(self, text: str) -> int:
        return (getattr(self._local, "stream", None) or sys.stdout).write(text)

    def flush(self) -> None:
        (getattr(self._local, "stream", None) or sys.stdout).flush()

    @contextmanager
    def redirected(self, stream: TextIO) -> Iterator[None]:
        self._local.stream = stream
        try:
            yield
        finally:
            self._local.stream = None


function_output = FunctionOutput()
logger = Logger(service=SERVICE, logger_handler=logging.StreamHandler(function_output))
tracer = Tracer(service=SERVICE)


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
