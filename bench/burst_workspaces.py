"""The burst with several workspaces in one stack (`python -m bench.burst --workspaces 10`).

The campaign of `bench/burst.py`, shared out among N workspaces of one stack: each workspace has its own key, its own
campaign due at 09:00 and its share of the older posts, on one emulator; one table (the in-memory double) seen
through each workspace's view; the poller is the real `WorkspaceTicks` (each workspace's tick pacing on its share
of the one queue); the worker fleet is the template's, shared: `WORKER_MAX_INVOCATIONS` (2) invocations, each taking
a batch of 10 messages and running each workspace's messages of it with that workspace's batch on
`threads_per_worker` (2) threads, as `WorkspaceBatches` does (modelled as those threads starting together and the
invocation done when the slowest ends).

Genviral's concurrency guidance (429 above 10 in flight) is undocumented as to its scope: the runs take it per key,
and one run takes it for all keys together (one organisation's limit). A control run puts the same posts in one
workspace on this same model of the fleet, so the difference is the workspaces'.
"""

from __future__ import annotations

import contextlib
import io
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from bench.burst import (
    BACKGROUND_POSTS,
    DUE,
    MAX_TICKS,
    START,
    STORE_SECONDS,
    TICK,
    WORKSPACES_SECTION,
    DetectionClock,
    Scenario,
    SimulatedQueue,
    SlowGenviral,
    _changed_at,
    _emitted,
    apply_changes,
    floor_calls,
    ids,
    plan_burst,
)
from bench.polling import percentile
from genviral_relay import factories
from genviral_relay.checking.check import PostCheck
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.genviral.client import GenviralClient, StaticToken
from genviral_relay.models.messages import workspace_of_request
from genviral_relay.observability import clear_workspace_metrics, metrics
from genviral_relay.polling.bulk_refresh import HotWindows
from genviral_relay.polling.discover import Discovery
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.work_batch import WorkBatch, WorkItem
from genviral_relay.polling.workspace_queue import HeldSends, SharedBacklog, WorkspaceQueue
from genviral_relay.polling.workspace_runs import WorkspaceTicks
from genviral_relay.relay import compose_relay
from genviral_relay.rules.backpressure import Backpressure
from genviral_relay.rules.schedule import PollingPolicy
from local.emulator import GenviralEmulator
from tests.support.doubles import InMemoryDeadLetters, InMemoryStore, SteppingClock

INVOCATIONS = 2  # the template's WORKER_MAX_INVOCATIONS
THREADS = 2  # threads_per_worker: GenviralMaxConcurrency (4) // WORKER_MAX_INVOCATIONS
BATCH = 10  # the SQS event source's batch size


@dataclass(frozen=True)
class WorkspacesScenario:
    campaigns: tuple[int, ...]
    """Each workspace's campaign: how many of its posts are due at 09:00."""
    latency: float
    created: Literal["one import", "scattered"]
    watching: Literal["registered", "discover"] = "registered"
    limit: Literal["per key", "all keys"] = "per key"
    """The scope of Genviral's 10 requests in flight."""
    interleaved: bool = True
    """Whether the poller sends the workspaces' messages interleaved (`HeldSends`) or workspace after workspace."""

    @property
    def name(self) -> str:
        sizes = Counter(self.campaigns)
        shape = " + ".join(
            f"{count} workspace{'s' if count > 1 else ''} of {posts} posts" for posts, count in sizes.most_common()
        )
        extras = [
            *(["discover mode"] if self.watching == "discover" else []),
            *(["one Genviral limit for all keys"] if self.limit == "all keys" else []),
            *([] if self.interleaved else ["sent workspace after workspace"]),
        ]
        return ", ".join([shape, self.created, f"{self.latency * 1000:.0f} ms", *extras])

    def in_one_workspace(self) -> WorkspacesScenario:
        """The control: the same posts in one workspace, on the same model of the fleet."""
        return WorkspacesScenario((sum(self.campaigns),), self.latency, self.created, self.watching, self.limit, True)


@dataclass
class WorkspaceFigures:
    name: str
    posts: int
    calls: Counter[str]
    rate_limited: int
    duplicates: int
    lags: list[float]
    transitions: int
    detected: int


@dataclass
class WorkspacesRun:
    scenario: WorkspacesScenario
    workspaces: list[WorkspaceFigures]
    peak_depth: int
    skipped: int
    failures: int
    crossed: int
    """Events published by a workspace's relay for a post of another workspace."""
    ticks: int
    wall_seconds: float = 0.0
    floors: list[int] = field(default_factory=list)

    @property
    def lags(self) -> list[float]:
        return [lag for figures in self.workspaces for lag in figures.lags]

    @property
    def genviral_calls(self) -> int:
        return sum(sum(figures.calls.values()) for figures in self.workspaces)


