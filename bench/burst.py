"""`make bench-burst`: many posts due in the same minute, and Genviral answering slowly.

The calm week (bench/polling.py) spreads its posts over six days; this is the hour that matters. A
campaign of posts is due at 09:00, created by one bulk import (within seconds) or at scattered times
over the week before (among the workspace's other posts); each post's account posts (or fails) within
three minutes of 09:00. The real poller tick, worker batches and checks run against the Genviral
emulator (on loopback) and the in-memory store, on a simulated clock:

- Genviral takes `latency` seconds of simulated time per answer (300 ms or 3 s), and answers 429 to a
  request above 10 in flight (its concurrency guidance);
- the fleet is the template's: GenviralMaxConcurrency (4) checks at a time, as 2 worker invocations
  of 2 threads, each taking batches of 10 messages (modelled as 4 lanes taking 5 messages each);
- the work queue counts what waits and what is being worked on, as SQS's approximate counts do;
- the poller ticks every minute.

Printed per run: Genviral calls (a list call that recorded none of its message's posts, a page of the
workspace's other posts, is counted apart), queue depth, duplicate Genviral calls (a `GET /posts/{id}`
of a post that a check which started after its message was queued already covered, by a single-post
call or a list) and duplicate messages skipped,
detection lag p50/p95 (from the account's change to its publish), and the ratio to a fixed-rate
poller (every unfinished post every tick). The same bursts also run on the relay as it was before
(no claims, no backpressure, no bulk refresh) for comparison.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import io
import json
import math
import random
import sys
import time
import uuid
import warnings
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from bench.polling import percentile
from genviral_relay import factories
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import EventPublisher, PostPage, PostSource, PublishResult
from genviral_relay.clock import parse_ts, to_milliseconds
from genviral_relay.errors import GenviralRateLimitedError
from genviral_relay.genviral.client import GenviralClient, StaticToken
from genviral_relay.models.events import AccountOutcomeEvent, RelayEvent
from genviral_relay.models.messages import CheckRequest, RefreshRequest, WorkRequest
from genviral_relay.models.upstream import PAGE_LIMIT, Post
from genviral_relay.observability import logger, metrics
from genviral_relay.polling.bulk_refresh import HotWindows
from genviral_relay.polling.ports import WorkQueue
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.work_batch import WorkBatch, WorkItem
from genviral_relay.relay import compose_relay
from genviral_relay.rules.backpressure import Backpressure
from genviral_relay.rules.schedule import PollingPolicy
from local.emulator import GenviralEmulator
from tests.support.doubles import InMemoryDeadLetters, InMemoryStore, SteppingClock

RESULTS = Path(__file__).resolve().parent / "BURST.md"
TOKEN = "gva_live_bench.0123456789abcdef"  # noqa: S105 - the emulator's test key
TICK = timedelta(minutes=1)
DUE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
START = DUE - timedelta(minutes=8)
"""The posts are registered (and checked once) before the simulation starts counting."""
MAX_TICKS = 70
LANES = 4  # GenviralMaxConcurrency, the template's default
MESSAGES_PER_LANE = 5  # a batch of 10 on a worker's 2 threads
GENVIRAL_CONCURRENCY_LIMIT = 10  # 429 above this many requests in flight
STORE_SECONDS = 0.01
"""Simulated time each message costs besides Genviral (the DynamoDB and publish calls)."""
BACKGROUND_POSTS = 2000
"""The workspace's other posts, created over the week before: scattered windows list them too."""


@dataclass(frozen=True)
class Scenario:
    posts: int
    latency: float
    created: Literal["one import", "scattered"]
    relay: Literal["now", "before"] = "now"
    watching: Literal["registered", "discover"] = "registered"
    lanes: int = LANES
    """Checks at a time (GenviralMaxConcurrency)."""

    @property
    def name(self) -> str:
        extras = [
            *(["discover mode"] if self.watching == "discover" else []),
            *([f"GenviralMaxConcurrency {self.lanes}"] if self.lanes != LANES else []),
            *(["relay before"] if self.relay == "before" else []),
        ]
        return ", ".join([f"{self.posts} posts", self.created, f"{self.latency * 1000:.0f} ms", *extras])


