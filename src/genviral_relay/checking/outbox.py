"""Outbox delivery: publish what a watch still owes its targets, park what a target refuses for good,
acknowledge what is done, and retry the rest later.

Every check ends here, whether it found something new or not: that is how events left behind by
a crash (after the commit, between two targets, before the acknowledgement) are published again,
under the same ids, by the next check of the post.

Only an event a target refuses for good (too large, malformed: `PublishFailure.retryable` false)
is parked in the dead-letter queue. A target that fails as a whole (missing, access denied, KMS,
throttled, down) keeps the events in the outbox; the watch's next check moves back while it keeps
failing (`PollingPolicy.outbox_retry_at`), and once the target is back the events go out unchanged,
under the same ids, with nothing to redrive.

The event feed has an entry too (`FEED_TARGET`, whenever the relay has a feed): the commit put the events in the
feed already, so an event this process just committed needs no write; one read back from the table (its commit was
by a process that died, perhaps between a slow commit and its second append) is appended at a fresh position
(`feed/appending.py`, the argument in docs/feed.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from genviral_relay.checking.ports import DeadLetters, EventPublisher, WatchStore
from genviral_relay.clock import Clock, parse_ts
from genviral_relay.errors import DeadLetterError, StateConflictError
from genviral_relay.feed.appending import append_in_time
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.domain import FEED_TARGET, OutboxEntry, OutboxTarget, Target, WatchRecord
from genviral_relay.models.events import PostCompletedEvent, RelayEvent
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.rules.event_feed import feed_entries
from genviral_relay.rules.schedule import PollingPolicy, same_schedule, with_outbox_retry


class Outbox:
    def __init__(
        self,
        *,
        store: WatchStore,
        publishers: Sequence[EventPublisher],
        dead_letters: DeadLetters,
        clock: Clock,
        policy: PollingPolicy | None = None,
        feed: EventLog | None = None,
    ) -> None:
        """`feed`: the event feed (None: events are owed to the publishers only)."""
        self._store = store
        self._feed = feed
        self._publishers = {publisher.target: publisher for publisher in publishers}
        self._dead_letters = dead_letters
        self._clock = clock
        self._policy = policy or PollingPolicy()

    @property
    def targets(self) -> tuple[OutboxTarget, ...]:
        """The configured targets, in publishing order, and the feed: each new event is owed to every one of them."""
        return (*self._publishers, FEED_TARGET) if self._feed is not None else tuple(self._publishers)

    def publish(self, record: WatchRecord, new_events: Sequence[RelayEvent] = (), *, fed: bool = True) -> WatchRecord:
        """Publish every outbox entry of `record`, acknowledge what got through; answer the watch as it is then.

        `new_events`: event documents the caller already holds (those it just committed), so only
        older entries are read back from the table; `fed`: `save` put them in the feed in time (else the feed's
        entry appends them as it does one read back). An entry counts as done when its target
        accepted the event, or when the target refused it for good and the event was parked in the
        dead-letter queue. Anything else stays in the outbox, and the watch's next check is pushed
        back by the outbox back-off.
        """
        if not record.outbox:
            return record
        events = {event.event_id: event for event in new_events}
        missing = {entry.event_id for entry in record.outbox} - events.keys()
        if missing:
            events.update((event.event_id, event) for event in self._store.load_events(record.post_id, missing))
        self._measure_outbox_age(events.values())

        owed_feed = {entry for entry in record.outbox if entry.target == FEED_TARGET}
        for_feed = self._owed_to_feed(owed_feed, events, new_events if fed else ())
        done: set[OutboxEntry] = owed_feed - for_feed.keys()
        by_target: dict[Target, list[RelayEvent]] = {}
        for entry in record.outbox:
            event = events.get(entry.event_id)
            if entry.target == FEED_TARGET:
                continue  # decided above
            if event is None:
                # Past its retention in the table: there is nothing left to publish or park.
                logger.error(
                    "Outbox entry lost its event document",
                    extra={"post_id": record.post_id, "event_id": entry.event_id, "target": entry.target},
                )
                emit(Metric.OUTBOX_ENTRIES_EXPIRED)
                done.add(entry)
            elif entry.target not in self._publishers:
                if self._park(event, entry.target, "the target is no longer configured (PublishTargets)"):
                    done.add(entry)
            else:
                by_target.setdefault(entry.target, []).append(event)

        for target in self._publishers:  # configured order: a crash repeats as little as possible
            pending = sorted(by_target.get(target, ()), key=_publishing_order)
            if pending:
                done |= self._publish(target, pending)
        done |= self._append_to_feed(for_feed)

        remaining = record.outbox - done
        if done:
            self._store.acknowledge(
                record.post_id,
                done,
                settle_version=None if remaining else record.version,
                settled_next_check_at=record.settled_next_check_at,
            )
        if remaining:
            # Acknowledging bumped the stored version by one, unless another writer came first.
            return self._retry_later(record, remaining, events, stored_version=record.version + bool(done))
        # Acknowledging bumps the stored version; this copy is for reporting, never saved.
        return record.model_copy(update={"outbox": remaining, "next_check_at": record.settled_next_check_at})

    def _retry_later(
        self,
        record: WatchRecord,
        remaining: frozenset[OutboxEntry],
        events: dict[str, RelayEvent],
        *,
        stored_version: int,
    ) -> WatchRecord:
        """Move the next check of a watch whose events are still owed to the back-off's next retry.

        Written only when that is later than the stored next check (a first failure keeps the retry
        the commit set: no extra write), and only if nothing wrote the watch since: a check that
        committed in between set its own schedule. Answers the watch as it is then (for reporting).
        """
        watch = record.model_copy(update={"outbox": remaining})
        if record.version == 0:  # never stored: nothing to reschedule
            return watch
        now = self._clock()
        detected = [
            moment
            for entry in remaining
            if entry.event_id in events and (moment := parse_ts(events[entry.event_id].detected_at)) is not None
        ]
        retry_at = with_outbox_retry(
            record.settled_next_check_at, self._policy.outbox_retry_at(now, min(detected, default=None))
        )
        stored = record.next_check_at
        if stored is not None and (stored >= retry_at or same_schedule(stored, retry_at, now)):
            return watch
        later = watch.model_copy(update={"version": stored_version + 1, "next_check_at": retry_at})
        try:
            self._store.save(later, expected_version=stored_version, new_events=())
        except StateConflictError:
            logger.info("Another check wrote the watch first; its schedule stands", extra={"post_id": record.post_id})
            return watch
        return later

    def _owed_to_feed(
        self, owed: set[OutboxEntry], events: dict[str, RelayEvent], new_events: Sequence[RelayEvent]
    ) -> dict[OutboxEntry, RelayEvent]:
        """The feed entries that need an append: the others are done (the event is in the feed already, or past its
        retention, or the relay has no feed to append to)."""
        just_committed = {event.event_id for event in new_events}  # `save` put these in the feed in time
        if self._feed is None:
            return {}
        return {
            entry: events[entry.event_id]
            for entry in owed
            if entry.event_id in events and entry.event_id not in just_committed
        }

    def _append_to_feed(self, owed: dict[OutboxEntry, RelayEvent]) -> set[OutboxEntry]:
        """Append events read back from the table at a fresh position; on failure they stay owed to the feed."""
        if self._feed is None or not owed:
            return set()
        events = sorted(owed.values(), key=_publishing_order)
        try:
            append_in_time(self._feed, feed_entries(events, self._clock()), self._clock)
        except Exception:  # any failure of the append: kept for the next check, as a failing target's events are
            logger.exception(
                "Feed append failed; kept for the next check",
                extra={"post_id": events[0].post_id, "event_ids": sorted(owed_entry.event_id for owed_entry in owed)},
            )
            return set()
        return set(owed)

    def _publish(self, target: Target, events: list[RelayEvent]) -> set[OutboxEntry]:
        result = self._publishers[target].publish(events)
        emit(Metric.EVENTS_PUBLISHED, len(result.published))
        done = {OutboxEntry(event_id=event_id, target=target) for event_id in result.published}
        by_id = {event.event_id: event for event in events}
        kept: dict[str, list[str]] = {}
        for event_id, failure in result.failed.items():
            emit(Metric.PUBLISH_FAILURES)
            if failure.retryable:
                kept.setdefault(failure.reason, []).append(event_id)
            elif self._park(by_id[event_id], target, failure.reason):
                done.add(OutboxEntry(event_id=event_id, target=target))
        for reason, event_ids in kept.items():
            # One line per cause, not per event: a target refusing whole calls fails every event alike.
            logger.warning(
                "Publish failed; kept for the next check",
                extra={
                    "post_id": by_id[event_ids[0]].post_id,
                    "target": target,
                    "reason": reason,
                    "events": len(event_ids),
                    "event_ids": sorted(event_ids),
                },
            )
        return done

    def _park(self, event: RelayEvent, target: Target, reason: str) -> bool:
        """Move an event a target will never take to the dead-letter queue; False if even that failed."""
        keys = {**_event_keys(event, target), "reason": reason}
        try:
            self._dead_letters.park(event, target, reason)
        except DeadLetterError:
            logger.exception("Could not park a refused event; it stays in the outbox", extra=keys)
            return False
        logger.error("Target refused an event for good; parked in the events dead-letter queue", extra=keys)
        emit(Metric.EVENTS_DEAD_LETTERED)
        return True

    def _measure_outbox_age(self, pending: Iterable[RelayEvent]) -> None:
        """How long the oldest event still owed to a target has waited: near zero for events just
        detected, growing only while publishing keeps failing."""
        detected = [moment for event in pending if (moment := parse_ts(event.detected_at)) is not None]
        if detected:
            emit(Metric.PENDING_OUTBOX_AGE, max(0.0, (self._clock() - min(detected)).total_seconds()))


def _publishing_order(event: RelayEvent) -> tuple[str, bool, str]:
    """Oldest first; within one check, a post's completion after the account events it sums up."""
    return (event.detected_at, isinstance(event, PostCompletedEvent), event.event_id)


def _event_keys(event: RelayEvent, target: Target) -> dict[str, str]:
    return {**event.log_keys(), "target": target}
