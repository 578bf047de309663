"""Appending to the feed at a fresh position, again while the append answers too late (`rules/event_feed.py`):
what a slow commit does before the check goes on, and what the outbox does for an event it had to read back."""

from __future__ import annotations

from collections.abc import Sequence

from genviral_relay.clock import Clock
from genviral_relay.errors import FeedLateError
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.event_log import FeedEntry
from genviral_relay.observability import logger
from genviral_relay.rules.event_feed import APPEND_ROUNDS, in_time, restamped


def append_in_time(log: EventLog, entries: Sequence[FeedEntry], clock: Clock) -> None:
    """Put `entries` at a fresh position, stamped now, and again while an append answers later than COMMIT_WINDOW;
    FeedLateError after APPEND_ROUNDS late answers (the caller's outbox entry then stays, and a later check appends
    them). Each position is at least once: a reader may meet an event at several."""
    if not entries:
        return
    for _ in range(APPEND_ROUNDS):
        stamped_at = clock()
        log.append(restamped(entries, stamped_at))
        if in_time(stamped_at, clock()):
            return
        logger.warning(
            "Feed append answered late; appending again", extra={"event_ids": sorted(e.event_id for e in entries)}
        )
    raise FeedLateError(f"{len(entries)} feed entries answered late {APPEND_ROUNDS} times")
