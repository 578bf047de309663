"""Appending to the feed at a fresh position, again while the append answers too late (`rules/event_feed.py`):
what a slow commit does before the check goes on, and what the outbox does for an event it had to read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from genviral_relay.clock import Clock
from genviral_relay.errors import FeedLateError
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.event_log import FeedEntry
from genviral_relay.observability import logger
from genviral_relay.rules.event_feed import APPEND_ROUNDS, in_time, restamped


def appended_after_commit(log: EventLog, entries: Sequence[FeedEntry], committed_at: datetime, clock: Clock) -> bool:
    """After a commit that wrote `entries` stamped `committed_at`: appended again when the commit answered late.
    False when that append failed: the commit stands (never an error for it), and the caller's outbox appends them."""
    if not entries or in_time(committed_at, clock()):
        return True
    try:
        append_in_time(log, entries, clock)  # a reader may have passed the first position
    except Exception:
        logger.exception(
            "Feed append after a late commit failed; the outbox appends the events",
            extra={"event_ids": sorted(e.event_id for e in entries)},
        )
        return False
    return True


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
