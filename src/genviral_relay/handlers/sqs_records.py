"""The SQS records Lambda hands the queue-triggered functions, read into the use cases' items: what is none
is poison (its message id answered apart; SQS moves it to the queue's DLQ after a few receives)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from genviral_relay.aws.webhook_queues import delivery_from, is_notice_document, post_of_document
from genviral_relay.aws.work_queue import CORRELATION_ATTRIBUTE
from genviral_relay.models.messages import WORK_MESSAGE
from genviral_relay.observability import logger
from genviral_relay.webhooks.attempts import DeliveryItem
from genviral_relay.webhooks.fanout import FanoutItem

if TYPE_CHECKING:  # the worker's items: the webhook functions, which share this module, never import the check path
    from genviral_relay.polling.work_batch import WorkItem


def record_attributes(record: Mapping[str, Any]) -> dict[str, str]:
    """The message attributes of an SQS record as Lambda passes it, by name."""
    return {
        name: str(value.get("stringValue") or "") for name, value in (record.get("messageAttributes") or {}).items()
    }


def correlation_id_of(record: Mapping[str, Any]) -> str:
    """The correlation id of a work queue record: the queuing tick's, else the message's own id."""
    return record_attributes(record).get(CORRELATION_ATTRIBUTE) or str(record["messageId"])


def parse_work(records: Sequence[Mapping[str, Any]]) -> tuple[list[WorkItem], list[str]]:
    """(the work items, ids of poison messages)."""
    from genviral_relay.polling.work_batch import WorkItem

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
    return items, poison


def parse_deliveries(records: Sequence[Mapping[str, Any]]) -> tuple[list[DeliveryItem], list[str]]:
    """(the webhook deliveries, ids of messages that are none)."""
    items: list[DeliveryItem] = []
    poison: list[str] = []
    for record in records:
        try:
            items.append(DeliveryItem(record["messageId"], delivery_from(record["body"], record_attributes(record))))
        except ValueError as error:
            logger.error("Not a webhook delivery", extra={"message_id": record["messageId"], "problem": str(error)})
            poison.append(record["messageId"])
    return items, poison


def parse_fanout(records: Sequence[Mapping[str, Any]]) -> tuple[list[FanoutItem], list[str]]:
    """(the events to fan out, ids of messages that are none). The body is read for routing only (its post names
    where the event is stored; a notice names none); what is signed is the stored document."""
    items: list[FanoutItem] = []
    poison: list[str] = []
    for record in records:
        attributes = record_attributes(record)
        event_id, event_type = attributes.get("event_id"), attributes.get("event_type")
        post_id = post_of_document(record["body"], event_id)
        if event_id and event_type and (post_id or is_notice_document(record["body"], event_id, event_type)):
            items.append(FanoutItem(record["messageId"], event_id, event_type, post_id, record["body"]))
        else:
            logger.error("Not an event for the webhooks", extra={"message_id": record["messageId"]})
            poison.append(record["messageId"])
    return items, poison
