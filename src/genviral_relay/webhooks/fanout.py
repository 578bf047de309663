"""The fan-out: one delivery per event and endpoint that takes it (the dispatcher function). An endpoint that is
disabled gets none, nor one its filter leaves out: each is recorded (`disabled`, `filtered`) in the delivery log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genviral_relay.clock import Clock
from genviral_relay.models.event_log import DeliveryState, DeliveryStateName
from genviral_relay.models.webhook_documents import WebhookDocument, parse_webhook_document_or_none
from genviral_relay.models.webhooks import WebhookDelivery, WebhookEndpoint
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.rules.webhook_filters import passes
from genviral_relay.webhooks.ports import DeliveryLog, DeliveryQueue, WebhookStore


@dataclass(frozen=True)
class FanoutItem:
    """One event from the fan-out queue: what routes it. Its deliveries name it; the delivery function signs the
    document stored under `post_id` (a notice's, None: under its id), not this message's body."""

    message_id: str
    event_id: str
    event_type: str
    post_id: str | None
    document: str | None = None
    """The message's body, passed on as its deliveries' bodies for one release (`delivery-body-04`)."""


class WebhookFanout:
    """One delivery per event and endpoint that takes it."""

    def __init__(self, *, store: WebhookStore, queue: DeliveryQueue, log: DeliveryLog, clock: Clock) -> None:
        self._store = store
        self._queue = queue
        self._log = log
        self._clock = clock

    def run(self, items: Sequence[FanoutItem]) -> list[str]:
        """Queue the deliveries of every item; answer the message ids to receive again (some delivery of theirs
        was not queued: all of the event's are queued again then, and receivers dedupe on `webhook-id`)."""
        if not items:
            return []
        endpoints = self._store.endpoints()  # once per batch, however many events it holds
        now = self._clock()
        deliveries: list[tuple[str, WebhookDelivery]] = []
        skipped: list[DeliveryState] = []
        filtering = any(endpoint.filter for endpoint in endpoints)
        for item in items:
            # What a filter reads: the message's body; None (none, or not one this release reads) leaves the filter
            # to the attempt, which checks it again on the stored event.
            event = parse_webhook_document_or_none(item.document) if filtering else None
            for endpoint in endpoints:
                if not endpoint.accepts(item.event_type):
                    continue
                left_out = _left_out(endpoint, event)
                if left_out is not None:
                    skipped.append(DeliveryState(webhook_id=endpoint.id, event_id=item.event_id, state=left_out))
                    continue
                delivery = WebhookDelivery(
                    webhook_id=endpoint.id,
                    event_id=item.event_id,
                    event_type=item.event_type,
                    attempt=1,
                    due_at=now,
                    post_id=item.post_id,
                    document=item.document,
                )
                deliveries.append((item.message_id, delivery))
        self._record(skipped)
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

    def _record(self, states: list[DeliveryState]) -> None:
        """One write for the batch. A record that cannot be written is logged, never fails the fan-out: the
        deliveries are what counts, and an event's story derives nothing from a missing record but `queued`."""
        if not states:
            return
        try:
            self._log.record_states(states)
        except Exception:  # the log is for people; the deliveries stand
            logger.exception("Could not record the fan-out's delivery states", extra={"states": len(states)})


def _left_out(endpoint: WebhookEndpoint, event: WebhookDocument | None) -> DeliveryStateName | None:
    """Why the endpoint gets no delivery of this event (a type it takes): `disabled`, `filtered`; None: it gets one."""
    if not endpoint.enabled:
        return "disabled"
    if endpoint.filter is not None and event is not None and not passes(endpoint.filter, event):
        return "filtered"
    return None
