"""An in-memory `WatchStore` with the DynamoDB store's semantics, counting the DynamoDB calls the
real store would make for the same work.

The benchmark simulates a week of ticks, which moto's index queries (a scan per query) cannot do
in reasonable time; the contract tests run the same cases against both stores, including the
call counts, so the figures it prints are the real store's.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from genviral_relay.aws.dynamodb_store import BATCH_GET_LIMIT, DUE_SHARDS
from genviral_relay.errors import StateConflictError
from genviral_relay.logic.ports import EventSelection, WatchStore
from genviral_relay.models.domain import DiscoverState, PendingDelivery, WatchRecord
from genviral_relay.models.events import RelayEvent


class InMemoryWatchStore(WatchStore):
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._watches: dict[str, WatchRecord] = {}
        self._events: dict[tuple[str, str], RelayEvent] = {}
        self._pause: tuple[datetime, str] | None = None
        self._discover: DiscoverState | None = None
        self._lock = threading.Lock()

    def get(self, post_id: str) -> WatchRecord | None:
        with self._lock:
            self.calls["get_item"] += 1
            return self._watches.get(post_id)

    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]:
        unique = list(dict.fromkeys(post_ids))
        with self._lock:
            self.calls["batch_get_item"] += -(-len(unique) // BATCH_GET_LIMIT)
            return {post_id: self._watches[post_id] for post_id in unique if post_id in self._watches}

    def save(self, record: WatchRecord, *, expected_version: int, new_events: Sequence[RelayEvent]) -> None:
        if record.version != expected_version + 1:
            raise ValueError("a saved watch must be exactly one version ahead of the stored one")
        with self._lock:
            self.calls["transact_write_items"] += 1
            stored = self._watches.get(record.post_id)
            if (stored.version if stored else 0) != expected_version:
                raise StateConflictError(record.post_id)
            self._watches[record.post_id] = record
            for event in new_events:
                self._events[(event.post_id, event.event_id)] = event

    def load_events(self, post_id: str, event_ids: Iterable[str]) -> list[RelayEvent]:
        wanted = sorted(set(event_ids))
        with self._lock:
            self.calls["batch_get_item"] += -(-len(wanted) // BATCH_GET_LIMIT)
            found = [self._events[(post_id, event_id)] for event_id in wanted if (post_id, event_id) in self._events]
        return sorted(found, key=lambda event: (event.detected_at, event.event_id))

    def find_events(self, selection: EventSelection) -> list[RelayEvent]:
        with self._lock:
            self.calls["query" if selection.post_id is not None else "scan"] += 1
            found = [event for event in self._events.values() if selection.matches(event)]
        return sorted(found, key=lambda event: (event.detected_at, event.event_id))

    def watches(self) -> Iterator[WatchRecord]:
        with self._lock:
            self.calls["scan"] += 1
            return iter(list(self._watches.values()))

    def acknowledge(
        self,
        post_id: str,
        delivered: Iterable[PendingDelivery],
        *,
        settle_version: int | None = None,
        settled_next_check_at: datetime | None = None,
    ) -> None:
        done = set(delivered)
        if not done:
            return
        with self._lock:
            stored = self._watches.get(post_id)
            self.calls["update_item"] += 1
            if stored is None:
                return
            update: dict[str, object] = {"outbox": stored.outbox - done, "version": stored.version + 1}
            if settle_version is not None:
                if stored.version == settle_version:
                    update["next_check_at"] = settled_next_check_at
                else:
                    self.calls["update_item"] += 1  # the real store retries without the settle
            self._watches[post_id] = stored.model_copy(update=update)

    def delete(self, post_id: str, *, expected_version: int) -> None:
        with self._lock:
            self.calls["delete_item"] += 1
            stored = self._watches.get(post_id)
            if stored is None or stored.version != expected_version:
                raise StateConflictError(post_id)
            del self._watches[post_id]

    def due_post_ids(self, now: datetime) -> Iterator[str]:
        with self._lock:
            self.calls["query"] += DUE_SHARDS + 1  # and the retry shard
            due = [
                (record.next_check_at, post_id)
                for post_id, record in self._watches.items()
                if record.next_check_at is not None and record.next_check_at <= now
            ]
        return iter([post_id for _, post_id in sorted(due)])

    def awaiting_retry(self, now: datetime, *, limit: int | None = None) -> Iterator[str]:
        with self._lock:
            self.calls["query"] += 1
            waiting = sorted(
                (record.next_check_at, post_id)
                for post_id, record in self._watches.items()
                if record.awaiting_retry and record.next_check_at is not None and record.next_check_at > now
            )
        return iter([post_id for _, post_id in waiting[:limit]])

    def soonest_due(self, now: datetime) -> datetime | None:
        """When the poller next has work: a due check, or now while a post awaits the retry sweep.

        The benchmark skips idle minutes with it; not counted as a DynamoDB call.
        """
        with self._lock:
            records = [record for record in self._watches.values() if record.next_check_at is not None]
        if any(record.awaiting_retry and record.next_check_at > now for record in records):  # type: ignore[operator]
            return now
        return min((record.next_check_at for record in records if record.next_check_at), default=None)

    def genviral_pause(self, now: datetime) -> str | None:
        with self._lock:
            self.calls["get_item"] += 1
            if self._pause is None or self._pause[0] <= now:
                return None
            return self._pause[1]

    def pause_genviral(self, *, until: datetime, reason: str) -> None:
        with self._lock:
            self.calls["put_item"] += 1
            self._pause = (until, reason)

    def discover_state(self) -> DiscoverState | None:
        with self._lock:
            self.calls["get_item"] += 1
            return self._discover

    def save_discover_state(self, state: DiscoverState, *, expected_version: int) -> None:
        if state.version != expected_version + 1:
            raise ValueError("a saved discover state must be exactly one version ahead of the stored one")
        with self._lock:
            self.calls["put_item"] += 1
            if (self._discover.version if self._discover else 0) != expected_version:
                raise StateConflictError("discover state")
            self._discover = state