# ---------------------------------------------------------------------- the simulated services
class SimulatedQueue(WorkQueue):
    """SQS as the poller and the lanes see it: a FIFO of messages; `backlog` counts those waiting and
    those a lane is working on at the moment of the call (SQS's approximate counts)."""

    def __init__(self, clock: SteppingClock) -> None:
        self._clock = clock
        self.waiting: deque[WorkItem] = deque()
        self.working: list[tuple[datetime, datetime, int]] = []  # (taken at, done at, messages)
        self._sequence = 0

    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        batch = list(requests)
        for request in batch:
            self._sequence += 1
            self.waiting.append(WorkItem(f"m{self._sequence}", request, correlation_id))
        return len(batch)

    def backlog(self) -> int | None:
        now = self._clock()
        return len(self.waiting) + sum(count for taken, done, count in self.working if taken <= now < done)

    def take(self, count: int) -> list[WorkItem]:
        return [self.waiting.popleft() for _ in range(min(count, len(self.waiting)))]


class SlowGenviral(PostSource):
    """The Genviral client on the emulator, each answer taking `latency` seconds of the simulated clock,
    with Genviral's concurrency guidance enforced; it also tells duplicate calls apart."""

    def __init__(
        self,
        inner: GenviralClient,
        clock: SteppingClock,
        latency: float,
        *,
        in_flight: list[tuple[datetime, datetime]] | None = None,
    ) -> None:
        """`in_flight`: the requests Genviral's limit counts, shared with other keys' clients (None: this key's)."""
        self._inner = inner
        self._clock = clock
        self._latency = timedelta(seconds=latency)
        self._intervals: list[tuple[datetime, datetime]] = [] if in_flight is None else in_flight
        self.calls: list[tuple[datetime, str]] = []  # (when, "get" | "list" | "sweep")
        self.rate_limited = 0
        self.duplicates: list[datetime] = []
        self.batch: Sequence[WorkItem] = ()
        """The messages of the batch being worked on (set by the lane)."""
        self._last_look: dict[str, datetime] = {}
        self.timed = True
        """False while the posts are registered: that happens before the burst, not in its minutes."""

    def _call(self, kind: str) -> datetime:
        start = self._clock.now
        if not self.timed:
            return start
        self._intervals[:] = [(begin, end) for begin, end in self._intervals if end > start]
        in_flight = sum(1 for begin, end in self._intervals if begin <= start < end)
        self._intervals.append((start, start + self._latency))
        self.calls.append((start, kind))
        self._clock.now = start + self._latency
        if in_flight >= GENVIRAL_CONCURRENCY_LIMIT:
            self.rate_limited += 1
            raise GenviralRateLimitedError("too many requests in flight")
        return start

    def _queued_for(self, post_id: str) -> datetime | None:
        moments = [
            item.request.queued_at
            for item in self.batch
            if (isinstance(item.request, CheckRequest) and item.request.post_id == post_id)
            or (isinstance(item.request, RefreshRequest) and post_id in item.request.post_ids)
        ]
        return max((moment for moment in moments if moment is not None), default=None)

    def _looked(self, post_id: str, at: datetime) -> bool:
        """Record a look at the post; True when a look that started after its message was queued covered it."""
        queued = self._queued_for(post_id)
        duplicate = queued is not None and post_id in self._last_look and self._last_look[post_id] >= queued
        if queued is not None:
            self._last_look[post_id] = at
        return duplicate

    def get_post(self, post_id: str) -> Post:
        started = self._call("get")
        if self._looked(post_id, started):
            self.duplicates.append(started)
        return self._inner.get_post(post_id)

    def posts_in_status(self, status: str, *, limit: int) -> PostPage:
        self._call("sweep")
        return self._inner.posts_in_status(status, limit=limit)

    def posts_created(self, since: datetime, until: datetime, *, limit: int) -> PostPage:
        # Discover mode's listing of new posts: its windows start after every post of the bursts was created.
        discovering = since > DUE - timedelta(hours=1)
        started = self._call("discover" if discovering else "list")
        page = self._inner.posts_created(since, until, limit=limit)
        if discovering or not self.timed:
            return page
        asked = {
            post_id
            for item in self.batch
            if isinstance(item.request, RefreshRequest)
            for post_id in item.request.post_ids
        }
        looks = [self._looked(post.id, started) for post in page.posts if post.id in asked]
        if not looks or all(looks):
            # A page of the workspace's other posts (and the instant the last page was cut at): it was listed
            # for the message's posts not shown yet, so it is no duplicate, but it recorded nothing.
            self.calls[-1] = (started, "list, nothing new")
        return page


