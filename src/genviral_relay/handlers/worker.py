"""SQS worker: each message's work, by workspace (`polling/workspace_runs.py`) and by type (`polling/work_batch.py`);
poison messages and failed work become batch item failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genviral_relay.handlers.sqs_records import correlation_id_of, parse_work
from genviral_relay.observability import Metric, emit, flush_workspace_metrics, logger, metrics
from genviral_relay.settings import WorkerSettings
from genviral_relay.workspace_factories import workspace_batches

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
    try:
        failed = workspace_batches().run(
            items, time_left=lambda: timedelta(milliseconds=context.get_remaining_time_in_millis())
        )
    finally:
        flush_workspace_metrics()
    # Partial batch response: only these messages go back to the queue.
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in poison + failed]}
