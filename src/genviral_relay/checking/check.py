"""The check of one watched post: fetch, detect, commit state and outbox together, then publish.

The order is what makes the relay lose nothing: events are written to the outbox in the same
conditional write as the state that produced them, and only then published (`checking/outbox.py`).
A crash anywhere leaves them in the outbox, and the next check of the post publishes them again
under the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from genviral_relay.checking.accounts import AccountLookup
from genviral_relay.checking.answer import plan_answer
from genviral_relay.checking.outbox import Outbox
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import PostSource, WatchStore
from genviral_relay.clock import Clock, parse_ts
from genviral_relay.errors import (
    GenviralConfigError,
    GenviralContractError,
    GenviralError,
    GenviralNotFoundError,
    StateConflictError,
)
from genviral_relay.models.domain import OutboxEntry, WatchRecord
from genviral_relay.models.event_kinds import EVENT_KINDS
from genviral_relay.models.events import (
    AccountEvent,
    AccountOutcomeEvent,
    EventDocument,
    PostCompletedEvent,
    RelayEvent,
)
from genviral_relay.models.upstream import Post
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, stored_workspace
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.rules.schedule import PollingPolicy, same_schedule, with_outbox_retry

CheckTrigger = Literal["due", "manual", "register"]
"""`due`: the poller's turn; `manual`: a check-now; `register`: also start watching."""
CheckResult = Literal[
    "changed",  # state or schedule written (with or without events)
    "unchanged",  # nothing to write
    "not_watched",  # the post is not watched (and registration was not asked)
    "post_not_found",  # Genviral answered 404: the watch ended (or was never created)
    "deferred",  # Genviral could not answer usefully; the post stays due
    "refused",  # Genviral refused the key: calls are paused (see `checking/pause.py`); the post stays due
    "conflict",  # another check committed first; its result stands
    "flushed",  # an ended watch only had events to publish
]


@dataclass(frozen=True)
class CheckOutcome:
    post_id: str
    result: CheckResult
    watch: WatchRecord | None = None
    """The watch as this check left it (None: not stored)."""
    post: Post | None = None
    events: tuple[EventDocument, ...] = ()
    """The events this check found."""
    error: GenviralError | None = None
    """Why Genviral gave no usable answer (`deferred`, `refused`, `post_not_found`)."""
    created: bool = False
    """This check started watching the post (a registration that stored a new watch)."""

    @property
    def deferral(self) -> str | None:
        """Why the check is left to a later tick, for whoever asked for it (None: Genviral answered)."""
        if self.error is None:
            return None
        return f"the check is deferred to a later tick: {type(self.error).__name__}: {self.error}"

    @property
    def answered(self) -> bool:  # Genviral answered (a 404 too): its key works, a pause that was open is over
        return self.post is not None or isinstance(self.error, GenviralNotFoundError)

    @property
    def unpublished(self) -> int:
        """Outbox entries still unpublished after this check."""
        return len(self.watch.outbox) if self.watch is not None else 0