class DetectionClock(EventPublisher):
    """A target that records when each event reached it."""

    def __init__(self, target: Literal["sns", "eventbridge"], clock: SteppingClock) -> None:
        self.target = target
        self._clock = clock
        self.detected: dict[str, tuple[datetime, AccountOutcomeEvent]] = {}

    def publish(self, events: Sequence[RelayEvent]) -> PublishResult:
        for event in events:
            if isinstance(event, AccountOutcomeEvent):  # the transitions; completions and delays are not timed
                self.detected.setdefault(event.event_id, (self._clock.now, event))
        return PublishResult(published={event.event_id for event in events})


# ---------------------------------------------------------------------- one run
@dataclass
class TickFigures:
    at: datetime
    due: int
    queued: int
    deferred: int
    depth: int
    calls: int = 0
    floor: int = 0
    """The fewest Genviral calls that look at each due post once (a list answer holds 100 posts)."""
    duplicates: int = 0
    skipped: int = 0
    lags: list[float] = field(default_factory=list)


@dataclass
class Run:
    scenario: Scenario
    ticks: list[TickFigures]
    calls: Counter[str]
    duplicates: int
    skipped: int
    rate_limited: int
    lags: list[float]
    transitions: int
    detected: int
    baseline_calls: int
    wall_seconds: float
    failures: int = 0
    """Checks that failed unexpectedly (CheckFailures): none, or the figures mean nothing."""

    @property
    def genviral_calls(self) -> int:
        return sum(self.calls.values())

    def calls_per_100_hot(self) -> tuple[float, float, float]:
        """Genviral calls per 100 due posts: over the whole burst, in the worst tick with 100 or more due,
        and that tick's floor."""
        busy = [tick for tick in self.ticks if tick.due >= 100]
        hot = sum(tick.due for tick in self.ticks)
        whole = 100 * sum(tick.calls for tick in self.ticks) / hot if hot else math.nan
        worst = max(busy, key=lambda tick: tick.calls / tick.due, default=None)
        if worst is None:
            return whole, math.nan, math.nan
        return whole, 100 * worst.calls / worst.due, 100 * worst.floor / worst.due


def plan_burst(scenario: Scenario, rng: random.Random) -> list[tuple[datetime, str, timedelta]]:
    """(created_at, outcome, after 09:00) per post."""
    plans = []
    for index in range(scenario.posts):
        if scenario.created == "one import":
            created = DUE - timedelta(hours=2) + index * timedelta(milliseconds=20)
        else:
            created = to_milliseconds(DUE - timedelta(days=7) + timedelta(seconds=rng.uniform(0, 7 * 86400 - 3 * 3600)))
        outcome = "posted" if rng.random() < 0.92 else "failed"
        plans.append((created, outcome, timedelta(seconds=rng.uniform(5, 180))))
    return plans


def ids(rng: random.Random) -> dict[str, Any]:
    """A post's id and its account's, from the run's seed: the order of the due index (by id within a moment)
    and so every figure is the same run after run."""
    post_id, account_id = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2))
    return {"post_id": post_id, "accounts": [account_id]}


def floor_calls(due: Sequence[datetime], workspace: Sequence[datetime]) -> int:
    """The fewest calls that look at each of the `due` posts (creation moments, sorted) once: windows of
    consecutive due posts holding at most a page of the workspace's posts, or a post on its own."""
    calls = start = 0
    while start < len(due):
        first = bisect.bisect_left(workspace, due[start])
        beyond = workspace[first + PAGE_LIMIT] if first + PAGE_LIMIT < len(workspace) else None
        start += 1
        while start < len(due) and (beyond is None or due[start] < beyond):
            start += 1
        calls += 1
    return calls


def simulate(scenario: Scenario, seed: int) -> Run:
    """One burst; what the relay prints (log lines, EMF documents) is kept out of the report."""
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        run = _simulate(scenario, seed)
        metrics.flush_metrics()
    run.skipped = _emitted(printed.getvalue(), "DuplicateChecksSkipped")
    run.failures = _emitted(printed.getvalue(), "CheckFailures")
    return run


