"""Outbox delivery: publish what a watch still owes its targets, park what a target refuses for good,
acknowledge what is done.

Every check ends here, whether it found something new or not: that is how events left behind by
a crash (after the commit, between two targets, before the acknowledgement) are published again,
under the same ids, by the next check of the post.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from genviral_relay.clock import Clock, parse_ts
from genviral_relay.errors import DeadLetterError
from genviral_relay.logic.ports import DeadLetters, EventPublisher, WatchStore
from genviral_relay.models.domain import PendingDelivery, Target, WatchRecord
from genviral_relay.models.events import RelayEvent
from genviral_relay.observability import Metric, emit, logger


class OutboxDelivery:
    def __init__(
        self,
        *,
        store: WatchStore,
        publishers: Sequence[EventPublisher],
        dead_letters: DeadLetters,
        clock: Clock,
    ) -> None:
        self._store = store
        self._publishers = {publisher.target: publisher for publisher in publishers}
        self._dead_letters = dead_letters
        self._clock = clock

    @property
    def targets(self) -> tuple[Target, ...]:
        """The configured targets, in publishing order: each new event is owed to every one of them."""
        return tuple(self._publishers)

    def deliver(self, record: WatchRecord, new_events: Sequence[RelayEvent] = ()) -> WatchRecord:
        """Publish every outbox entry of `record`, acknowledge what got through; answer the watch as it is then.

        `new_events`: event documents the caller already holds (those it just committed), so only
        older entries are read back from the table. An entry counts as done when its target
        accepted the event, or when the target refused it for good and the event was parked in the
        dead-letter queue. Anything else stays in the outbox.
        """
        if not record.outbox:
            return record
        events = {event.event_id: event for event in new_events}
        missing = {entry.event_id for entry in record.outbox} - events.keys()
        if missing:
            events.update((event.event_id, event) for event in self._store.load_events(record.post_id, missing))
        self._measure_outbox_age(events.values())

        done: set[PendingDelivery] = set()
        by_target: dict[Target, list[RelayEvent]] = {}
        for entry in record.outbox:
            event = events.get(entry.event_id)
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
            pending = sorted(by_target.get(target, ()), key=lambda event: (event.detected_at, event.event_id))
            if pending:
                done |= self._publish(target, pending)

        if not done:
            return record
        complete = done == record.outbox
        self._store.acknowledge(
            record.post_id,
            done,
            settle_version=record.version if complete else None,
            settled_next_check_at=record.settled_next_check_at,
        )
        # Acknowledging bumps the stored version; this copy is for reporting, never saved.
        settled = {"next_check_at": record.settled_next_check_at} if complete else {}
        return record.model_copy(update={"outbox": record.outbox - done, **settled})

    def _publish(self, target: Target, events: list[RelayEvent]) -> set[PendingDelivery]:
        result = self._publishers[target].publish(events)
        emit(Metric.EVENTS_PUBLISHED, len(result.delivered))
        done = {PendingDelivery(event_id=event_id, target=target) for event_id in result.delivered}
        by_id = {event.event_id: event for event in events}
        for event_id, failure in result.failed.items():
            entry = PendingDelivery(event_id=event_id, target=target)
            emit(Metric.PUBLISH_FAILURES)
            if failure.retryable:
                logger.warning(
                    "Publish failed; kept for the next check",
                    extra={**_event_keys(by_id[event_id], target), "reason": failure.reason},
                )
            elif self._park(by_id[event_id], target, failure.reason):
                done.add(entry)
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


def _event_keys(event: RelayEvent, target: Target) -> dict[str, str]:
    return {"post_id": event.post_id, "account_id": event.account_id, "event_id": event.event_id, "target": target}