class PostCheck:
    def __init__(
        self,
        *,
        store: WatchStore,
        source: PostSource,
        outbox: Outbox,
        pause: GenviralPause,
        clock: Clock,
        policy: PollingPolicy | None = None,
        accounts: AccountLookup | None = None,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        """`accounts`: names the events' accounts (None: by id alone); `workspace`: the new watches' (its key)."""
        self._workspace = stored_workspace(workspace)
        self._store = store
        self._accounts = accounts
        self._source = source
        self._outbox = outbox
        self._pause = pause
        self._clock = clock
        self._policy = policy or PollingPolicy()

    def check(self, post_id: str, *, trigger: CheckTrigger = "due") -> CheckOutcome:
        """Check one post, reading its watch first."""
        return self.check_watch(post_id, self._store.get(post_id), trigger=trigger)

    def check_watch(self, post_id: str, watch: WatchRecord | None, *, trigger: CheckTrigger = "due") -> CheckOutcome:
        """`check` with the stored watch already read (None: not stored); a worker reads a whole batch in one call."""
        now = self._clock()
        register = trigger == "register"
        if watch is None and not register:
            return CheckOutcome(post_id, "not_watched")
        if watch is not None and not watch.watching and trigger == "due":
            # Only its unpublished events keep an ended watch due: publish them, ask Genviral nothing.
            return CheckOutcome(post_id, "flushed", watch=self._outbox.publish(watch))

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
        return self.apply_answer(post, watch, now=now)

    def check_if_changed(self, post: Post, watch: WatchRecord) -> CheckOutcome | None:
        """A watched post a list answer showed: None when the list shows nothing new, else a check now
        (a list only tells the relay to look; the single-post answer is what it records)."""
        if not plan_answer(watch, post, self._clock(), self._policy).detection.state_changed:
            return None
        return self.check_watch(post.id, watch, trigger="manual")

    def apply_answer(
        self, post: Post, watch: WatchRecord | None, *, now: datetime | None = None, silent: bool = False
    ) -> CheckOutcome:
        """Record Genviral's answer for `post` against its stored watch (None: start watching it).

        `silent`: a baseline (discover mode, posts older than its start): the outcomes count as
        seen, so later ids stay distinct, but nothing is emitted nor numbered, and no URL is awaited.
        """
        now = now or self._clock()
        plan = plan_answer(watch, post, now, self._policy, silent=silent, workspace=self._workspace)
        previous, detection = plan.previous, plan.detection
        if detection.events and self._accounts is not None:
            # Only a check that emits reads the directory (and perhaps lists the accounts): the rest stay cheap.
            named = self._accounts.describe(
                {account_id for event in detection.events for account_id in event.account_ids}
            )
            detection = plan_answer(previous, post, now, self._policy, accounts=named).detection
        changed_at, wanted, awaiting_retry = plan.changed_at, plan.next_check_at, plan.awaiting_retry
        needs_write = (
            previous.version == 0
            or previous.awaiting_retry != awaiting_retry
            or detection.state_changed
            or previous.watching != (wanted is not None)
            or not same_schedule(previous.settled_next_check_at, wanted, now)
        )
        if not needs_write:
            emit(Metric.POSTS_UNCHANGED)
            return CheckOutcome(post.id, "unchanged", watch=self._outbox.publish(previous), post=post)

        outbox = previous.outbox | {
            OutboxEntry(event_id=event.event_id, target=target)
            for event in detection.events
            for target in self._outbox.targets
        }
        record = previous.model_copy(
            update={
                "version": previous.version + 1,
                "watching": wanted is not None,
                "ended_reason": None if wanted is not None else "finished",
                "post_status": post.status,
                "scheduled_at": post.scheduled_at,
                "created_at": post.created_at,
                "accounts": detection.accounts,
                "occurrences": detection.occurrences,
                "outbox": frozenset(outbox),
                "next_check_at": self._live_schedule(wanted, bool(outbox), now),
                "settled_next_check_at": wanted,
                "awaiting_retry": awaiting_retry,
                "changed_at": changed_at,
            }
        )
        try:
            fed = self._store.save(record, expected_version=previous.version, new_events=detection.events)
        except StateConflictError:
            logger.info("Another check committed this post first", extra={"post_id": post.id})
            emit(Metric.CHECK_CONFLICTS)
            return CheckOutcome(post.id, "conflict", watch=self._store.get(post.id), post=post)

        for event in detection.events:
            logger.info(EVENT_KINDS[event.event_type].log_line, extra={**event.log_keys(), **_states(event)})
            emit(Metric(EVENT_KINDS[event.event_type].metric))
            # Lag is measured on outcomes of a post seen before (not one just registered).
            if isinstance(event, AccountOutcomeEvent) and previous.observed:
                happened_at = _changed_at(event)
                if happened_at is not None:
                    emit(Metric.DETECTION_LAG, max(0.0, (now - happened_at).total_seconds()))
        published = self._outbox.publish(record, detection.events, fed=fed)
        return CheckOutcome(
            post.id, "changed", watch=published, post=post, events=detection.events, created=previous.version == 0
        )

    def _live_schedule(self, wanted: datetime | None, has_outbox: bool, now: datetime) -> datetime | None:
        """Keep a watch with unpublished events due soon, so a crash before publishing is repaired;
        the publishing that follows pushes the retry back while a target keeps failing
        (`Outbox`, `PollingPolicy.outbox_retry_at`)."""
        if not has_outbox:
            return wanted
        return with_outbox_retry(wanted, self._policy.outbox_retry_at(now, None))

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
        return CheckOutcome(post_id, "post_not_found", watch=self._outbox.publish(record), error=error)

    def _defer(
        self, post_id: str, watch: WatchRecord | None, now: datetime, error: GenviralError, *, register: bool
    ) -> CheckOutcome:
        refused = self._pause.failed(error, "Post check deferred", post_id=post_id)
        created = False
        if watch is None and register:
            # The registration itself must not be lost: store a bare watch the poller checks soon.
            watch = WatchRecord(
                post_id=post_id, version=1, registered_at=now, next_check_at=now, workspace=self._workspace
            )
            try:
                self._store.save(watch, expected_version=0, new_events=())
                created = True
            except StateConflictError:
                watch = self._store.get(post_id)
        published = self._outbox.publish(watch) if watch is not None else None
        return CheckOutcome(
            post_id, "refused" if refused else "deferred", watch=published, error=error, created=created
        )


def _states(event: RelayEvent) -> dict[str, str | None]:
    """The statuses a log line of an event names."""
    if isinstance(event, AccountEvent):
        return {"status": event.status, "previous_status": event.previous_status}
    if isinstance(event, PostCompletedEvent):
        return {"outcome": event.outcome}
    return {}


def _changed_at(event: AccountOutcomeEvent) -> datetime | None:
    """When Genviral recorded the change: the publish time of a post, the attempt time of a failure."""
    posted = event.status == "posted"
    stamps = (event.published_at, event.last_attempted_at) if posted else (event.last_attempted_at, event.published_at)
    return next((moment for stamp in stamps if (moment := parse_ts(stamp)) is not None), None)


class ListingRun:
    """What a run that lists posts and checks some met (the retry sweep, a discover walk, a bulk refresh): its
    list call's failure, if any, and its checks' outcomes."""

    error: GenviralError | None
    outcomes: Sequence[CheckOutcome]
    list_calls: int  # those Genviral answered

    @property
    def answered(self) -> bool:  # a list call or a check of the run: the key works
        return self.list_calls > 0 or any(outcome.answered for outcome in self.outcomes)

    @property
    def refused(self) -> bool:
        """Genviral refused the key, to the list call or to a check (calls are paused)."""
        return isinstance(self.error, GenviralConfigError) or any(
            outcome.result == "refused" for outcome in self.outcomes
        )
