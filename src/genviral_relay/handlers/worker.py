"""SQS worker: each message's work, dispatched by type (see `polling/work_batch.py`); poison messages
and failed work become batch item failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from genviral_relay.aws.work_queue import correlation_id_of
from genviral_relay.factories import work_batch
from genviral_relay.models.messages import WORK_MESSAGE
from genviral_relay.observability import Metric, emit, logger, metrics
from genviral_relay.polling.work_batch import WorkItem
from genviral_relay.settings import WorkerSettings

SETTINGS = WorkerSettings
"""The configuration this function reads (the template must set every variable)."""


def parse_records(records: list[dict[str, Any]]) -> tuple[list[WorkItem], list[str]]:
    """(the work items, ids of poison messages). SQS moves poison to the DLQ after a few receives."""
    items: list[WorkItem] = []
    poison: list[str] = []
    for record in records:
        try:
            request = WORK_MESSAGE.validate_json(record["body"])
        except ValidationError as error:
            poison.append(record["messageId"])
            logger.error(
                "Not a check request",  # the words operators filter on since 0.1 (any work request)
                extra={
                    "message_id": record["messageId"],
                    "problems": error.error_count(),
                    "first_problem": error.errors()[0]["msg"],
                },
            )
            continue
        items.append(WorkItem(record["messageId"], request, correlation_id_of(record)))
    if poison:
        emit(Metric.POISON_MESSAGES, len(poison))
    return items, poison


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    items, poison = parse_records(records)
    correlations = {correlation_id_of(record) for record in records}
    if len(correlations) == 1:  # one tick's batch: the batch's own lines share its id too
        logger.set_correlation_id(correlations.pop())
    failed = work_batch().run(items, time_left=lambda: timedelta(milliseconds=context.get_remaining_time_in_millis()))
    # Partial batch response: only these messages go back to the queue.
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in poison + failed]}
