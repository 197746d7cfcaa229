"""Structured logging, metrics and tracing shared by every function (Powertools)."""

from __future__ import annotations

import logging
import sys

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = "silhouette"
NAMESPACE = "Silhouette"


class _CurrentStdout:
    """Writes to whatever sys.stdout is at the time, so a runtime that redirects a function's
    output (the embedded stack's Lambda adapter) also receives the logs."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


logger = Logger(service=SERVICE, logger_handler=logging.StreamHandler(_CurrentStdout()))
tracer = Tracer(service=SERVICE)


def publish_metric(
    name: str, value: float, unit: MetricUnit = MetricUnit.Count, **dimensions: str
) -> None:
    """Emit one CloudWatch metric (EMF) now. A metric per call, not per-invocation state,
    so concurrent invocations in one process (the embedded stack) never mix dimensions."""
    with single_metric(
        name=name, unit=unit, value=value, namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=dimension_value)