def _simulate(scenario: Scenario, seed: int) -> Run:
    started = time.monotonic()
    clock = SteppingClock(START - timedelta(days=8))
    factories.reset()
    with GenviralEmulator(tokens=[TOKEN], clock=clock) as emulator:
        world = Burst(scenario, random.Random(seed), emulator, clock)
        world.register()
        world.run()
        return world.figures(time.monotonic() - started)


class Burst:
    """One burst on the emulator: the workspace, the relay (the real poller tick and worker batches on the
    in-memory store), the queue and the fleet's lanes, on one simulated clock."""

    def __init__(
        self, scenario: Scenario, rng: random.Random, emulator: GenviralEmulator, clock: SteppingClock
    ) -> None:
        self.scenario = scenario
        self.emulator = emulator
        self.clock = clock
        named = random.Random(scenario.name)  # the ids: apart from `rng`, so the plans stay the seed's
        background = []
        for index in range(BACKGROUND_POSTS):  # the workspace's other posts, long finished
            # Over the week before, as the scattered bursts, and all before discover mode's baseline.
            created = DUE - timedelta(days=7) + timedelta(seconds=index * (7 * 86400 - 3 * 3600) / BACKGROUND_POSTS)
            background.append(created)
            other = emulator.create_post(scheduled_at=created + timedelta(hours=1), created_at=created, **ids(named))
            emulator.mark_posted(other, emulator.account_ids(other)[0], at=created + timedelta(hours=1))
        plans = plan_burst(scenario, rng)
        self.post_ids = [
            emulator.create_post(scheduled_at=DUE, created_at=created, **ids(named)) for created, _, _ in plans
        ]
        self.changes = sorted(
            (DUE + after, post_id, outcome) for post_id, (_, outcome, after) in zip(self.post_ids, plans, strict=True)
        )
        self.applied = 0
        self.store = InMemoryStore()
        self.source = SlowGenviral(
            GenviralClient(emulator.base_url, StaticToken(TOKEN), sleep=self._wait, clock=clock),
            clock,
            scenario.latency,
        )
        self.target = DetectionClock("sns", clock)
        self.path = compose_relay(
            store=self.store,
            state=self.store,
            source=self.source,
            publishers=[self.target, DetectionClock("eventbridge", clock)],
            dead_letters=InMemoryDeadLetters(),
            clock=clock,
            policy=PollingPolicy(tick=TICK),
        )
        self.queue = SimulatedQueue(clock)
        now = scenario.relay == "now"
        discover = scenario.watching == "discover"
        # Discover mode's baseline is the start: what the walk finds then is recorded silently.
        self.discovery = self.path.discovery(lambda _now: START) if discover else None
        self.tick = PollTick(
            index=self.store,
            pause=GenviralPause(self.store, clock),
            queue=self.queue,
            clock=clock,
            discover=discover,
            backpressure=Backpressure(tick=TICK) if now else None,
            windows=HotWindows(store=self.store, index=self.store, discover=self.store if discover else None)
            if now
            else None,
        )
        # As before: every message's post checked on its own.
        self.batch = (
            self.path.work_batch(discovery=self.discovery, accounts=False)
            if now
            else WorkBatch(check=self.path.checker, store=self.store, pause=self.path.pause, sweep=self.path.sweep)
        )
        self.created_at = dict(zip(self.post_ids, (created for created, _, _ in plans), strict=True))
        self.workspace = sorted([*background, *self.created_at.values()])
        """When each post of the workspace was created: a tick's floor of list calls counts them."""
        self.ticks: list[TickFigures] = []
        self.end = START + MAX_TICKS * TICK

    def register(self) -> None:
        self.clock.now = START
        self.source.timed = False
        if self.discovery is not None:
            while not self.discovery.run().walk_complete:  # the first walk, over the workspace's history
                pass
        else:
            for post_id in self.post_ids:
                self.path.checker.check(post_id, trigger="register")
        self.source.timed = True

    def _wait(self, seconds: float) -> None:
        """The client's back-off (after a 429) passes on the simulated clock."""
        self.clock.now += timedelta(seconds=seconds)

    def run(self) -> None:
        lanes = [START] * self.scenario.lanes
        next_tick = START
        while next_tick <= self.end and not (self.ticks and self._finished()):
            lane = min(range(len(lanes)), key=lambda index: lanes[index])
            if self.queue.waiting and lanes[lane] < next_tick:
                lanes[lane] = self._work(lanes[lane])
                continue
            lanes = [max(free, next_tick) for free in lanes]  # idle lanes wait for the tick's messages
            self._tick(next_tick)
            next_tick += TICK

    def _work(self, at: datetime) -> datetime:
        """One lane takes a batch at `at`; answers when it is done."""
        self.clock.now = at
        self._upstream()
        items = self.queue.take(MESSAGES_PER_LANE)
        self.source.batch = items
        self.batch.run(items)
        self.clock.now += STORE_SECONDS * len(items) * timedelta(seconds=1)
        self.queue.working.append((at, self.clock.now, len(items)))
        return self.clock.now

    def _tick(self, at: datetime) -> None:
        self.clock.now = at
        self._upstream()
        due = list(self.store.due_post_ids(at))
        depth = self.queue.backlog() or 0
        report = self.tick.run()
        figures = TickFigures(at, len(due), report.queued, report.deferred, depth + report.queued)
        figures.floor = floor_calls(sorted(self.created_at[post_id] for post_id in due), self.workspace)
        self.ticks.append(figures)

    def _upstream(self) -> None:
        self.applied = apply_changes(self.emulator, self.changes, self.applied, self.clock.now)

    def _finished(self) -> bool:
        return (
            self.applied == len(self.changes)
            and len(self.target.detected) >= len(self.changes)
            and not self.queue.waiting
        )

    def figures(self, wall_seconds: float) -> Run:
        """Per tick: what happened between it and the next one."""
        for figures, following in zip(self.ticks, [*self.ticks[1:], None], strict=True):
            until = following.at if following is not None else self.end + TICK
            figures.calls = sum(1 for at, _ in self.source.calls if figures.at <= at < until)
            figures.duplicates = sum(1 for at in self.source.duplicates if figures.at <= at < until)
            figures.lags = [
                (detected - _changed_at(event)).total_seconds()
                for detected, event in self.target.detected.values()
                if figures.at <= detected < until
            ]
        finished_at = {post_id: at for at, post_id, _ in self.changes}
        return Run(
            scenario=self.scenario,
            ticks=self.ticks,
            calls=Counter(kind for _, kind in self.source.calls),
            duplicates=len(self.source.duplicates),
            skipped=0,
            rate_limited=self.source.rate_limited,
            lags=[lag for figures in self.ticks for lag in figures.lags],
            transitions=len(self.changes),
            detected=len(self.target.detected),
            # A fixed-rate poller: every post every tick from registration until its account is final.
            baseline_calls=sum(math.ceil((finished_at[p] - START) / TICK) + 1 for p in self.post_ids),
            wall_seconds=wall_seconds,
        )