@dataclass
class Lane:
    """One workspace of the stack: its posts, its key's client, its relay's batch and what reached its targets."""

    name: str
    post_ids: list[str]
    created_at: dict[str, datetime]
    history: list[datetime]
    """When each post of the workspace was created (its floor of list calls counts them)."""
    source: SlowGenviral
    store: InMemoryStore
    batch: WorkBatch
    checker: PostCheck
    target: DetectionClock
    discovery: Discovery | None


def workspace_name(index: int) -> str:
    return f"ws-{index:02d}"


def simulate_workspaces(scenario: WorkspacesScenario, seed: int) -> WorkspacesRun:
    """One burst; what the relay prints (log lines, EMF documents) is kept out of the report."""
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        started = time.monotonic()
        clock = SteppingClock(START - timedelta(days=8))
        factories.reset()
        names = [workspace_name(index) for index in range(len(scenario.campaigns))]
        keys = {name: f"gva_live_bench-{name}.0123456789abcdef" for name in names}
        with GenviralEmulator(workspaces=keys, clock=clock) as emulator:
            world = StackBurst(scenario, random.Random(seed), emulator, clock, keys)
            world.register()
            world.run()
            run = world.figures()
        metrics.flush_metrics()
        clear_workspace_metrics()
    run.skipped = _emitted(printed.getvalue(), "DuplicateChecksSkipped")
    run.failures = _emitted(printed.getvalue(), "CheckFailures")
    run.wall_seconds = time.monotonic() - started
    return run


