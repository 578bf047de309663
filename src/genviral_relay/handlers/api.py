"""HTTP API (API Gateway REST, AWS_IAM auth): register, read, check now, stop watching; register, read, edit,
disable, enable, rotate, test, resend to and delete webhook endpoints; follow the event feed and read one
event's deliveries. The routes and their error answers are in the `genviral_relay.api` package, one module per
resource; this module is the function's entry point."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from genviral_relay.api import errors, events, watches, webhook_attempts, webhook_operations, webhooks
from genviral_relay.api.app import app, as_json
from genviral_relay.observability import flush_workspace_metrics, logger, metrics
from genviral_relay.settings import ApiSettings

SETTINGS = ApiSettings
"""The configuration this function reads (the template must set every variable)."""
ROUTES = errors.ROUTES
__all__ = [
    "ROUTES",
    "SETTINGS",
    "app",
    "events",
    "lambda_handler",
    "watches",
    "webhook_attempts",
    "webhook_operations",
    "webhooks",
]


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return app.resolve(as_json(event), context)
    finally:
        flush_workspace_metrics()  # a watch's workspace's figures, when the stack has several
