"""SQS worker: check each queued post; report poison messages as batch item failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from genviral_relay.clock import utc_now
from genviral_relay.errors import RelayError
from genviral_relay.factories import checker_store, post_checker
from genviral_relay.logic.check_batch import CheckBatch
from genviral_relay.models.messages import CheckRequest
from genviral_relay.observability import MetricUnit, logger, metrics
from genviral_relay.settings import CheckerSettings

processor = BatchProcessor(event_type=EventType.SQS)

SETTINGS = CheckerSettings
"""The configuration this function reads (the template must set every variable)."""


class PoisonMessageError(RelayError):
    """A queue message that is not a check request; SQS moves it to the DLQ after a few receives."""


def parse_request(record: SQSRecord) -> CheckRequest:
    try:
        return CheckRequest.model_validate_json(record.body)
    except ValidationError as error:
        metrics.add_metric(name="PoisonMessages", unit=MetricUnit.Count, value=1)
        raise PoisonMessageError(
            f"message {record.message_id} is not a check request: {error.error_count()} problem(s), "
            f"first: {error.errors()[0]['msg']}"
        ) from None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = CheckBatch(post_checker(), checker_store(), utc_now())

    def handle_record(record: SQSRecord) -> None:
        request = parse_request(record)
        logger.append_keys(post_id=request.post_id)
        try:
            batch.handle(request)
        finally:
            logger.remove_keys(["post_id"])

    response = process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
    return dict(response)
