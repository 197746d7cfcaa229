"""Structured logging, metrics and tracing shared by every function (Powertools)."""

from __future__ import annotations

import logging
import sys

from aws_lambda_powertools import Logger, Metrics, Tracer

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
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
