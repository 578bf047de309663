"""Resending events to one endpoint: one event, everything committed in a time range (an outage), or what it missed
while disabled (`enable` with `resend_missed`). Read from the feed (`EventLog`), a notice about an account or the
relay as an event about a post, queued as attempt 1 due now: the delivery function signs the stored document, so the
receiver gets the same `webhook-id` and body with a fresh timestamp and signature, and the whole retry schedule."""

from __future__ import annotations

from datetime import datetime, timedelta

from genviral_relay.clock import Clock, format_ts
from genviral_relay.errors import EnqueueError, EventNotFoundError, ResendRefusedError, WebhookDisabledError
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.event_log import FeedEntry
from genviral_relay.models.webhook_documents import SUBSCRIBABLE_TYPES, parse_webhook_document_or_none
from genviral_relay.models.webhooks import WebhookDelivery, WebhookEndpoint
from genviral_relay.observability import logger
from genviral_relay.rules.webhook_filters import passes
from genviral_relay.rules.webhook_retries import RETRY_DELAYS
from genviral_relay.webhooks.ports import DeliveryQueue

RESEND_LIMIT = 10_000
"""Deliveries one resend queues at most (a wider one is refused, before anything is queued)."""
RESEND_SCAN_LIMIT = 50_000
"""Feed entries one resend reads at most, of every type (a selective endpoint's range may hold far more than it
takes): a wider range is refused rather than outrun the API function's time."""
RETRY_SPAN = sum(RETRY_DELAYS, timedelta())
"""How long a delivery's retries run: a retry pending when the endpoint was turned off is dropped unsent at its
turn, and its event was committed at most this long before."""


class WebhookResend:
    def __init__(
        self,
        *,
        feed: EventLog,
        queue: DeliveryQueue,
        clock: Clock,
        event_retention: timedelta,
        limit: int = RESEND_LIMIT,
        scan_limit: int = RESEND_SCAN_LIMIT,
    ) -> None:
        self._feed = feed
        self._queue = queue
        self._clock = clock
        self._retention = event_retention
        self._limit = limit
        self._scan_limit = scan_limit

    def one(self, endpoint: WebhookEndpoint, event_id: str) -> int:
        """Queue one event again; EventNotFoundError when the feed keeps none, ResendRefusedError when the endpoint
        does not take it (saying why)."""
        _enabled(endpoint)
        entry = self._feed.entry(event_id)
        if entry is None:
            raise EventNotFoundError(event_id)
        refusal = _refusal(endpoint, entry)
        if refusal is not None:
            raise ResendRefusedError(f"event {event_id} is not for endpoint {endpoint.id}: {refusal}")
        return self.queue(endpoint, [self._delivery(endpoint, entry)])

    def between(self, endpoint: WebhookEndpoint, since: datetime, until: datetime | None) -> int:
        """Queue every event the endpoint takes committed from `since` to `until` (None: now)."""
        _enabled(endpoint)
        return self.queue(endpoint, self.planned(endpoint, since, until))

    def missed_since(self, endpoint: WebhookEndpoint) -> datetime | None:
        """Where what a disabled endpoint missed begins: when it began failing, or the retry span before it was
        disabled if earlier (a retry pending then was dropped unsent, even when a later success cleared the failing
        clock), within the retention. None for an endpoint that is on."""
        if endpoint.enabled or endpoint.disabled_at is None:
            return None
        since = endpoint.disabled_at - RETRY_SPAN
        if endpoint.health.failing_since is not None:
            since = min(since, endpoint.health.failing_since)
        return max(since, self._clock() - self._retention)

    def missed(self, endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
        """What a disabled endpoint missed: every event it takes since `missed_since`, not queued yet."""
        since = self.missed_since(endpoint)
        return [] if since is None else self.planned(endpoint, since, None, kept_only=True)

    def planned(
        self, endpoint: WebhookEndpoint, since: datetime, until: datetime | None, *, kept_only: bool = False
    ) -> list[WebhookDelivery]:
        """The deliveries of a range, one per event (an event at two positions once); ResendRefusedError when the
        range holds more than the limit, or more feed entries than the scan limit, or reaches past the retention
        (`kept_only`: what is kept of it is resent instead)."""
        now = self._clock()
        until = min(until, now) if until is not None else now
        oldest = now - self._retention
        if kept_only:
            since = max(since, oldest)
        if since < oldest:
            raise ResendRefusedError(
                f"since ({format_ts(since)}) is older than the retention: events are kept "
                f"{self._retention.days} days, since {format_ts(oldest)} at the earliest"
            )
        if since > until:
            raise ResendRefusedError(f"since ({format_ts(since)}) is later than until ({format_ts(until)})")
        chosen: dict[str, WebhookDelivery] = {}
        for scanned, entry in enumerate(self._feed.between(since, until), start=1):
            if scanned > self._scan_limit:
                raise ResendRefusedError(
                    f"more than {self._scan_limit} events were committed between {format_ts(since)} and "
                    f"{format_ts(until)}; narrow since/until and resend the rest in further calls"
                )
            if entry.event_id in chosen or _refusal(endpoint, entry) is not None:
                continue
            chosen[entry.event_id] = self._delivery(endpoint, entry)
            if len(chosen) > self._limit:
                raise ResendRefusedError(
                    f"more than {self._limit} deliveries between {format_ts(since)} and {format_ts(until)}; "
                    "narrow since/until and resend the rest in further calls"
                )
        return list(chosen.values())

    def queue(self, endpoint: WebhookEndpoint, deliveries: list[WebhookDelivery]) -> int:
        """Queue the deliveries; EnqueueError when SQS refused some (resending again is safe: receivers dedupe on
        `webhook-id`)."""
        if not deliveries:
            return 0
        refused = self._queue.send(deliveries)
        logger.info(
            "Webhook deliveries resent",
            extra={"webhook_id": endpoint.id, "queued": len(deliveries) - len(refused), "refused": len(refused)},
        )
        if refused:
            raise EnqueueError(f"{len(refused)} of {len(deliveries)} resent deliveries were not queued")
        return len(deliveries)

    def _delivery(self, endpoint: WebhookEndpoint, entry: FeedEntry) -> WebhookDelivery:
        return WebhookDelivery(
            webhook_id=endpoint.id,
            event_id=entry.event_id,
            event_type=entry.event_type,
            attempt=1,
            due_at=self._clock(),
            post_id=entry.post_id,
            document=entry.document,  # what a 0.4 delivery function still running sends (`delivery-body-04`)
        )


def _enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise WebhookDisabledError(endpoint.id)


def _refusal(endpoint: WebhookEndpoint, entry: FeedEntry) -> str | None:
    """Why the endpoint does not take this event; None when it does."""
    if entry.event_type not in SUBSCRIBABLE_TYPES:  # an endpoint's disabling: no endpoint subscribes to it
        return f"a {entry.event_type} document is not delivered to webhooks"
    if not endpoint.accepts(entry.event_type):
        return f"it is a {entry.event_type} event and the endpoint takes {', '.join(endpoint.event_types or ())}"
    if endpoint.filter is not None and not _passes(endpoint, entry):
        return "the endpoint's filter leaves it out"
    return None


def _passes(endpoint: WebhookEndpoint, entry: FeedEntry) -> bool:
    event = parse_webhook_document_or_none(entry.document)  # None: not one this release reads; the attempt decides
    return event is None or passes(endpoint.filter, event)
