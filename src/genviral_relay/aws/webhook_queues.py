"""The webhooks' SQS queues: the delivery queue (one message per attempt still to make) and WebhookDLQ.

A delivery is an SQS message whose body is the event document, exactly as the endpoint receives it, and whose
message attributes say the rest (`webhook_id`, `event_id`, `event_type`, `attempt`, `due_at`); a parked one adds
`reason` and `parked_at`. No attribute holds a signing key: a delivery is signed when it is attempted. The
fan-out queue's messages are event documents with `event_id` and `event_type` (publishers.py writes them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from genviral_relay.aws.sqs import BATCH_LIMIT
from genviral_relay.clock import Clock, format_ts, parse_ts
from genviral_relay.errors import DeadLetterError
from genviral_relay.models.webhooks import WebhookDelivery
from genviral_relay.observability import logger
from genviral_relay.webhooks.ports import DeliveryQueue

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds: a longer wait is made of hops (webhooks/)


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def delivery_attributes(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "webhook_id": _string(delivery.webhook_id),
        "event_id": _string(delivery.event_id),
        "event_type": _string(delivery.event_type),
        "attempt": {"DataType": "Number", "StringValue": str(delivery.attempt)},
        "due_at": _string(format_ts(delivery.due_at)),
    }


def delivery_from(body: str, attributes: Mapping[str, str]) -> WebhookDelivery:
    """A delivery from a message's body and its attributes' values; ValueError when it is not one."""
    due_at = parse_ts(attributes.get("due_at"))
    try:
        return WebhookDelivery(
            webhook_id=attributes["webhook_id"],
            event_id=attributes["event_id"],
            event_type=attributes["event_type"],
            attempt=int(attributes["attempt"]),
            due_at=due_at,  # type: ignore[arg-type]  # None fails validation, as it should
            body=body,
        )
    except (KeyError, ValidationError) as error:
        raise ValueError(f"not a webhook delivery: {error}") from None


class SqsDeliveryQueue(DeliveryQueue):
    def __init__(self, client: SQSClient, queue_url: str, dead_letter_url: str, *, clock: Clock) -> None:
        self._client = client
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url
        self._clock = clock

    def send(self, deliveries: Sequence[WebhookDelivery]) -> list[int]:
        now = self._clock()
        refused: list[int] = []
        for start in range(0, len(deliveries), BATCH_LIMIT):
            chunk = deliveries[start : start + BATCH_LIMIT]
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": delivery.body,
                    "MessageAttributes": delivery_attributes(delivery),
                    "DelaySeconds": min(MAX_DELAY_SECONDS, max(0, math.ceil((delivery.due_at - now).total_seconds()))),
                }
                for index, delivery in enumerate(chunk)
            ]
            try:
                answer = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)  # type: ignore[arg-type]
            except (ClientError, BotoCoreError) as error:
                logger.warning("The webhook delivery queue refused a batch", extra={"error": type(error).__name__})
                refused.extend(range(start, start + len(chunk)))
                continue
            # An entry's Id is its position in the chunk.
            refused.extend(sorted(start + int(entry["Id"]) for entry in answer.get("Failed", [])))
        return refused

    def park(self, delivery: WebhookDelivery, reason: str) -> None:
        attributes = {
            **delivery_attributes(delivery),
            "reason": _string(reason),
            "parked_at": _string(format_ts(self._clock())),
        }
        try:
            self._client.send_message(
                QueueUrl=self._dead_letter_url, MessageBody=delivery.body, MessageAttributes=attributes
            )
        except (ClientError, BotoCoreError) as error:
            raise DeadLetterError(f"the webhook dead-letter queue refused a delivery: {type(error).__name__}") from None
