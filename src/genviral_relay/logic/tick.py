"""A poller tick: queue a check for every watch that is due, the retry sweep while a failure may
still be retried, and in discover mode a listing of new posts.

The tick itself never calls Genviral: every call runs in the workers, under the deployment's
concurrency cap and the pause that follows a refused key (while paused, nothing is queued).
"""

from __future__ import annotations

from dataclasses import dataclass

from genviral_relay.clock import Clock
from genviral_relay.logic.pause import GenviralPause
from genviral_relay.logic.ports import WatchStore, WorkQueue
from genviral_relay.models.messages import CheckRequest, DiscoverRequest, SweepRequest, WorkRequest
from genviral_relay.observability import Metric, emit, logger


@dataclass(frozen=True)
class TickReport:
    queued: int
    paused: str | None = None
    """Why nothing was queued: Genviral calls are paused."""


class PollTick:
    def __init__(
        self, *, store: WatchStore, pause: GenviralPause, queue: WorkQueue, clock: Clock, discover: bool
    ) -> None:
        self._store = store
        self._pause = pause
        self._queue = queue
        self._clock = clock
        self._discover = discover

    def run(self, *, correlation_id: str | None = None) -> TickReport:
        """`correlation_id`: the tick's own, carried by every message it queues."""
        report = self._queue_due_work(correlation_id)
        emit(Metric.POLLER_TICKS)
        return report

    def _queue_due_work(self, correlation_id: str | None) -> TickReport:
        reason = self._pause.reason()
        if reason is not None:
            logger.error("Genviral calls are paused; no checks queued this tick", extra={"reason": reason})
            emit(Metric.TICKS_PAUSED)
            return TickReport(queued=0, paused=reason)
        now = self._clock()
        requests: list[WorkRequest] = [CheckRequest(post_id=post_id) for post_id in self._store.due_post_ids(now)]
        if next(self._store.awaiting_retry(now, limit=1), None) is not None:
            requests.append(SweepRequest(sweep="retry"))
        if self._discover:
            requests.append(DiscoverRequest(discover="posts"))
        queued = self._queue.send(requests, correlation_id=correlation_id)
        emit(Metric.CHECKS_QUEUED, queued)
        return TickReport(queued=queued)
