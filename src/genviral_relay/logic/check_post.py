"""The check of one watched post: fetch, detect, commit state and outbox together, publish, acknowledge.

The order is what makes the relay lose nothing: events are written to the outbox in the same
conditional write as the state that produced them, and only then published. A crash anywhere
leaves them in the outbox, and the next check of the post publishes them again under the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from genviral_relay.clock import Clock, parse_ts
from genviral_relay.errors import (
    DeadLetterError,
    GenviralContractError,
    GenviralError,
    GenviralNotFoundError,
    StateConflictError,
    WatchNotFoundError,
)
from genviral_relay.logic.ports import DeadLetters, EventPublisher, PostSource, WatchStore
from genviral_relay.logic.schedule import PollingPolicy, same_schedule
from genviral_relay.logic.transitions import detect_transitions
from genviral_relay.models.domain import PendingDelivery, Target, WatchRecord
from genviral_relay.models.events import RelayEvent
from genviral_relay.models.upstream import FINAL_STATUSES, Post
from genviral_relay.observability import TRANSITION_METRICS, Metric, emit, genviral_error_metric, logger

RETRY_SWEEP_LIMIT = 100  # Genviral's largest page
CheckTrigger = Literal["due", "manual", "register"]
CheckResult = Literal[
    "changed",  # state or schedule written (with or without events)
    "unchanged",  # nothing to write
    "not_watched",  # the post is not watched (and registration was not asked)
    "post_not_found",  # Genviral answered 404: the watch ended (or was never created)
    "deferred",  # Genviral could not answer usefully; the post stays due
    "conflict",  # another check committed first; its result stands
    "flushed",  # an ended watch only had events to publish
]


@dataclass(frozen=True)
class CheckOutcome:
    post_id: str
    result: CheckResult
    watch: WatchRecord | None = None
    post: Post | None = None
    events: tuple[RelayEvent, ...] = ()
    error: GenviralError | None = None

    @property
    def undelivered(self) -> int:
        """Outbox entries still unpublished after this check."""
        return len(self.watch.outbox) if self.watch is not None else 0


class OutboxNotEmptyError(Exception):
    """A watch cannot be forgotten while some of its events are still unpublished."""


class PostChecker:
    def __init__(
        self,
        *,
        store: WatchStore,
        source: PostSource,
        publishers: Sequence[EventPublisher],
        dead_letters: DeadLetters,
        clock: Clock,
        policy: PollingPolicy | None = None,
    ) -> None:
        self._store = store
        self._source = source
        self._publishers = {publisher.target: publisher for publisher in publishers}
        self._dead_letters = dead_letters
        self._clock = clock
        self._policy = policy or PollingPolicy()

    def check(self, post_id: str, *, trigger: CheckTrigger = "due") -> CheckOutcome:
        """Check one post. `due`: the poller's turn; `manual`: a check-now; `register`: also start watching."""
        return self.check_loaded(post_id, self._store.get(post_id), trigger=trigger)

    def check_loaded(self, post_id: str, watch: WatchRecord | None, *, trigger: CheckTrigger = "due") -> CheckOutcome:
        """`check` with the stored watch already read (a worker reads a whole batch in one call)."""
        now = self._clock()
        register = trigger == "register"
        if watch is None and not register:
            return CheckOutcome(post_id, "not_watched")
        if watch is not None and not watch.watching and trigger == "due":
            # Only its unpublished events keep an ended watch due: publish them, ask Genviral nothing.
            return CheckOutcome(post_id, "flushed", watch=self._deliver(watch, ()))

        emit(Metric.POSTS_CHECKED)
        try:
            post = self._source.get_post(post_id)
        except GenviralNotFoundError as error:
            return self._end_gone(post_id, watch, now, error)
        except GenviralError as error:
            return self._defer(post_id, watch, now, error, register=register)
        if post.id != post_id:
            mismatch = GenviralContractError(f"asked for post {post_id}, Genviral answered post {post.id}")
            return self._defer(post_id, watch, now, mismatch, register=register)
        return self._record(post_id, watch, post, now)

    def sweep_retries(self) -> list[CheckOutcome]:
        """Check the posts with failures that Genviral sent back to its scheduler.

        One list call finds them all; a post is then checked with its own canonical GET only when
        the list shows a state the relay has not recorded (a retry it already saw is left to the
        post's own schedule). When the list may be cut off (it holds at most `RETRY_SWEEP_LIMIT`
        posts), every waiting post is checked.
        """
        now = self._clock()
        try:
            listed = self._source.posts_in_status("retry", limit=RETRY_SWEEP_LIMIT)
        except GenviralError as error:
            return [self._defer("retry-sweep", None, now, error, register=False)]
        if listed.size >= RETRY_SWEEP_LIMIT:
            waiting = self._store.get_many(list(self._store.awaiting_retry(now)))
            outcomes = [self.check_loaded(post_id, watch, trigger="manual") for post_id, watch in waiting.items()]
        else:
            watches = self._store.get_many([post.id for post in listed.posts] + list(listed.unreadable_ids))
            refreshed = [
                self.refresh_listed(post, watch)
                for post in listed.posts
                if (watch := watches.get(post.id)) is not None and watch.awaiting_retry
            ]
            unreadable = [
                self.check_loaded(post_id, watch, trigger="manual")
                for post_id in listed.unreadable_ids
                if (watch := watches.get(post_id)) is not None and watch.awaiting_retry
            ]
            outcomes = [outcome for outcome in refreshed if outcome is not None] + unreadable
        emit(Metric.RETRY_SWEEP_CHECKS, len(outcomes))
        return outcomes

    def adopt_listed(self, post: Post, *, silent: bool) -> CheckOutcome:
        """Start watching a post the workspace list showed (discover mode).

        `silent` (created before the baseline): its states are recorded as they are and nothing is
        emitted. Otherwise the listed answer is recorded as the first sighting when it holds no
        final account, which saves a call; when it would emit, the canonical single-post answer
        decides instead, as it does for every event.
        """
        if not silent and any(state.status in FINAL_STATUSES for state in post.accounts.states):
            return self.check_loaded(post.id, None, trigger="register")
        return self._record(post.id, None, post, self._clock(), silent=silent)

    def refresh_listed(self, post: Post, watch: WatchRecord) -> CheckOutcome | None:
        """A watched post the workspace list showed: None when the list shows nothing new, else a
        check now (the list only tells the relay to look; the single-post answer is what it records)."""
        if not detect_transitions(watch, post, self._clock()).state_changed:
            return None
        return self.check_loaded(post.id, watch, trigger="manual")

    def unwatch(self, post_id: str) -> WatchRecord:
        """Forget a watch, after publishing whatever it still owes."""
        watch = self._store.get(post_id)
        if watch is None:
            raise WatchNotFoundError(post_id)
        if watch.outbox:
            if self._deliver(watch, ()).outbox:
                raise OutboxNotEmptyError(post_id)
            watch = self._store.get(post_id)
            if watch is None:
                raise WatchNotFoundError(post_id)
        self._store.delete(post_id, expected_version=watch.version)
        logger.info("Watch removed", extra={"post_id": post_id})
        return watch

    def _record(
        self, post_id: str, watch: WatchRecord | None, post: Post, now: datetime, *, silent: bool = False
    ) -> CheckOutcome:
        previous = watch or WatchRecord(post_id=post_id, version=0, registered_at=now)
        detection = detect_transitions(previous, post, now)
        if silent:
            # A baseline: the outcomes count as seen (so later ids stay distinct) but are not reported.
            detection = replace(detection, events=())
        changed_at = previous.changed_at_after(state_changed=detection.state_changed, now=now)
        wanted = self._policy.next_check(post, now, last_change=changed_at, first_seen=previous.registered_at)
        awaiting_retry = self._policy.awaits_retry(post, now, last_change=changed_at, first_seen=previous.registered_at)
        needs_write = (
            previous.version == 0
            or previous.awaiting_retry != awaiting_retry
            or detection.state_changed
            or previous.watching != (wanted is not None)
            or not same_schedule(previous.settled_next_check_at, wanted, now)
        )
        if not needs_write:
            emit(Metric.POSTS_UNCHANGED)
            return CheckOutcome(post_id, "unchanged", watch=self._deliver(previous, ()), post=post)

        outbox = previous.outbox | {
            PendingDelivery(event_id=event.event_id, target=target)
            for event in detection.events
            for target in self._publishers
        }
        record = previous.model_copy(
            update={
                "version": previous.version + 1,
                "watching": wanted is not None,
                "ended_reason": None if wanted is not None else "finished",
                "post_status": post.status,
                "scheduled_at": post.scheduled_at,
                "accounts": detection.accounts,
                "emitted": detection.emitted,
                "outbox": frozenset(outbox),
                "next_check_at": self._live_schedule(wanted, bool(outbox), now),
                "settled_next_check_at": wanted,
                "awaiting_retry": awaiting_retry,
                "changed_at": changed_at,
            }
        )
        try:
            self._store.save(record, expected_version=previous.version, new_events=detection.events)
        except StateConflictError:
            logger.info("Another check committed this post first", extra={"post_id": post_id})
            emit(Metric.CHECK_CONFLICTS)
            return CheckOutcome(post_id, "conflict", watch=self._store.get(post_id), post=post)

        for event in detection.events:
            logger.info(
                "Transition detected",
                extra={
                    "post_id": post_id,
                    "account_id": event.account_id,
                    "event_id": event.event_id,
                    "status": event.status,
                    "previous_status": event.previous_status,
                },
            )
            emit(TRANSITION_METRICS[event.status])
            if previous.observed:  # a post seen before changed while watched (not one just registered)
                changed_at = _changed_at(event)
                if changed_at is not None:
                    emit(Metric.DETECTION_LAG, max(0.0, (now - changed_at).total_seconds()))
        delivered = self._deliver(record, detection.events)
        return CheckOutcome(post_id, "changed", watch=delivered, post=post, events=detection.events)

    def _live_schedule(self, wanted: datetime | None, has_outbox: bool, now: datetime) -> datetime | None:
        """Keep a watch with unpublished events due soon, so a crash before publishing is repaired."""
        if not has_outbox:
            return wanted
        retry_at = now + self._policy.outbox_retry_delay
        return retry_at if wanted is None else min(wanted, retry_at)

    def _end_gone(
        self, post_id: str, watch: WatchRecord | None, now: datetime, error: GenviralNotFoundError
    ) -> CheckOutcome:
        logger.info("Post not found in Genviral; watch ends", extra={"post_id": post_id})
        emit(Metric.POSTS_GONE)
        if watch is None:
            return CheckOutcome(post_id, "post_not_found", error=error)
        record = watch.model_copy(
            update={
                "version": watch.version + 1,
                "watching": False,
                "ended_reason": "post_not_found",
                "next_check_at": self._live_schedule(None, bool(watch.outbox), now),
                "settled_next_check_at": None,
                "changed_at": now,
            }
        )
        try:
            self._store.save(record, expected_version=watch.version, new_events=())
        except StateConflictError:
            return CheckOutcome(post_id, "conflict", watch=self._store.get(post_id), error=error)
        return CheckOutcome(post_id, "post_not_found", watch=self._deliver(record, ()), error=error)

    def _defer(
        self, post_id: str, watch: WatchRecord | None, now: datetime, error: GenviralError, *, register: bool
    ) -> CheckOutcome:
        level = logger.warning if error.transient else logger.error
        level(
            "Post check deferred",
            extra={
                "post_id": post_id,
                "error_type": type(error).__name__,
                "error": str(error),
                "status": error.status,
                "error_code": error.error_code,
            },
        )
        emit(genviral_error_metric(error))
        if watch is None and register:
            # The registration itself must not be lost: store a bare watch the poller checks soon.
            watch = WatchRecord(post_id=post_id, version=1, registered_at=now, next_check_at=now)
            try:
                self._store.save(watch, expected_version=0, new_events=())
            except StateConflictError:
                watch = self._store.get(post_id)
        delivered = self._deliver(watch, ()) if watch is not None else None
        return CheckOutcome(post_id, "deferred", watch=delivered, error=error)

    def _deliver(self, record: WatchRecord, new_events: Sequence[RelayEvent]) -> WatchRecord:
        """Publish every outbox entry of `record`, acknowledge what got through; answer the watch as it is then.

        An entry counts as done when its target accepted the event, or when the target refused it for
        good and the event was parked in the dead-letter queue. Anything else stays in the outbox.
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


def _changed_at(event: RelayEvent) -> datetime | None:
    """When Genviral recorded the change: the publish time of a post, the attempt time of a failure."""
    stamps = (
        (event.published_at, event.last_attempted_at)
        if event.status == "posted"
        else (event.last_attempted_at, event.published_at)
    )
    return next((moment for stamp in stamps if (moment := parse_ts(stamp)) is not None), None)


def _event_keys(event: RelayEvent, target: Target) -> dict[str, str]:
    return {"post_id": event.post_id, "account_id": event.account_id, "event_id": event.event_id, "target": target}
