"""The one Logger and Metrics of the process. Names are fixed here (dashboards and alarms depend on
them); the log level still comes from POWERTOOLS_LOG_LEVEL.

Tracing comes from the function's `Tracing: Active` setting; the X-Ray SDK is not imported, to
keep cold starts short.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "genviral-relay"
METRICS_NAMESPACE = "GenviralRelay"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

__all__ = ["MetricUnit", "logger", "metrics"]