def apply_changes(
    emulator: GenviralEmulator, changes: Sequence[tuple[datetime, str, str]], applied: int, now: datetime
) -> int:
    """Genviral's changes (at, post id, outcome; sorted) from the `applied`-th up to `now`; answers how many are."""
    while applied < len(changes) and changes[applied][0] <= now:
        at, post_id, outcome = changes[applied]
        account_id = emulator.account_ids(post_id)[0]
        if outcome == "posted":
            emulator.mark_posted(post_id, account_id, at=at)
        else:
            emulator.mark_failed(post_id, account_id, at=at, error_message="rejected by the platform")
        applied += 1
    return applied


def _changed_at(event: AccountOutcomeEvent) -> datetime:
    moment = parse_ts(event.published_at or event.last_attempted_at)
    assert moment is not None
    return moment


def _emitted(printed: str, metric: str) -> int:
    """The sum of one metric over the EMF documents a run printed."""
    total = 0.0
    for line in printed.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            value: Any = json.loads(line).get(metric, 0)
            total += sum(value) if isinstance(value, list) else value
    return int(total)


# ---------------------------------------------------------------------- report
def summary_row(run: Run) -> str:
    lag50, lag95 = percentile(run.lags, 0.5), percentile(run.lags, 0.95)
    peak_depth = max((tick.depth for tick in run.ticks), default=0)
    whole, worst, floor = run.calls_per_100_hot()
    undetected = run.transitions - run.detected
    return (
        f"| {run.scenario.name} | {run.genviral_calls} ({_counts(run.calls)}) | "
        f"{run.genviral_calls / max(run.baseline_calls, 1):.1%} | {whole:.1f} / {worst:.1f} ({floor:.1f}) | "
        f"{peak_depth} | "
        f"{run.duplicates} / {run.skipped} | {lag50:.0f} s / {lag95:.0f} s ({lag95 / 60:.1f} ticks) | "
        f"{undetected} | {run.rate_limited} |"
    )