class StackBurst:
    """The burst of every workspace on the emulator, the shared queue and fleet, on one simulated clock."""

    def __init__(
        self,
        scenario: WorkspacesScenario,
        rng: random.Random,
        emulator: GenviralEmulator,
        clock: SteppingClock,
        keys: dict[str, str],
    ) -> None:
        self.scenario = scenario
        self.emulator = emulator
        self.clock = clock
        self.store = InMemoryStore()
        self.queue = SimulatedQueue(clock)
        backlog = SharedBacklog(self.queue)
        held = HeldSends(self.queue) if scenario.interleaved else None
        in_flight: list[tuple[datetime, datetime]] | None = [] if scenario.limit == "all keys" else None
        self.changes: list[tuple[datetime, str, str]] = []
        self.lanes: dict[str, Lane] = {}
        ticks: dict[str, PollTick] = {}
        for name, campaign in zip(keys, scenario.campaigns, strict=True):
            lane, tick = self._lane(name, campaign, rng, keys[name], held, backlog, in_flight)
            self.lanes[name] = lane
            ticks[name] = tick
        self.changes.sort()
        self.applied = 0
        self.ticks = WorkspaceTicks(
            workspaces=lambda: list(self.lanes), tick_of=ticks.__getitem__, backlog=backlog, held=held
        )
        self.depths: list[int] = []
        self.floors: list[int] = []
        self.end = START + MAX_TICKS * TICK

    def _lane(
        self,
        name: str,
        campaign: int,
        rng: random.Random,
        key: str,
        held: HeldSends | None,
        backlog: SharedBacklog,
        in_flight: list[tuple[datetime, datetime]] | None,
    ) -> tuple[Lane, PollTick]:
        scenario, emulator, clock = self.scenario, self.emulator, self.clock
        named = random.Random(f"{scenario.name}/{name}")  # the ids: apart from `rng`, so the plans stay the seed's
        older = BACKGROUND_POSTS // len(scenario.campaigns)
        history = []
        for number in range(older):  # the workspace's share of the older posts, long finished
            created = DUE - timedelta(days=7) + timedelta(seconds=number * (7 * 86400 - 3 * 3600) / older)
            history.append(created)
            other = emulator.create_post(
                scheduled_at=created + timedelta(hours=1), created_at=created, workspace=name, **ids(named)
            )
            emulator.mark_posted(other, emulator.account_ids(other)[0], at=created + timedelta(hours=1))
        plans = plan_burst(Scenario(campaign, scenario.latency, scenario.created), rng)
        post_ids = [
            emulator.create_post(scheduled_at=DUE, created_at=created, workspace=name, **ids(named))
            for created, _, _ in plans
        ]
        for post_id, (_, outcome, after) in zip(post_ids, plans, strict=True):
            self.changes.append((DUE + after, post_id, outcome))
        view = self.store.in_workspace(name)
        source = SlowGenviral(
            GenviralClient(emulator.base_url, StaticToken(key), sleep=self._wait, clock=clock),
            clock,
            scenario.latency,
            in_flight=in_flight,
        )
        target = DetectionClock("sns", clock)
        path = compose_relay(
            store=view,
            state=view,
            source=source,
            publishers=[target, DetectionClock("eventbridge", clock)],
            dead_letters=InMemoryDeadLetters(),
            clock=clock,
            policy=PollingPolicy(tick=TICK),
            workspace=name,
        )
        discover = scenario.watching == "discover"
        discovery = path.discovery(lambda _now: START) if discover else None
        tick = PollTick(
            index=view,
            pause=GenviralPause(view, clock),
            queue=WorkspaceQueue(held or self.queue, name, backlog),
            clock=clock,
            discover=discover,
            backpressure=Backpressure(tick=TICK),
            windows=HotWindows(store=view, index=view, discover=view if discover else None),
        )
        created_at = dict(zip(post_ids, (created for created, _, _ in plans), strict=True))
        lane = Lane(
            name=name,
            post_ids=post_ids,
            created_at=created_at,
            history=sorted([*history, *created_at.values()]),
            source=source,
            store=view,
            batch=path.work_batch(discovery=discovery, accounts=False),
            checker=path.checker,
            target=target,
            discovery=discovery,
        )
        return lane, tick

    def register(self) -> None:
        self.clock.now = START
        for lane in self.lanes.values():
            lane.source.timed = False
            if lane.discovery is not None:
                while not lane.discovery.run().walk_complete:  # the first walk, over the workspace's history
                    pass
            else:
                for post_id in lane.post_ids:
                    lane.checker.check(post_id, trigger="register")
            lane.source.timed = True

    def _wait(self, seconds: float) -> None:
        """The client's back-off (after a 429) passes on the simulated clock."""
        self.clock.now += timedelta(seconds=seconds)

    def run(self) -> None:
        invocations = [START] * INVOCATIONS
        next_tick = START
        ticked = False
        while next_tick <= self.end and not (ticked and self._finished()):
            free = min(range(INVOCATIONS), key=lambda index: invocations[index])
            if self.queue.waiting and invocations[free] < next_tick:
                invocations[free] = self._invoke(invocations[free])
                continue
            invocations = [max(at, next_tick) for at in invocations]  # idle invocations wait for the tick's messages
            self._tick(next_tick)
            ticked = True
            next_tick += TICK

    def _invoke(self, at: datetime) -> datetime:
        """One worker invocation takes a batch at `at`; each workspace's messages of it on that workspace's threads,
        all starting at `at`; answers when the slowest is done."""
        self.clock.now = at
        self._upstream()
        items = self.queue.take(BATCH)
        groups: dict[str, list[WorkItem]] = {}
        for item in items:
            groups.setdefault(workspace_of_request(item.request), []).append(item)
        done = at
        for name, group in groups.items():
            lane = self.lanes[name]
            size = math.ceil(len(group) / THREADS)
            for offset in range(0, len(group), size):
                chunk = group[offset : offset + size]
                self.clock.now = at
                lane.source.batch = chunk
                lane.batch.run(chunk)
                done = max(done, self.clock.now + STORE_SECONDS * len(chunk) * timedelta(seconds=1))
        self.clock.now = done
        self.queue.working.append((at, done, len(items)))
        return done

    def _tick(self, at: datetime) -> None:
        self.clock.now = at
        self._upstream()
        depth = self.queue.backlog() or 0
        report = self.ticks.run()
        self.depths.append(depth + report.queued)
        self.floors.append(
            sum(
                floor_calls(sorted(lane.created_at[post_id] for post_id in lane.store.due_post_ids(at)), lane.history)
                for lane in self.lanes.values()
            )
        )

    def _upstream(self) -> None:
        self.applied = apply_changes(self.emulator, self.changes, self.applied, self.clock.now)

    def _finished(self) -> bool:
        detected = sum(len(lane.target.detected) for lane in self.lanes.values())
        return self.applied == len(self.changes) and detected >= len(self.changes) and not self.queue.waiting

    def figures(self) -> WorkspacesRun:
        owner = {post_id: lane.name for lane in self.lanes.values() for post_id in lane.post_ids}
        workspaces = []
        crossed = 0
        for lane in self.lanes.values():
            detected = lane.target.detected.values()
            crossed += sum(owner.get(event.post_id) != lane.name for _, event in detected)
            workspaces.append(
                WorkspaceFigures(
                    name=lane.name,
                    posts=len(lane.post_ids),
                    calls=Counter(kind for _, kind in lane.source.calls),
                    rate_limited=lane.source.rate_limited,
                    duplicates=len(lane.source.duplicates),
                    lags=[(at - _changed_at(event)).total_seconds() for at, event in detected],
                    transitions=len(lane.post_ids),
                    detected=len(lane.target.detected),
                )
            )
        return WorkspacesRun(
            scenario=self.scenario,
            workspaces=workspaces,
            peak_depth=max(self.depths, default=0),
            skipped=0,
            failures=0,
            crossed=crossed,
            ticks=len(self.depths),
            floors=self.floors,
        )


