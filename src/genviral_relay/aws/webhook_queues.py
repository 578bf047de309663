"""The webhooks' SQS queues: the delivery queue (one message per attempt still to make) and WebhookDLQ.

A delivery is an SQS message whose attributes name it: `webhook_id`, `event_id`, `event_type`, `attempt`, `due_at`,
`paced` (holding a pacer's slot: its interval in ms) and, for a relay event, `post_id` (the partition of the stored
event: the attempt signs the document stored there, never a body the message carries; a notice has none, it is stored
under its id alone); a parked one adds `reason`
and `parked_at`. Its body only repeats the ids, for people reading a queue. No attribute holds a signing key: a
delivery is signed when it is attempted. The fan-out queue's messages are event documents with `event_id` and
`event_type` (publishers.py writes them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from genviral_relay.aws.sqs import BATCH_LIMIT
from genviral_relay.clock import Clock, format_ts, parse_ts
from genviral_relay.errors import DeadLetterError
from genviral_relay.models.webhook_documents import NOTICE_TYPES
from genviral_relay.models.webhooks import TEST_EVENT_TYPE, WebhookDelivery
from genviral_relay.observability import logger
from genviral_relay.webhooks.ports import DeliveryQueue

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

SEND_THREADS = 8
"""Batches sent at once; boto3's clients are thread-safe and keep 10 connections."""
MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds: a longer wait is made of hops (webhooks/)


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def delivery_attributes(delivery: WebhookDelivery) -> dict[str, Any]:
    attributes = {
        "webhook_id": _string(delivery.webhook_id),
        "event_id": _string(delivery.event_id),
        "event_type": _string(delivery.event_type),
        "attempt": {"DataType": "Number", "StringValue": str(delivery.attempt)},
        "due_at": _string(format_ts(delivery.due_at)),
    }
    if delivery.post_id is not None:
        attributes["post_id"] = _string(delivery.post_id)
    if delivery.pace_interval_ms is not None:
        attributes["paced"] = _string(str(delivery.pace_interval_ms))
    return attributes


def delivery_body(delivery: WebhookDelivery) -> str:
    """What a delivery message's body says: the event's document while it travels with the delivery (for a 0.4
    delivery function during the update), else the ids, for people. The attempt reads none of it."""
    if delivery.document is not None:
        return delivery.document
    names = {"event_id": delivery.event_id, "post_id": delivery.post_id, "webhook_id": delivery.webhook_id}
    return json.dumps(names, separators=(",", ":"), sort_keys=True)


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
            post_id=attributes.get("post_id") or _post_of_04_body(body, attributes),
            pace_interval_ms=int(paced) if (paced := attributes.get("paced", "")).isdigit() else None,
            document=None if _names_only(body) else body,
        )
    except (KeyError, ValidationError) as error:
        raise ValueError(f"not a webhook delivery: {error}") from None


def _names_only(body: str) -> bool:
    """A body of ids (`delivery_body` without a document), not a document to carry on for a 0.4 function."""
    try:
        names = json.loads(body)
    except ValueError:
        return True
    return not isinstance(names, dict) or set(names) <= {"event_id", "post_id", "webhook_id"}


def _document_of(body: str, event_id: str | None) -> dict[str, Any] | None:
    """`body` as a JSON object when it is the document of `event_id`; None when it is not."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) and document.get("event_id") == event_id else None


def post_of_document(body: str, event_id: str | None) -> str | None:
    """The post of the event document `body` when it is the document of `event_id` (a fan-out message's body, a 0.4
    delivery's); None when it is not."""
    post_id = (_document_of(body, event_id) or {}).get("post_id")
    return post_id if isinstance(post_id, str) and post_id else None


def is_notice_document(body: str, event_id: str | None, event_type: str | None) -> bool:
    """`body` is the document of the notice `event_id` of `event_type` (a fan-out message for a notice: about no
    post, stored under its id alone)."""
    document = _document_of(body, event_id)
    return (
        document is not None
        and event_type in NOTICE_TYPES
        and document.get("event_type") == event_type
        and "post_id" not in document
    )


# shim: delivery-body-04 (docs/compatibility.md)
def _post_of_04_body(body: str, attributes: Mapping[str, str]) -> str | None:
    """0.4 queued a delivery with the event document as its body and no `post_id`: the body's post says where the
    event it names is stored. The attempt then signs the stored document, as for any delivery; the body itself is
    never signed. A 0.4 test delivery names nothing (0.4 stored no test event)."""
    if attributes.get("event_type") == TEST_EVENT_TYPE:
        return None
    return post_of_document(body, attributes.get("event_id"))


class SqsDeliveryQueue(DeliveryQueue):
    def __init__(self, client: SQSClient, queue_url: str, dead_letter_url: str, *, clock: Clock) -> None:
        self._client = client
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url
        self._clock = clock

    def send(self, deliveries: Sequence[WebhookDelivery]) -> list[int]:
        now = self._clock()
        starts = range(0, len(deliveries), BATCH_LIMIT)
        if len(starts) <= 1:
            return self._send_batch(deliveries, 0, now)
        # Many batches (a fan-out to many endpoints, a resend of thousands) go side by side: sent one after another,
        # a resend of 10,000 deliveries would take most of the API function's time.
        with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(starts)), thread_name_prefix="sqs-send") as pool:
            chunks = [(deliveries[first : first + BATCH_LIMIT], first) for first in starts]
            answers = pool.map(lambda chunk: self._send_batch(chunk[0], chunk[1], now), chunks)
            return sorted(position for refused in answers for position in refused)

    def _send_batch(self, chunk: Sequence[WebhookDelivery], start: int, now: datetime) -> list[int]:
        """One SendMessageBatch of at most BATCH_LIMIT deliveries; the positions (from `start`) SQS did not take."""
        entries = [
            {
                "Id": str(index),
                "MessageBody": delivery_body(delivery),
                "MessageAttributes": delivery_attributes(delivery),
                "DelaySeconds": min(MAX_DELAY_SECONDS, max(0, math.ceil((delivery.due_at - now).total_seconds()))),
            }
            for index, delivery in enumerate(chunk)
        ]
        try:
            answer = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as error:
            logger.warning("The webhook delivery queue refused a batch", extra={"error": type(error).__name__})
            return list(range(start, start + len(chunk)))
        # An entry's Id is its position in the chunk.
        return sorted(start + int(entry["Id"]) for entry in answer.get("Failed", []))

    def park(self, delivery: WebhookDelivery, reason: str) -> None:
        attributes = {
            **delivery_attributes(delivery),
            "reason": _string(reason),
            "parked_at": _string(format_ts(self._clock())),
        }
        try:
            self._client.send_message(
                QueueUrl=self._dead_letter_url, MessageBody=delivery_body(delivery), MessageAttributes=attributes
            )
        except (ClientError, BotoCoreError) as error:
            raise DeadLetterError(f"the webhook dead-letter queue refused a delivery: {type(error).__name__}") from None