def goals(runs: list[Run]) -> list[str]:
    """The issue's goals, against these runs (the relay as it is now)."""
    now = [run for run in runs if run.scenario.relay == "now"]
    if not now:
        return []
    duplicates = sum(run.duplicates for run in now)
    imports = [run for run in now if run.scenario.created == "one import"]
    lines = ["Goals, on the relay as it is now:", ""]
    lines.append(f"- 0 duplicate Genviral calls: {duplicates} in all runs.")
    if imports:
        whole = [run.calls_per_100_hot()[0] for run in imports]
        worst_run = max(imports, key=lambda run: run.calls_per_100_hot()[1])
        _, worst, floor = worst_run.calls_per_100_hot()
        lines.append(
            f"- One-import bursts, at most 2 Genviral calls per 100 hot posts per tick: {min(whole):.1f} to "
            f"{max(whole):.1f} over a whole burst; the worst single tick {worst:.1f} ({worst_run.scenario.name}), "
            f"where the floor is {floor:.1f}. Below half of the import still due, no relay can meet 2: a list "
            "answer holds 100 posts of the workspace, finished or not, so the floor is the import's size / 100 "
            "calls however few of its posts are hot."
        )
    for run in now:
        if (run.scenario.posts, run.scenario.latency, run.scenario.lanes) == (1000, 0.3, LANES):
            lag95 = percentile(run.lags, 0.95)
            lines.append(
                f"- p95 lag within 2 ticks at 1,000 posts and 300 ms, {run.scenario.created}, "
                f"{run.scenario.watching}: {lag95:.0f} s ({lag95 / 60:.1f} ticks)."
            )
    late = [run for run in now if percentile(run.lags, 0.95) > 120]
    lines.append(
        "- Beyond 2 ticks of p95 lag: "
        + ("; ".join(f"{run.scenario.name} ({percentile(run.lags, 0.95) / 60:.1f} ticks)" for run in late) or "none")
        + "."
    )
    return lines


def tick_table(run: Run) -> list[str]:
    rows = [
        f"### Per tick: {run.scenario.name}",
        "",
        "| tick | due | queued | deferred | queue depth | Genviral calls (floor) | duplicate calls | lag p50 / p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for figures in run.ticks:
        if not (figures.due or figures.calls or figures.lags):
            continue
        lag = f"{percentile(figures.lags, 0.5):.0f} s / {percentile(figures.lags, 0.95):.0f} s" if figures.lags else ""
        rows.append(
            f"| {figures.at:%H:%M} | {figures.due} | {figures.queued} | {figures.deferred} | {figures.depth} | "
            f"{figures.calls} ({figures.floor}) | {figures.duplicates} | {lag} |"
        )
    return [*rows, ""]


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counter.most_common())


DISCOVER_RUNS: tuple[tuple[Literal["one import", "scattered"], int], ...] = (
    ("one import", 1000),
    ("scattered", 1000),
    ("scattered", 5000),
)
SCENARIOS = (
    [
        Scenario(posts, latency, created)
        for latency in (0.3, 3.0)
        for created in ("one import", "scattered")
        for posts in (100, 1000, 5000)
    ]
    + [
        Scenario(posts, latency, created, watching="discover")
        for latency in (0.3, 3.0)
        for created, posts in DISCOVER_RUNS
    ]
    + [
        # A deployment that raised the cap past Genviral's guidance: its 429s, and how the relay takes them.
        Scenario(1000, 0.3, "scattered", lanes=16),
    ]
    + [Scenario(1000, latency, created, "before") for latency in (0.3, 3.0) for created in ("one import", "scattered")]
)


