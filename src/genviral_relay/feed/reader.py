"""Reading the event feed: its pages for a consumer following `next`, and one event's story (its deliveries to
each endpoint) for an operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from genviral_relay.clock import Clock, format_ts
from genviral_relay.errors import CursorExpiredError, EventNotFoundError
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.event_log import DeliveryState, FeedEntry
from genviral_relay.models.webhook_documents import WebhookDocument, parse_webhook_document_or_none
from genviral_relay.models.webhooks import WebhookEndpoint
from genviral_relay.rules.cursors import decode_cursor, encode_cursor
from genviral_relay.rules.event_feed import FEED_SCOPE, POSITION, end_of, horizon, position_moment
from genviral_relay.rules.webhook_filters import passes
from genviral_relay.webhooks.ports import DeliveryLog, WebhookStore


@dataclass(frozen=True)
class FeedSlice:
    """One page as the API answers it: the entries, and the cursor to pass back (always one)."""

    entries: list[FeedEntry]
    next: str


@dataclass(frozen=True)
class EventStory:
    entry: FeedEntry
    deliveries: list[DeliveryState]


class EventFeed:
    def __init__(
        self,
        *,
        log: EventLog,
        deliveries: DeliveryLog,
        webhooks: WebhookStore,
        clock: Clock,
        event_retention: timedelta,
    ) -> None:
        """`event_retention`: how long entries are kept (`events_kept_for`): an older cursor may have lost some."""
        self._log = log
        self._deliveries = deliveries
        self._webhooks = webhooks
        self._clock = clock
        self._retention = event_retention

    def page(
        self,
        *,
        after: str | None,
        limit: int,
        event_type: str | None = None,
        post_id: str | None = None,
        workspace: str | None = None,
    ) -> FeedSlice:
        """Up to `limit` entries after the cursor `after` (None: the oldest kept), committed FEED_SETTLE ago or
        more; `next` is the last entry's position when the page is full, else how far the read went (the horizon
        once it read everything up to it). CursorError: not a feed cursor; CursorExpiredError: older than kept."""
        now = self._clock()
        position = decode_cursor(FEED_SCOPE, after, POSITION) if after is not None else None
        oldest = now - self._retention
        if position is not None and position_moment(position) < oldest:
            raise CursorExpiredError(format_ts(oldest))
        until = horizon(now)
        found = self._log.page(
            after=position, until=until, limit=limit, event_type=event_type, post_id=post_id, workspace=workspace
        )
        reached = found.reached or position or end_of(until)
        return FeedSlice(entries=found.entries, next=encode_cursor(FEED_SCOPE, reached))

    def story(self, event_id: str) -> EventStory:
        """The event's document and its delivery to each endpoint: the recorded ones, and `queued` for each
        endpoint that takes it and has no record yet. EventNotFoundError: the feed keeps no such event."""
        entry = self._log.entry(event_id)
        if entry is None:
            raise EventNotFoundError(event_id)
        recorded = self._deliveries.deliveries(event_id)
        known = {state.webhook_id for state in recorded}
        # None: a document no endpoint subscribes to (a disabling); a notice is read as an event about a post is
        event = parse_webhook_document_or_none(entry.document)
        queued: list[DeliveryState] = []
        if event is not None:  # no endpoint is read for one
            queued = [
                DeliveryState(webhook_id=endpoint.id, event_id=event_id, state="queued")
                for endpoint in self._webhooks.endpoints()
                if endpoint.id not in known and _takes(endpoint, event, entry.committed_at)
            ]
        return EventStory(entry=entry, deliveries=sorted([*recorded, *queued], key=lambda state: state.webhook_id))


def _takes(endpoint: WebhookEndpoint, event: WebhookDocument, committed_at: datetime) -> bool:
    """Whether the fan-out gives the event to this endpoint as it is now: on, of its types and filter, and
    registered before the event was committed (a later one never gets it)."""
    return (
        endpoint.enabled
        and endpoint.created_at <= committed_at
        and endpoint.accepts(event.event_type)
        and passes(endpoint.filter, event)
    )
