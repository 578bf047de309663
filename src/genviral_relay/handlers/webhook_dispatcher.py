"""SQS (the webhooks' fan-out queue): one delivery per event and endpoint that takes its type (see
`webhooks/`); what could not be queued comes back as a batch item failure."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genviral_relay.handlers.sqs_records import parse_fanout
from genviral_relay.observability import Metric, emit, logger, metrics
from genviral_relay.settings import WebhookDispatcherSettings
from genviral_relay.webhook_factories import webhook_fanout

SETTINGS = WebhookDispatcherSettings
"""The configuration this function reads (the template must set every variable)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    items, poison = parse_fanout(event.get("Records", []))
    if poison:
        emit(Metric.POISON_MESSAGES, len(poison))
    failed = webhook_fanout().run(items)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in poison + failed]}
