"""SQS (the webhook delivery queue): one attempt per delivery, each on a thread of its own (see
`webhooks/`). Retries are new messages; a batch item failure is only for an outcome that could not be
recorded (the attempt is then made again). An attempt the invocation has no time left to finish is not started:
its delivery goes back to the queue unchanged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genviral_relay.handlers.sqs_records import parse_deliveries
from genviral_relay.observability import Metric, emit, logger, metrics
from genviral_relay.settings import WebhookDeliverySettings
from genviral_relay.webhook_factories import webhook_attempts

SETTINGS = WebhookDeliverySettings
"""The configuration this function reads (the template must set every variable)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    items, poison = parse_deliveries(event.get("Records", []))
    if poison:
        emit(Metric.POISON_MESSAGES, len(poison))
    left = lambda: timedelta(milliseconds=context.get_remaining_time_in_millis())  # noqa: E731
    failed = webhook_attempts().run(items, time_left=left)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in poison + failed]}
