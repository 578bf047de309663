"""Bulk refresh: the hot posts of a tick created together are refreshed 100 at a time by one list call.

`GET /posts?since=…&until=…&limit=100` answers the same full post object as `GET /posts/{id}` for
every post created in a window, and the posts of a bulk import (the Partner API's most common use)
are created within seconds of each other. So the poller groups the posts due this tick by their
`created_at` (`HotWindows`): consecutive hot posts, a window holding at most 100 posts of the
workspace. A window holding two or more hot posts is queued as one `RefreshRequest`; a lone post
keeps its own `CheckRequest` (`GET /posts/{id}`).

How many posts of the workspace a window holds is what the relay knows of it: the creation moments
of every post it keeps a watch of, hot or finished (`WatchIndex.creation_moments`). In discover mode,
once a walk has indexed the workspace's history (`DiscoverState.history_indexed`), that is every post
of the workspace, so a window is bounded by that count alone, however far apart its posts were
created; an import whose posts are half finished is still refreshed 100 workspace posts to a call.
Registered posts may lie among posts nobody registered (and before that walk, among watches stored
by 0.3 without `created_at`), so otherwise a gap of more than `WINDOW_GAP` also starts a new window.

The worker lists the window (`BulkRefresh`). Each post of the answer that the message names is
recorded exactly as a single-post answer would be (`PostCheck.apply_answer`: the same detection,
outbox, events and ids). An answer that comes back full (posts the relay did not know of were
created in the window too) is cut at its oldest post, and the rest of the window listed next, while
two or more of the message's posts remain and at most `MAX_LIST_CALLS` calls. Whatever a list did
not show is checked on its own: a post missing from a complete answer may be gone, and only its own
`GET /posts/{id}` (a 404) ends its watch, never its absence from a list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from genviral_relay.checking.check import CheckOutcome, ListingRun, PostCheck
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import PostSource, RelayState, WatchStore
from genviral_relay.clock import parse_ts, to_milliseconds
from genviral_relay.errors import GenviralError
from genviral_relay.models.domain import CreatedWindow, DueWatch, WatchRecord
from genviral_relay.models.messages import RefreshRequest
from genviral_relay.models.upstream import PAGE_LIMIT
from genviral_relay.observability import Metric, emit
from genviral_relay.polling.in_flight import CheckClaims
from genviral_relay.polling.ports import WatchIndex
from genviral_relay.rules.backpressure import DueGroup

WINDOW_GAP = timedelta(minutes=10)
"""Registered mode: posts created further apart than this are not listed together, as posts nobody
registered may have been created between them and would fill the answer."""
MAX_WINDOW_READS = 200
"""Per tick: the created index is read once per window formed; past this many (hot posts scattered
over a workspace of very many), the rest are grouped as registered mode groups them."""
MAX_LIST_CALLS = 5
"""Per message: a window this crowded with other posts is cheaper to check post by post."""
TIME_RESERVE = timedelta(seconds=15)
"""The checks of what a list did not show stop when the invocation has less than this left; those
posts stay due and are queued again."""


@dataclass(frozen=True)
class TickGroups:
    """The due posts of a tick as messages: groups, and the window of each group of two or more posts."""

    groups: list[DueGroup]
    windows: dict[DueGroup, CreatedWindow]


class HotWindows:
    """The poller's half: group the due posts by when Genviral created them."""

    def __init__(self, *, store: WatchStore, index: WatchIndex, discover: RelayState | None = None) -> None:
        """`discover`: discover mode's state, where the store watches every post of the workspace once
        a walk has indexed its history (None: registered mode)."""
        self._store = store
        self._index = index
        self._discover = discover
        self._history_indexed = False
        """Once true it stays so: read until then, then never again in this execution environment."""

    def group(self, due: Sequence[DueWatch]) -> TickGroups:
        if len(due) < 2:
            return TickGroups([(watch,) for watch in due], {})
        every_post_known = self._every_post_known()
        # The due index holds no `created_at`: one read per 100 due watches, against 100 Genviral calls.
        watches = self._store.get_many([watch.post_id for watch in due])
        dated: list[tuple[datetime, DueWatch]] = []
        groups: list[DueGroup] = []
        for watch in due:
            created = _created_at(watches.get(watch.post_id))
            if created is None:
                groups.append((watch,))  # not watching (flushing its outbox), or stored by an earlier release
            else:
                dated.append((created, watch))
        dated.sort(key=lambda pair: (pair[0], pair[1].post_id))
        windows: dict[DueGroup, CreatedWindow] = {}
        reads = 0
        start = 0
        while start < len(dated):
            may_read = reads < MAX_WINDOW_READS
            end = self._blind_end(dated, start, gap_rule=not (every_post_known and may_read))
            if end - start > 1 and may_read:
                reads += 1
                end = self._known_end(dated, start, end)
            group = tuple(watch for _, watch in dated[start:end])
            groups.append(group)
            if len(group) > 1:
                windows[group] = CreatedWindow(since=dated[start][0], until=dated[end - 1][0])
            start = end
        return TickGroups(groups, windows)

    def _every_post_known(self) -> bool:
        if self._discover is not None and not self._history_indexed:
            state = self._discover.discover_state()
            self._history_indexed = state is not None and state.history_indexed
        return self._history_indexed

    @staticmethod
    def _blind_end(dated: Sequence[tuple[datetime, DueWatch]], start: int, *, gap_rule: bool) -> int:
        """Where the window from `dated[start]` ends by the hot posts alone: 100 of them, or the gap rule."""
        end = start + 1
        while end < len(dated) and end - start < PAGE_LIMIT:
            if gap_rule and dated[end][0] - dated[end - 1][0] > WINDOW_GAP:
                break
            end += 1
        return end

    def _known_end(self, dated: Sequence[tuple[datetime, DueWatch]], start: int, end: int) -> int:
        """`end`, or sooner where the window would hold more than 100 posts the relay knows of."""
        known = self._index.creation_moments(dated[start][0], dated[end - 1][0], limit=PAGE_LIMIT + 1)
        if len(known) <= PAGE_LIMIT:
            return end
        first_beyond = known[PAGE_LIMIT]  # the 101st known post: the window must end before it
        if first_beyond <= dated[start][0]:
            # Over 100 posts created in the first post's millisecond: no window is smaller than that instant.
            first_beyond = dated[start][0] + timedelta(milliseconds=1)
        return next((index for index in range(start + 1, end) if dated[index][0] >= first_beyond), end)


