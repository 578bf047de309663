"""Discover mode: watch every post of the workspace without anyone registering it.

Genviral's `GET /posts` has no cursor and answers at most 100 posts, filtered by `created_at`
(`since`/`until`, both inclusive). So the walk lists `created_at` windows, newest first, and halves
any window that comes back full until every window is below the cap. How far it has walked is kept
in the table: each tick lists only [listed_until - look-back, now], and a walk too long for one
run (the first one, over the workspace's whole history) resumes at the next tick. The high-water
mark moves to the moment a walk *started*, so a post created while it ran is in the next window;
the look-back covers a post whose `created_at` is a little older than the moment it became listable.

What each listed post becomes:
- not watched, created before the baseline (`DiscoverSince`, fixed on the first run): watched
  with its current states recorded silently;
- not watched, newer: watched like a registration (events for accounts already final);
- watched: if the list shows something the watch has not seen, it is checked now.
Events always come from the single-post answer (see `Discovery._adopt`).

The table's created index then holds every post of the workspace, which lets the poller size its
bulk refreshes by that count alone (`polling/bulk_refresh.py`). Watches stored by 0.3 carry no
`created_at`, so after an upgrade the next walk lists the whole history once more and gives each
of them its `created_at` (one write each); `history_indexed` says when that walk is done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from genviral_relay.checking.check import CheckOutcome, ListingRun, PostCheck
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import PostPage, PostSource, RelayState, WatchStore
from genviral_relay.clock import Clock, parse_ts
from genviral_relay.errors import GenviralError, StateConflictError
from genviral_relay.models.domain import FINAL_STATUSES, CreatedWindow, DiscoverState, WatchRecord
from genviral_relay.models.upstream import PAGE_LIMIT, Post
from genviral_relay.observability import Metric, emit, logger

LOOK_BACK = timedelta(minutes=10)
CLOCK_SKEW = timedelta(minutes=5)
"""Windows end this far past the relay's clock, in case Genviral's clock is ahead."""
MAX_LIST_CALLS = 20
"""Per run: a longer walk resumes at the next tick (the first run may have a long history to list)."""
HISTORY_START = datetime(1970, 1, 1, tzinfo=UTC)
SMALLEST_WINDOW = timedelta(milliseconds=1)  # Genviral's timestamps carry milliseconds
TIME_RESERVE = timedelta(seconds=25)
"""A run stops taking on posts when its invocation has less than this left (for the batch's own
checks and the save); what it did not reach is listed again next tick."""


@dataclass
class DiscoverReport(ListingRun):
    list_calls: int = 0
    windows_split: int = 0
    posts_listed: int = 0
    walk_complete: bool = False
    outcomes: list[CheckOutcome] = field(default_factory=list)
    error: GenviralError | None = None


class Discovery:
    def __init__(
        self,
        *,
        check: PostCheck,
        source: PostSource,
        store: WatchStore,
        state: RelayState,
        pause: GenviralPause,
        clock: Clock,
        baseline_before: Callable[[datetime], datetime],
        max_list_calls: int = MAX_LIST_CALLS,
    ) -> None:
        """`baseline_before(now)`: the `DiscoverSince` moment, resolved once, on the first run."""
        self._check = check
        self._source = source
        self._store = store
        self._state = state
        self._pause = pause
        self._clock = clock
        self._baseline_before = baseline_before
        self._max_list_calls = max_list_calls

    def run(self, *, time_left: Callable[[], timedelta] | None = None) -> DiscoverReport:
        """`time_left`: what remains of the invocation (a first walk can find thousands of posts)."""
        now = self._clock()
        stored = self._state.discover_state()
        state = stored or DiscoverState(version=0, baseline_before=self._baseline_before(now))
        if stored is None:
            logger.info(
                "Discover mode starts; posts created before the baseline are recorded silently",
                extra={"baseline_before": state.baseline_before},
            )
        if not state.pending:
            # Until one walk has listed the whole history since 0.4 (the first walk does), watches stored by 0.3
            # lack `created_at`.
            history = not state.history_indexed
            since = HISTORY_START if history or state.listed_until is None else state.listed_until - LOOK_BACK
            state = state.model_copy(
                update={
                    "pending": (CreatedWindow(since=since, until=now + CLOCK_SKEW),),
                    "walk_started_at": now,
                    "walking_history": history,
                }
            )

        report = DiscoverReport()
        pending = list(state.pending)
        seen: set[str] = set()
        while pending and report.list_calls < self._max_list_calls:
            window = pending.pop()
            try:
                page = self._source.posts_created(window.since, window.until, limit=PAGE_LIMIT)
            except GenviralError as error:
                pending.append(window)
                report.error = error
                self._pause.failed(error, "Listing posts failed; the walk resumes next tick")
                break
            report.list_calls += 1
            report.posts_listed += page.size
            halves = self._split(window, report) if page.size >= PAGE_LIMIT else []
            pending.extend(halves)
            # A full page's posts are handled now too: the newest posts need not wait for the halves.
            finished = self._handle(page, state, seen, report, time_left)
            if not finished:
                if not halves:  # else the halves cover what was not reached
                    pending.append(window)
                logger.info("Discover run out of time; it resumes next tick", extra={"windows_left": len(pending)})
                break

        report.walk_complete = not pending
        self._save(state, pending, report.walk_complete, expected_version=stored.version if stored else 0)
        emit(Metric.DISCOVER_LIST_CALLS, report.list_calls)
        return report

    @staticmethod
    def _split(window: CreatedWindow, report: DiscoverReport) -> list[CreatedWindow]:
        """The two halves of a full window, the newer one last (listed next); overlapping bounds are
        harmless since posts are handled once per run and again only if they changed."""
        if window.until - window.since < 2 * SMALLEST_WINDOW:
            logger.error(
                "More than a page of posts created within one millisecond; some may be missed",
                extra={"since": window.since, "until": window.until},
            )
            emit(Metric.DISCOVER_WINDOWS_UNSPLITTABLE)
            return []
        report.windows_split += 1
        middle = window.since + (window.until - window.since) / 2
        return [CreatedWindow(since=window.since, until=middle), CreatedWindow(since=middle, until=window.until)]

    def _handle(
        self,
        page: PostPage,
        state: DiscoverState,
        seen: set[str],
        report: DiscoverReport,
        time_left: Callable[[], timedelta] | None,
    ) -> bool:
        """Adopt or refresh the page's posts into `report`; False when time ran out first."""

        def out_of_time() -> bool:
            return time_left is not None and time_left() < TIME_RESERVE

        # A walk over the history again (after an upgrade) only indexes: a post an earlier walk listed that is
        # not watched now was unwatched through the API.
        walked_before = state.listed_until - LOOK_BACK if state.walking_history and state.listed_until else None

        posts = [post for post in page.posts if post.id not in seen]
        unreadable = [post_id for post_id in page.unreadable_ids if post_id not in seen]
        watches = self._store.get_many([post.id for post in posts] + unreadable)
        outcomes = report.outcomes
        for post in posts:
            if out_of_time():
                return False
            seen.add(post.id)
            watch = watches.get(post.id)
            if watch is None:
                created_at = parse_ts(post.created_at)
                if walked_before is not None and created_at is not None and created_at < walked_before:
                    continue
                silent = created_at is not None and created_at < state.baseline_before
                outcome: CheckOutcome | None = self._adopt(post, silent=silent)
                emit(Metric.POSTS_BASELINED if silent else Metric.POSTS_DISCOVERED)
            else:
                outcome = self._check.check_if_changed(post, watch)
                if outcome is None and watch.created_at is None and post.created_at:
                    self._index(watch, post.created_at)
            if outcome is not None:
                outcomes.append(outcome)
        for post_id in unreadable:
            if out_of_time():
                return False
            seen.add(post_id)
            if post_id not in watches:
                # Its own answer decides; if that is unreadable too, the watch stays due and says why.
                outcomes.append(self._check.check_watch(post_id, None, trigger="register"))
        return True

    def _adopt(self, post: Post, *, silent: bool) -> CheckOutcome:
        """Start watching a post the list showed. `silent` (created before the baseline): its states are
        recorded as they are and nothing is emitted. Otherwise the listed answer is recorded as the
        first sighting when it holds no final account, which saves a call; when it would emit, the
        canonical single-post answer decides instead, as it does for every event."""
        if not silent and any(state.status in FINAL_STATUSES for state in post.accounts.states):
            return self._check.check_watch(post.id, None, trigger="register")
        return self._check.apply_answer(post, None, silent=silent)

    # shim: watch-without-created-at (docs/compatibility.md)
    def _index(self, watch: WatchRecord, created_at: str) -> None:
        """Give a watch stored by 0.3 (no `created_at`) its creation moment, so the created index counts it."""
        with contextlib.suppress(StateConflictError):  # a check saved the watch meanwhile, `created_at` with it
            self._store.save(
                watch.model_copy(update={"created_at": created_at, "version": watch.version + 1}),
                expected_version=watch.version,
                new_events=(),
            )

    def _save(
        self, state: DiscoverState, pending: list[CreatedWindow], complete: bool, *, expected_version: int
    ) -> None:
        saved = state.model_copy(
            update={
                "version": expected_version + 1,
                "pending": tuple(pending),
                "listed_until": state.walk_started_at if complete else state.listed_until,
                "walk_started_at": None if complete else state.walk_started_at,
                "history_indexed": state.history_indexed or (complete and state.walking_history),
                "walking_history": state.walking_history and not complete,
            }
        )
        try:
            self._state.save_discover_state(saved, expected_version=expected_version)
        except StateConflictError:
            # Another run walked at the same time; its progress stands (the posts found here are stored).
            logger.info("Another discover run saved its progress first")
