"""The event feed's rule: where a published document sits in the feed, and what a reader may be served.

The guarantee (docs/feed.md): a reader is served only entries committed at least FEED_SETTLE ago, and a writer whose
commit took longer than COMMIT_WINDOW (by its own clock) appends the events again at a fresh position before going
on. An entry whose commit landed within COMMIT_WINDOW is visible before any reader's horizon passes it (the 5 s left
over absorb the clocks' skew); one that landed later is found again at its fresh position. So a consumer following
`next` misses nothing, and may see an event twice (it dedupes on `event_id`, as on every channel)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from genviral_relay.clock import format_ts, parse_ts, to_milliseconds
from genviral_relay.models.event_log import FeedEntry
from genviral_relay.models.events import EventType, PublishedEvent, RelayEvent, published_document
from genviral_relay.models.published import WorkspaceEvent
from genviral_relay.models.relay_notices import NoticeType
from genviral_relay.models.workspaces import stored_workspace

FEED_SETTLE = timedelta(seconds=10)
"""How old an entry's commit stamp must be before a reader is served it."""
COMMIT_WINDOW = timedelta(seconds=5)
"""The longest commit (stamp to answer, by the writer's clock) whose entries need no second position."""
APPEND_ROUNDS = 3
"""Appends in a row a writer tries before it gives up and leaves the events to its outbox (a late answer each time)."""
FEED_SCOPE = "feed"
"""The feed's cursor scope (`rules/cursors.py`)."""
PAGE_LIMIT = 100
"""The most entries one page holds, of the feed and of an endpoint's attempt log alike."""
FeedEventType = Literal[EventType, NoticeType, "webhook.endpoint.disabled"]
"""What the feed holds: every published type, the endpoints' disabling among them (the test event is sent to one
endpoint, never published)."""
FEED_EVENT_TYPES: tuple[str, ...] = get_args(FeedEventType)
END_OF_MOMENT = "~"
"""Sorts after every event id: `<ts>#~` is the position just after everything stamped at `ts`."""
POSITION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z#(?:[0-9a-f-]{36}|~)")
"""A feed position as cursors carry it: an entry's, or the end of a moment (a horizon, a day read through)."""
DAY_PREFIX = "FEED#"


def feed_entries(events: Sequence[PublishedEvent], committed_at: datetime) -> list[FeedEntry]:
    """The feed entries of events committed together: one position each, at the commit's stamp (milliseconds, the
    precision a position keeps)."""
    stamp = to_milliseconds(committed_at)
    return [
        FeedEntry(
            committed_at=stamp,
            event_id=event.event_id,
            event_type=event.event_type,
            post_id=event.post_id if isinstance(event, RelayEvent) else None,
            workspace=stored_workspace(event.workspace) if isinstance(event, WorkspaceEvent) else None,
            document=published_document(event).decode(),
        )
        for event in events
    ]


def restamped(entries: Sequence[FeedEntry], committed_at: datetime) -> list[FeedEntry]:
    """The same entries at a fresh position."""
    stamp = to_milliseconds(committed_at)
    return [entry.model_copy(update={"committed_at": stamp}) for entry in entries]


def in_time(committed_at: datetime, answered_at: datetime) -> bool:
    """Whether a commit stamped `committed_at` and answered at `answered_at` is visible to every reader it must be."""
    return answered_at - committed_at <= COMMIT_WINDOW


def horizon(now: datetime) -> datetime:
    """The newest commit stamp a reader is served at `now`."""
    return now - FEED_SETTLE


def end_of(moment: datetime) -> str:
    """The position just after every entry stamped at `moment` (its millisecond)."""
    return f"{format_ts(moment)}#{END_OF_MOMENT}"


def position_moment(position: str) -> datetime:
    """The commit stamp a position names (positions are checked against POSITION before they get here)."""
    moment = parse_ts(position.partition("#")[0])
    if moment is None:
        raise ValueError(f"not a feed position: {position!r}")
    return moment


def day_partition(moment: datetime) -> str:
    """The partition of the entries stamped on `moment`'s UTC day."""
    return DAY_PREFIX + moment.astimezone(UTC).strftime("%Y-%m-%d")


def days(first: datetime, last: datetime) -> list[datetime]:
    """Midnight (UTC) of every day from `first`'s to `last`'s, in order."""
    day = first.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    while day <= last:
        found.append(day)
        day += timedelta(days=1)
    return found