def _created_at(watch: WatchRecord | None) -> datetime | None:
    if watch is None or not watch.watching:
        return None
    created = parse_ts(watch.created_at)
    return to_milliseconds(created) if created is not None else None  # as the created index holds it


@dataclass
class RefreshReport(ListingRun):
    list_calls: int = 0
    listed: int = 0
    """Posts recorded from a list answer."""
    skipped: int = 0
    """Posts a later check covers already (duplicates)."""
    outcomes: list[CheckOutcome] = field(default_factory=list)
    error: GenviralError | None = None


class BulkRefresh:
    """The worker's half: one `RefreshRequest`."""

    def __init__(
        self, *, check: PostCheck, source: PostSource, pause: GenviralPause, claims: CheckClaims | None = None
    ) -> None:
        self._check = check
        self._source = source
        self._pause = pause
        self._claims = claims

    def run(
        self,
        request: RefreshRequest,
        watches: dict[str, WatchRecord],
        *,
        time_left: Callable[[], timedelta] | None = None,
    ) -> RefreshReport:
        """`watches`: the stored watches of the batch (read once for all its messages)."""
        report = RefreshReport()
        hot: dict[str, WatchRecord] = {}
        for post_id in request.post_ids:
            watch = watches.get(post_id)
            if watch is None:
                continue  # no longer watched
            if not watch.watching:
                report.outcomes.append(self._check.check_watch(post_id, watch))  # flushes, asks Genviral nothing
                continue
            if self._claims is not None:
                admission = self._claims.admit(post_id, watch, request.queued_at)
                if not admission.check or admission.watch is None:
                    report.skipped += 1
                    continue
                watch = admission.watch
            hot[post_id] = watch
        if len(hot) >= 2:
            self._list(CreatedWindow(since=request.since, until=request.until), hot, report)
        if report.error is None:
            # What no list showed: its own answer decides (a 404 ends the watch; absence never does).
            for post_id, watch in hot.items():
                if report.refused or (time_left is not None and time_left() < TIME_RESERVE):
                    break
                report.outcomes.append(self._check.check_watch(post_id, watch))
        if report.skipped:
            emit(Metric.DUPLICATE_CHECKS_SKIPPED, report.skipped)
        emit(Metric.BULK_REFRESH_CALLS, report.list_calls)
        emit(Metric.POSTS_REFRESHED, report.listed)
        return report

    def _list(self, window: CreatedWindow, hot: dict[str, WatchRecord], report: RefreshReport) -> None:
        """Record what the window's answers show of `hot`, removing it from `hot`."""
        while len(hot) >= 2 and report.list_calls < MAX_LIST_CALLS:
            try:
                page = self._source.posts_created(window.since, window.until, limit=PAGE_LIMIT)
            except GenviralError as error:
                report.error = error
                self._pause.failed(error, "Bulk refresh deferred; its posts stay due")
                return
            report.list_calls += 1
            for post in page.posts:
                watch = hot.pop(post.id, None)
                if watch is not None:
                    report.outcomes.append(self._check.apply_answer(post, watch))
                    report.listed += 1
            if page.size < PAGE_LIMIT:
                return  # complete: what it did not show is checked on its own
            oldest = min((moment for post in page.posts if (moment := parse_ts(post.created_at))), default=None)
            if oldest is None or oldest >= window.until:
                return  # a full page within one instant: no list can go further
            window = CreatedWindow(since=window.since, until=oldest)  # inclusive: the instant at the cut again
