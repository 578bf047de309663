"""What a delivery may sign: the document the relay stored for the event its message names, never a body from the
message (anyone allowed to send to the queue could otherwise have any body signed)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from genviral_relay.clock import parse_ts
from genviral_relay.models.events import published_document
from genviral_relay.models.webhook_documents import NOTICE_TYPES, WebhookDocument
from genviral_relay.models.webhooks import WebhookDelivery, WebhookEndpoint, test_event_document
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.webhooks.delivery_records import log_keys
from genviral_relay.webhooks.ports import StoredEvents

NOT_STORED = "no stored event is as it names it"


@dataclass(frozen=True)
class SignedDocument:
    body: bytes
    """As endpoints receive it."""
    event: WebhookDocument | None
    """The stored event or notice (its filter is checked on it); None for a test event."""


class SignedDocuments:
    def __init__(self, events: StoredEvents) -> None:
        self._events = events

    def of(self, delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> SignedDocument | None:
        """The stored document the message names (under its post; a notice, which names none, under its id); None
        (the message rejected, counted) when it names none, one whose type is not the message's, or one its endpoint
        does not take."""
        if not (delivery.is_test or endpoint.accepts(delivery.event_type)):  # a test event is stored for its endpoint
            return self._rejected(delivery, "its endpoint does not take this event type")
        if delivery.is_test:
            body = _test_body(delivery, self._events.test_event(delivery.webhook_id, delivery.event_id))
            return SignedDocument(body, None) if body is not None else self._rejected(delivery, NOT_STORED)
        event: WebhookDocument | None = None
        if delivery.post_id is not None:
            event = self._events.relay_event(delivery.post_id, delivery.event_id)
        elif delivery.event_type in NOTICE_TYPES:  # a notice is about no post: stored under its id alone
            event = self._events.notice(delivery.event_id)
        if event is not None and (event.event_id, event.event_type) == (delivery.event_id, delivery.event_type):
            return SignedDocument(published_document(event), event)
        return self._rejected(delivery, NOT_STORED)

    @staticmethod
    def _rejected(delivery: WebhookDelivery, why: str) -> None:
        """A message the relay did not make: it names no stored event, or one its endpoint does not take."""
        emit(Metric.WEBHOOK_MESSAGES_REJECTED)
        logger.warning(
            "Webhook message names no stored event; dropped unsigned", extra={**log_keys(delivery), "why": why}
        )


def _test_body(delivery: WebhookDelivery, stored: str | None) -> bytes | None:
    """A stored test event is signed only as the relay writes one (`test_event_document`): whoever could write the
    item can choose its moment, not one word of what is signed."""
    try:
        detected_at = json.loads(stored)["detected_at"] if stored is not None else None
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(detected_at, str) or parse_ts(detected_at) is None:
        return None
    rendered = test_event_document(delivery.webhook_id, delivery.event_id, detected_at)
    return rendered.encode() if rendered == stored else None
