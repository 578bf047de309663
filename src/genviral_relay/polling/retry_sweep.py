"""The retry sweep: one list call per tick finds the failed posts Genviral sent back to its scheduler.

Genviral retries a failed delivery by moving the post back to `retry`, and the retry can turn
`failed` into `posted` hours later. Polling every failed post until its retry window closes would
cost one call per post per tick; listing `status=retry` costs one call per tick for all of them.
A listed post is then checked with its own canonical GET only when the list shows a state the
relay has not recorded (a retry it already saw is left to the post's own schedule). When the list
may be cut off (it holds at most `PAGE_LIMIT` posts), every waiting post is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from genviral_relay.checking.check import CheckOutcome, ListingRun, PostCheck
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import PostSource, WatchStore
from genviral_relay.clock import Clock
from genviral_relay.errors import GenviralError
from genviral_relay.models.upstream import PAGE_LIMIT
from genviral_relay.observability import Metric, emit
from genviral_relay.polling.ports import WatchIndex


@dataclass(frozen=True)
class SweepReport(ListingRun):
    outcomes: tuple[CheckOutcome, ...] = ()
    error: GenviralError | None = None
    """Why the list call gave no answer (the sweep then runs again next tick)."""
    list_calls: int = 0


class RetrySweep:
    def __init__(
        self,
        *,
        check: PostCheck,
        source: PostSource,
        store: WatchStore,
        index: WatchIndex,
        pause: GenviralPause,
        clock: Clock,
    ) -> None:
        self._check = check
        self._source = source
        self._store = store
        self._index = index
        self._pause = pause
        self._clock = clock

    def run(self) -> SweepReport:
        now = self._clock()
        try:
            listed = self._source.posts_in_status("retry", limit=PAGE_LIMIT)
        except GenviralError as error:
            self._pause.failed(error, "Retry sweep deferred")
            return SweepReport(error=error)
        if listed.size >= PAGE_LIMIT:
            waiting = self._store.get_many(list(self._index.awaiting_retry(now)))
            outcomes = [self._check.check_watch(post_id, watch, trigger="manual") for post_id, watch in waiting.items()]
        else:
            watches = self._store.get_many([post.id for post in listed.posts] + list(listed.unreadable_ids))
            refreshed = [
                self._check.check_if_changed(post, watch)
                for post in listed.posts
                if (watch := watches.get(post.id)) is not None and watch.awaiting_retry
            ]
            unreadable = [
                self._check.check_watch(post_id, watch, trigger="manual")
                for post_id in listed.unreadable_ids
                if (watch := watches.get(post_id)) is not None and watch.awaiting_retry
            ]
            outcomes = [outcome for outcome in refreshed if outcome is not None] + unreadable
        emit(Metric.RETRY_SWEEP_CHECKS, len(outcomes))
        return SweepReport(outcomes=tuple(outcomes), list_calls=1)
