"""At most one check of a post in flight, however often the poller queued it.

The poller queues every due watch each tick, and a watch due every tick keeps its past
`next_check_at` until a check changes it; so when the queue falls behind (a campaign due at once,
Genviral answering slowly), the same post is queued again tick after tick. Each message carries
the moment it was queued; a check that starts more than half a tick after that moment may have a
sibling queued by a later tick, so it first claims the post (one conditional write that stores
when it started, `WatchIndex.claim_check`). A message queued before the last claim is a duplicate:
it is acknowledged without asking Genviral anything.

A check that starts within half a tick of its queueing cannot have a later sibling yet and claims
nothing: the calm case, every check on time, writes nothing more than before.

A check asked for through the API (check now, or registering a post already watched) always asks
Genviral; once it has recorded the answer it claims the post at the moment it started
(`CheckClaims.claim_for_check_now`), so the messages the poller queued before it are duplicates of it.
A person asks rarely, so the write costs little.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from genviral_relay.checking.check import CheckOutcome
from genviral_relay.clock import Clock
from genviral_relay.models.domain import WatchRecord
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.polling.ports import WatchIndex


@dataclass(frozen=True)
class Admission:
    check: bool
    """False: a check that started after this message was queued covers it (a duplicate)."""
    watch: WatchRecord | None
    """The watch to check from (with the claim, when this check took one)."""


class CheckClaims:
    def __init__(self, *, index: WatchIndex, clock: Clock, tick: timedelta) -> None:
        self._index = index
        self._clock = clock
        self._late_after = tick / 2

    def now(self) -> datetime:
        return self._clock()

    def admit(self, post_id: str, watch: WatchRecord | None, queued_at: datetime | None) -> Admission:
        """Whether the check of `post_id`, asked for by a message queued at `queued_at`, should run.

        A message without a queueing time (queued by an older release), a post not watched and an
        ended watch (which only flushes its outbox, asking Genviral nothing) are admitted as they are.
        """
        if watch is None or queued_at is None or not watch.watching:
            return Admission(True, watch)
        if watch.claimed_at is not None and watch.claimed_at >= queued_at:
            return Admission(False, watch)
        now = self._clock()
        if now - queued_at < self._late_after:
            return Admission(True, watch)
        if not self._index.claim_check(post_id, queued_at=queued_at, now=now):
            return Admission(False, watch)
        emit(Metric.CHECK_CLAIMS)
        # The check saves the watch it was given: carry the claim, or its save would erase it.
        return Admission(True, watch.model_copy(update={"claimed_at": now}))

    def claim_for_check_now(self, outcome: CheckOutcome, *, started: datetime) -> None:
        """After a check a person asked for: if it recorded Genviral's answer, claim the post at the
        moment it started, so the messages queued before then ask Genviral nothing. A check with no
        answer (deferred, refused) claims nothing: the queued checks still have something to do."""
        watch = outcome.watch
        if outcome.result not in ("changed", "unchanged") or outcome.created or watch is None or not watch.watching:
            return
        try:
            claimed = self._index.claim_check(outcome.post_id, queued_at=started, now=started)
        except Exception as error:  # the check is done and answered; a claim only saves the queued copies a call
            logger.warning(
                "Check-now claim failed", extra={"post_id": outcome.post_id, "error_type": type(error).__name__}
            )
            return
        if claimed:
            emit(Metric.CHECK_CLAIMS)
