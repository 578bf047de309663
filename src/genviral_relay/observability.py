"""The one Logger and Metrics of the process. Names are fixed here (dashboards and alarms depend on
them); the log level still comes from POWERTOOLS_LOG_LEVEL.

Tracing comes from the function's `Tracing: Active` setting; the X-Ray SDK is not imported, to
keep cold starts short.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "genviral-relay"
METRICS_NAMESPACE = "GenviralRelay"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


@contextmanager
def logs_to(stream: TextIO, *, level: int | None = None) -> Iterator[None]:
    """For a while, write the relay's log lines to `stream`, only from `level` up (the operations CLI:
    to stderr, the local stack: to its log file). The handler otherwise keeps the stdout it was made with."""
    handler = logger.registered_handler
    saved_level = handler.level
    streaming = handler if isinstance(handler, logging.StreamHandler) else None
    saved_stream = streaming.setStream(stream) if streaming is not None else None
    if level is not None:
        handler.setLevel(level)
    try:
        yield
    finally:
        handler.setLevel(saved_level)
        if streaming is not None and saved_stream is not None:
            streaming.setStream(saved_stream)


__all__ = ["MetricUnit", "logger", "logs_to", "metrics"]
