"""Backpressure: when the work queue already holds more than a tick's work, queue no more than the
fleet checks in a tick, the most overdue posts first.

Queueing more than the workers can take only lengthens the queue: every post waits longer, and a post
due later waits behind all of it. So the poller measures the fleet's pace (how many messages left the
queue between two ticks while it never ran empty) and, while a backlog is known, tops the queue up to
one tick of work. The rest stay due and are queued by the next ticks, those that waited longest first:
posts this poller never queued (or longest ago), then by how long they have been due.

What it learns lives in the poller's memory (one execution environment; the scheduler invokes the
same warm one tick after tick). A fresh one knows no pace and queues everything due, as the relay
always did; duplicates that causes cost no Genviral call (`polling/in_flight.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from genviral_relay.models.domain import DueWatch

NEVER = datetime.min.replace(tzinfo=UTC)


DueGroup = tuple[DueWatch, ...]
"""What one message asks for: one post's check, or the posts one list call refreshes (`polling/bulk_refresh.py`)."""


@dataclass(frozen=True)
class TickPlan:
    queue: list[tuple[DueGroup, datetime]]
    """The groups to queue now, each with the moment the poller first wanted any of its checks."""
    deferred: int
    """Due posts left for the next ticks."""
    longest_wait: timedelta
    """How long the longest-deferred due post has been waiting (zero when none is)."""


@dataclass
class Backpressure:
    """The pace of the fleet as one poller measured it, and what it queued (see the module)."""

    tick: timedelta = timedelta(minutes=1)
    minimum: int = 10
    """Never fewer than this per tick (one worker batch): the queue keeps moving while the pace is low."""
    capacity: float | None = None
    """Messages the fleet took in a tick with work waiting all along; None until measured."""
    _last: tuple[datetime, int] | None = None
    _queued_at: dict[str, datetime] = field(default_factory=dict)
    _waiting_since: dict[str, datetime] = field(default_factory=dict)

    def plan(self, groups: list[DueGroup], backlog: int | None, now: datetime) -> TickPlan:
        """Which of the due `groups` to queue while the queue holds `backlog` messages (None: unknown)."""
        self._measure(backlog, now)
        current = {watch.post_id for group in groups for watch in group}
        for remembered in (self._queued_at, self._waiting_since):
            for post_id in [post_id for post_id in remembered if post_id not in current]:
                del remembered[post_id]
        order = sorted(
            groups, key=lambda group: min((self._queued_at.get(w.post_id, NEVER), w.next_check_at) for w in group)
        )
        room = len(order)
        if self.capacity is not None and backlog is not None:
            room = max(0, min(len(order), max(self.minimum, int(self.capacity)) - backlog))
        queue: list[tuple[DueGroup, datetime]] = []
        for group in order[:room]:
            since = [self._waiting_since.pop(watch.post_id, now) for watch in group]
            queue.append((group, min(since)))
            for watch in group:
                self._queued_at[watch.post_id] = now
        for group in order[room:]:
            for watch in group:
                self._waiting_since.setdefault(watch.post_id, now)
        longest = max((now - since for since in self._waiting_since.values()), default=timedelta(0))
        deferred = sum(len(group) for group in order[room:])
        return TickPlan(queue=queue, deferred=deferred, longest_wait=longest)

    def queued(self, now: datetime, backlog: int | None, count: int) -> None:
        """The tick at `now` queued `count` messages onto `backlog` (None: unknown)."""
        self._last = (now, backlog + count) if backlog is not None else None

    def _measure(self, backlog: int | None, now: datetime) -> None:
        if self._last is None or backlog is None:
            return
        at, expected = self._last
        if now <= at:
            return
        drained = max(0, expected - backlog) * (self.tick / (now - at))  # per tick, should one have been missed
        if backlog >= self.minimum:
            # Work waited the whole interval: what left the queue is what the fleet can do in a tick.
            self.capacity = float(max(self.minimum, drained))
        elif self.capacity is not None:
            # The fleet kept up with all of it: allow more, or a pace measured in a slow hour would stick.
            self.capacity = max(self.capacity, 2.0 * drained)
