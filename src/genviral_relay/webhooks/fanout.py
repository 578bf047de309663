"""The fan-out: one delivery per event and endpoint that takes its type (the dispatcher function)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genviral_relay.clock import Clock
from genviral_relay.models.webhooks import (
    WebhookDelivery,
)
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.webhooks.ports import DeliveryQueue, WebhookStore


@dataclass(frozen=True)
class FanoutItem:
    """One event from the fan-out queue: what routes it. Its deliveries name it; the delivery function signs the
    document stored under `post_id`, not this message's body."""

    message_id: str
    event_id: str
    event_type: str
    post_id: str | None
    document: str | None = None
    """The message's body, passed on as its deliveries' bodies for one release (`delivery-body-04`)."""


class WebhookFanout:
    """One delivery per event and endpoint that takes its type."""

    def __init__(self, *, store: WebhookStore, queue: DeliveryQueue, clock: Clock) -> None:
        self._store = store
        self._queue = queue
        self._clock = clock

    def run(self, items: Sequence[FanoutItem]) -> list[str]:
        """Queue the deliveries of every item; answer the message ids to receive again (some delivery of theirs
        was not queued: all of the event's are queued again then, and receivers dedupe on `webhook-id`)."""
        if not items:
            return []
        endpoints = self._store.endpoints()  # once per batch, however many events it holds
        now = self._clock()
        deliveries: list[tuple[str, WebhookDelivery]] = [
            (
                item.message_id,
                WebhookDelivery(
                    webhook_id=endpoint.id,
                    event_id=item.event_id,
                    event_type=item.event_type,
                    attempt=1,
                    due_at=now,
                    post_id=item.post_id,
                    document=item.document,
                ),
            )
            for item in items
            for endpoint in endpoints
            if endpoint.accepts(item.event_type)
        ]
        if not deliveries:
            return []
        refused = set(self._queue.send([delivery for _, delivery in deliveries]))
        failed = sorted({deliveries[position][0] for position in refused})
        emit(Metric.WEBHOOK_DELIVERIES_QUEUED, len(deliveries) - len(refused))
        if failed:
            logger.warning(
                "Some webhook deliveries could not be queued; their events come back", extra={"events": len(failed)}
            )
        return failed