# ---------------------------------------------------------------------- report
def _lag(lags: list[float]) -> str:
    lag95 = percentile(lags, 0.95)
    return f"{percentile(lags, 0.5):.0f} s / {lag95:.0f} s ({lag95 / 60:.1f} ticks)"


def run_row(run: WorkspacesRun, label: str) -> str:
    figures = run.workspaces
    undetected = sum(f.transitions - f.detected for f in figures)
    calls = [sum(f.calls.values()) for f in figures]
    lags95 = [percentile(f.lags, 0.95) for f in figures]
    return (
        f"| {label} | {run.genviral_calls} | {min(calls)} to {max(calls)} | {_lag(run.lags)} | "
        f"{min(lags95):.0f} s to {max(lags95):.0f} s | {run.peak_depth} | "
        f"{sum(f.duplicates for f in figures)} / {run.skipped} | {sum(f.rate_limited for f in figures)} | "
        f"{undetected} | {run.crossed} | {run.failures} |"
    )


SUMMARY_HEADER = [
    "| run | Genviral calls | per workspace (least to most) | detection lag p50 / p95 | p95 per workspace "
    "(least to most) | peak queue depth | duplicate calls / messages skipped | 429s | not detected | events of "
    "another workspace | failed checks |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def workspace_table(run: WorkspacesRun) -> list[str]:
    rows = [
        f"### Per workspace: {run.scenario.name}",
        "",
        "| workspace | campaign | Genviral calls | 429s | detection lag p50 / p95 | not detected |",
        "|---|---|---|---|---|---|",
    ]
    for figures in run.workspaces:
        counts = ", ".join(f"{kind} {count}" for kind, count in figures.calls.most_common())
        rows.append(
            f"| {figures.name} | {figures.posts} | {sum(figures.calls.values())} ({counts}) | {figures.rate_limited} "
            f"| {_lag(figures.lags)} | {figures.transitions - figures.detected} |"
        )
    return [*rows, ""]


def scenarios(workspaces: int) -> list[WorkspacesScenario]:
    """The burst's shapes with `workspaces` workspaces of 100 posts each, and one busy workspace among quiet ones."""
    even = (100,) * workspaces
    return [
        *(
            WorkspacesScenario(even, latency, created)
            for latency in (0.3, 3.0)
            for created in ("one import", "scattered")
        ),
        WorkspacesScenario(even, 0.3, "scattered", watching="discover"),
        WorkspacesScenario(even, 0.3, "scattered", limit="all keys"),
        # As the poller sent before `HeldSends`: each workspace's messages in a row, so a batch holds one or two.
        *(WorkspacesScenario(even, latency, "scattered", interleaved=False) for latency in (0.3, 3.0)),
        # One client's import beside the others' daily posts: the quiet workspaces must not wait for it.
        WorkspacesScenario((1000, *(10,) * (workspaces - 1)), 0.3, "one import"),
    ]


def section(workspaces: int, seed: int, runs: list[tuple[WorkspacesRun, WorkspacesRun]]) -> list[str]:
    wall = sum(run.wall_seconds + control.wall_seconds for run, control in runs)
    lines = [
        WORKSPACES_SECTION,
        "",
        f"Command: `python -m bench.burst --workspaces {workspaces} --seed {seed}`, {datetime.now(UTC):%Y-%m-%d %H:%M} "
        f"UTC, {wall:.0f} s of wall time. Each "
        f"run shares a burst out among {workspaces} workspaces of one stack: each its own key, campaign due at 09:00 "
        f"and {BACKGROUND_POSTS // workspaces} of the {BACKGROUND_POSTS} older posts; one table seen through each "
        "workspace's view; the real poller of several workspaces (each pacing on its share of the one queue); the "
        f"template's worker fleet, shared: {INVOCATIONS} invocations taking {BATCH} messages each, each workspace's "
        f"messages of a batch on {THREADS} threads of its own. Genviral answers 429 above 10 requests in flight per "
        "key (its scope is undocumented; one run takes it for all keys together). Under each run, its control: the "
        "same posts in one workspace on the same model of the fleet. Two things to read the figures by: each "
        "workspace keeps its own cap, so 10 busy workspaces may have up to 20 requests in flight (each invocation "
        "works its batch's ten messages at once; at most 4 per key; ten stacks of their own, up to 40) where the "
        "control's one key has 4; and the queue here is strictly first in, first out, "
        "where SQS keeps order only roughly, so its batches mix workspaces more than here when they are sent "
        "workspace after workspace (those runs are the pessimistic end) and less than here when interleaved.",
        "",
        *SUMMARY_HEADER,
    ]
    for run, control in runs:
        lines.append(run_row(run, run.scenario.name))
        lines.append(run_row(control, f"↳ control: {control.scenario.name}"))
    lines.append("")
    for run, _ in runs:
        lines += workspace_table(run)
    return lines