def main() -> int:
    parser = argparse.ArgumentParser(description="genviral-relay burst benchmark")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--posts", type=int, nargs="*", help="only the bursts of these sizes")
    parser.add_argument("--only", help="only the runs whose name holds this text")
    parser.add_argument("--no-write", action="store_true", help="print only, leave bench/BURST.md alone")
    parser.add_argument(
        "--workspaces",
        type=int,
        default=1,
        metavar="N",
        help="only the bursts shared out among N workspaces of one stack, each beside the same posts in one "
        "workspace: calls and lag per workspace (its section of BURST.md replaced)",
    )
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    logger.setLevel("ERROR")  # the relay's warnings about deferred checks would drown the report
    if arguments.workspaces > 1:
        return _several_workspaces(arguments.workspaces, arguments.seed, arguments.only, write=not arguments.no_write)
    scenarios = [
        s
        for s in SCENARIOS
        if (not arguments.posts or s.posts in arguments.posts) and (not arguments.only or arguments.only in s.name)
    ]
    runs = []
    for scenario in scenarios:
        runs.append(simulate(scenario, arguments.seed))
        print(f"{scenario.name}: {runs[-1].wall_seconds:.0f} s", file=sys.stderr)
    lines = [
        "# Burst benchmark",
        "",
        f"Command: `make bench-burst` (`python -m bench.burst --seed {arguments.seed}`), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {sum(run.wall_seconds for run in runs):.0f} s of wall time.",
        "",
        "Each run: a campaign due at 09:00 (one account per post: 92% posted, 8% failed, within 3 minutes "
        f"of 09:00), among {BACKGROUND_POSTS} older posts of the workspace; registered before 08:52, then "
        f"ticks from 08:52 until every transition is published (at most {MAX_TICKS} ticks). "
        f"Fleet: {LANES} checks at a time (GenviralMaxConcurrency), Genviral answering 429 above "
        f"{GENVIRAL_CONCURRENCY_LIMIT} in flight. 'relay before': no claims, no backpressure, no bulk refresh.",
        "",
        "| run | Genviral calls | vs fixed-rate | calls per 100 hot posts: whole burst / worst tick (its floor) "
        "| peak queue depth | duplicate calls / duplicate messages skipped | detection lag p50 / p95 "
        "| not detected at the end | 429s |",
        "|---|---|---|---|---|---|---|---|---|",
        *(summary_row(run) for run in runs),
        "",
        *goals(runs),
        "",
        *(line for run in runs for line in tick_table(run)),
    ]
    report = "\n".join(lines)
    print(report)
    if not arguments.no_write and not arguments.posts and not arguments.only:
        kept = RESULTS.read_text().partition(WORKSPACES_SECTION)[1:] if RESULTS.exists() else ("", "")
        RESULTS.write_text(report.rstrip("\n") + "\n" + ("\n" + "".join(kept) if kept[0] else ""))
    return 0


WORKSPACES_SECTION = "## Several workspaces in one stack"


def _several_workspaces(workspaces: int, seed: int, only: str | None, *, write: bool) -> int:
    """The section of BURST.md for `--workspaces N`, after the single-workspace runs."""
    from bench.burst_workspaces import scenarios, section, simulate_workspaces

    runs = []
    for scenario in scenarios(workspaces):
        if only and only not in scenario.name:
            continue
        pair = simulate_workspaces(scenario, seed), simulate_workspaces(scenario.in_one_workspace(), seed)
        runs.append(pair)
        print(f"{scenario.name}: {pair[0].wall_seconds:.0f} s (control {pair[1].wall_seconds:.0f} s)", file=sys.stderr)
    text = "\n".join(section(workspaces, seed, runs))
    print(text)
    if write and not only:
        current = RESULTS.read_text() if RESULTS.exists() else ""
        kept = current.split(WORKSPACES_SECTION)[0].rstrip("\n")
        RESULTS.write_text(f"{kept}\n\n{text}" if kept else text)
    clean = all(
        (run.failures, run.crossed, sum(f.transitions - f.detected for f in run.workspaces)) == (0, 0, 0)
        for pair in runs
        for run in pair
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
