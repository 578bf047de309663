"""A poller tick: queue a check for every watch that is due (no more than the fleet checks in a tick
while the queue holds a backlog, `rules/backpressure.py`), the retry sweep while a failure may still
be retried, and in discover mode a listing of new posts.

The tick itself never calls Genviral: every call runs in the workers, under the deployment's
concurrency cap and the pause that follows a refused key (while paused, nothing is queued). The stack's own work
(the notices flush, the workspaces' sync) is asked for apart, whatever the ticks do (`polling/stack_work.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from genviral_relay.checking.pause import GenviralPause
from genviral_relay.clock import Clock, to_milliseconds
from genviral_relay.models.domain import CreatedWindow
from genviral_relay.models.messages import (
    AccountsRequest,
    CheckRequest,
    DiscoverRequest,
    RefreshRequest,
    SweepRequest,
    WorkRequest,
)
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.polling.account_checks import AccountChecks
from genviral_relay.polling.bulk_refresh import HotWindows
from genviral_relay.polling.ports import WatchIndex, WorkQueue
from genviral_relay.rules.backpressure import Backpressure, DueGroup


@dataclass(frozen=True)
class TickReport:
    queued: int
    deferred: int = 0
    """Due checks left for the next ticks (backpressure)."""
    paused: str | None = None
    """Why nothing was queued: Genviral calls are paused."""


class PollTick:
    def __init__(
        self,
        *,
        index: WatchIndex,
        pause: GenviralPause,
        queue: WorkQueue,
        clock: Clock,
        discover: bool,
        backpressure: Backpressure | None = None,
        windows: HotWindows | None = None,
        accounts: AccountChecks | None = None,
    ) -> None:
        """`backpressure`: kept for the life of the execution environment (None: a fresh one per tick,
        which knows no pace and limits nothing). `windows`: groups posts created together into one
        refresh (None: one check per post). `accounts`: when to ask for an account health check (None: never)."""
        self._index = index
        self._pause = pause
        self._queue = queue
        self._clock = clock
        self._discover = discover
        self._backpressure = backpressure
        self._windows = windows
        self._accounts = accounts

    def run(self, *, correlation_id: str | None = None) -> TickReport:
        """`correlation_id`: the tick's own, carried by every message it queues."""
        report = self._queue_due_work(correlation_id)
        emit(Metric.POLLER_TICKS)
        return report

    def _queue_due_work(self, correlation_id: str | None) -> TickReport:
        # The precision the table stores: `claimed_at` is compared with the messages' `queued_at`.
        now = to_milliseconds(self._clock())
        reason = self._pause.reason()
        if reason is not None:
            logger.error("Genviral calls are paused; no checks queued this tick", extra={"reason": reason})
            emit(Metric.TICKS_PAUSED)
            return TickReport(queued=0, paused=reason)
        backpressure = self._backpressure or Backpressure()
        backlog = self._queue.backlog()
        due = list(self._index.due_watches(now))
        if self._windows is not None:
            grouped = self._windows.group(due)
            groups, windows = grouped.groups, grouped.windows
        else:
            groups, windows = [(watch,) for watch in due], {}
        plan = backpressure.plan(groups, backlog, now)
        requests: list[WorkRequest] = [_request(group, windows.get(group), now, since) for group, since in plan.queue]
        if next(self._index.awaiting_retry(now, limit=1), None) is not None:
            requests.append(SweepRequest(sweep="retry"))
        if self._discover:
            requests.append(DiscoverRequest(discover="posts"))
        if self._accounts is not None and self._accounts.wanted(now, watched=bool(due)):
            requests.append(AccountsRequest(accounts="check"))
        queued = self._queue.send(requests, correlation_id=correlation_id)
        backpressure.queued(now, backlog, queued)
        emit(Metric.CHECKS_QUEUED, queued)
        # Only while behind: a metric costs for every hour it is written, and a calm hour has nothing to say.
        if backlog:
            emit(Metric.WORK_QUEUE_BACKLOG, backlog)
        if plan.longest_wait:
            emit(Metric.LONGEST_DEFERRAL, plan.longest_wait.total_seconds())
        if plan.deferred:
            emit(Metric.CHECKS_DEFERRED, plan.deferred)
            logger.warning(
                "Work queue behind: due checks deferred to the next ticks",
                extra={"queued": len(plan.queue), "deferred": plan.deferred, "backlog": backlog},
            )
        return TickReport(queued=queued, deferred=plan.deferred)


def _request(group: DueGroup, window: CreatedWindow | None, now: datetime, since: datetime) -> WorkRequest:
    if window is None:
        (watch,) = group
        return CheckRequest(post_id=watch.post_id, queued_at=now, waiting_since=since)
    return RefreshRequest(
        refresh="created",
        since=window.since,
        until=window.until,
        post_ids=tuple(watch.post_id for watch in group),
        queued_at=now,
        waiting_since=since,
    )
