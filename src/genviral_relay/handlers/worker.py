"""SQS worker: each message's work, dispatched by type (see `polling/work_batch.py`); poison messages
and failed work become batch item failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genviral_relay.factories import work_batch
from genviral_relay.handlers.sqs_records import correlation_id_of, parse_work
from genviral_relay.observability import Metric, emit, logger, metrics
from genviral_relay.settings import WorkerSettings

SETTINGS = WorkerSettings
"""The configuration this function reads (the template must set every variable)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    items, poison = parse_work(records)
    if poison:
        emit(Metric.POISON_MESSAGES, len(poison))
    correlations = {correlation_id_of(record) for record in records}
    if len(correlations) == 1:  # one tick's batch: the batch's own lines share its id too
        logger.set_correlation_id(correlations.pop())
    failed = work_batch().run(items, time_left=lambda: timedelta(milliseconds=context.get_remaining_time_in_millis()))
    # Partial batch response: only these messages go back to the queue.
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in poison + failed]}
