"""In-memory doubles of the event feed, the delivery log and the pacer, held to the DynamoDB adapters by their
contract tests (tests/functional/test_event_log_contract.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from genviral_relay.checking.ports import PublishFailure, PublishResult
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.event_log import (
    ATTEMPTS_READ_AT_MOST,
    AttemptEntry,
    AttemptOutcome,
    AttemptPage,
    DeliveryState,
    FeedEntry,
    FeedPage,
)
from genviral_relay.models.events import PublishedEvent
from genviral_relay.models.workspaces import workspace_of
from genviral_relay.rules.event_feed import end_of
from genviral_relay.rules.pacing import pace_interval_ms
from genviral_relay.webhooks.ports import DeliveryLog, DeliveryPacer, NoticePublisher


class InMemoryEventLog(EventLog):
    """The feed as a dict of positions; `page` reads it as the adapter queries its key range."""

    def __init__(self) -> None:
        self.entries: dict[str, FeedEntry] = {}
        self._lock = threading.Lock()

    def append(self, entries: Sequence[FeedEntry]) -> None:
        with self._lock:
            for entry in entries:
                self.entries[entry.position] = entry

    def page(
        self,
        *,
        after: str | None,
        until: datetime,
        limit: int,
        event_type: str | None = None,
        post_id: str | None = None,
        workspace: str | None = None,
    ) -> FeedPage:
        bound = end_of(until)
        with self._lock:
            positions = sorted(p for p in self.entries if (after is None or p > after) and p <= bound)
            found: list[FeedEntry] = []
            for position in positions:
                entry = self.entries[position]
                if (
                    (event_type is None or entry.event_type == event_type)
                    and (post_id is None or entry.post_id == post_id)
                    and (workspace is None or workspace_of(entry.workspace) == workspace)
                ):
                    found.append(entry)
                    if len(found) == limit:
                        return FeedPage(entries=found, reached=position)
            return FeedPage(entries=found, reached=bound)  # read through to `until`, as the adapter does

    def entry(self, event_id: str) -> FeedEntry | None:
        with self._lock:
            matching = sorted((e for e in self.entries.values() if e.event_id == event_id), key=lambda e: e.position)
        return matching[0] if matching else None

    def between(self, since: datetime, until: datetime) -> Iterator[FeedEntry]:
        with self._lock:
            chosen = sorted(
                (e for e in self.entries.values() if since <= e.committed_at < until), key=lambda e: e.position
            )
        yield from chosen


class InMemoryDeliveryLog(DeliveryLog):
    def __init__(self) -> None:
        self.states: dict[tuple[str, str], DeliveryState] = {}
        self.log: dict[str, dict[str, AttemptEntry]] = {}
        self._lock = threading.Lock()

    def record_attempt(self, attempt: AttemptEntry, state: DeliveryState) -> None:
        with self._lock:
            self.log.setdefault(attempt.webhook_id, {})[attempt.position] = attempt
            self.states[(state.event_id, state.webhook_id)] = state

    def record_states(self, states: Sequence[DeliveryState]) -> None:
        with self._lock:
            for state in states:
                self.states[(state.event_id, state.webhook_id)] = state

    def deliveries(self, event_id: str) -> list[DeliveryState]:
        with self._lock:
            return sorted((s for (e, _), s in self.states.items() if e == event_id), key=lambda s: s.webhook_id)

    def attempts(
        self, webhook_id: str, *, before: str | None, limit: int, outcome: AttemptOutcome | None = None
    ) -> AttemptPage:
        with self._lock:
            log = self.log.get(webhook_id, {})
            positions = sorted((p for p in log if before is None or p < before), reverse=True)
            found: list[AttemptEntry] = []
            for read, position in enumerate(positions, start=1):
                if outcome is None or log[position].outcome == outcome:
                    found.append(log[position])
                if len(found) == limit or read == ATTEMPTS_READ_AT_MOST:  # as far as one read of the table goes
                    return AttemptPage(entries=found, reached=position)
            return AttemptPage(entries=found, reached=None)  # nothing older


class InMemoryPacer(DeliveryPacer):
    """Slots one after another per endpoint, as the DynamoDB pacer reserves them."""

    def __init__(self) -> None:
        self.next_slot: dict[str, tuple[datetime, int]] = {}
        """Per endpoint: the next free slot and the interval it was reserved at."""
        self._lock = threading.Lock()

    def reserve(self, webhook_id: str, rate_limit: float, now: datetime) -> datetime:
        interval = pace_interval_ms(rate_limit)
        with self._lock:
            held, at = self.next_slot.get(webhook_id, (now, interval))
            slot = max(held, now) if at == interval else now  # another rate: its slots are not waited for
            self.next_slot[webhook_id] = (slot + timedelta(milliseconds=interval), interval)
            return slot


class RecordingNotices(NoticePublisher):
    """A topic or bus that keeps the notices published to it; `failing`: refuses each (a target down)."""

    def __init__(self, target: str = "sns") -> None:
        self.target = target  # type: ignore[assignment]
        self.published: list[PublishedEvent] = []
        self.failing = False

    def publish(self, events: Sequence[PublishedEvent]) -> PublishResult:
        if self.failing:
            return PublishResult(failed={e.event_id: PublishFailure("target down", True) for e in events})
        self.published.extend(events)
        return PublishResult(published={event.event_id for event in events})
