"""The calm week with several workspaces in one stack (`python -m bench.polling --workspaces 10`).

The week of `bench/polling.py`, its posts shared out among N workspaces of one stack: one emulator with a key per
workspace, one table (the in-memory double) seen through each workspace's view, and per workspace what the
deployment composes for it (its relay, its tick, its worker batches, its account checks), all on one simulated
clock. Reported per workspace: Genviral calls (counted by the emulator from the key that made them) and detection
lag; and over all of them: lost and duplicate events, and whether any event reached a workspace it is not from.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.polling import (
    ACCOUNT_CHECK_EVERY,
    LATE_URL,
    LIST_PREFIX,
    TICK,
    AccountCheckSource,
    Change,
    PhasedSource,
    PlannedPost,
    TargetsStandIn,
    TimedPublisher,
    _apply,
    _next_tick,
    percentile,
    plan_week,
)
from genviral_relay import factories
from genviral_relay.aws.publishers import EventBridgePublisher, SnsPublisher
from genviral_relay.checking.account_health import AccountHealthCheck
from genviral_relay.checking.check import PostCheck
from genviral_relay.genviral.client import GenviralClient, StaticToken
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth
from genviral_relay.models.messages import AccountsRequest
from genviral_relay.models.workspaces import scoped
from genviral_relay.polling.account_checks import AccountChecks
from genviral_relay.polling.bulk_refresh import HotWindows
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.work_batch import WorkBatch, WorkItem
from genviral_relay.relay import compose_relay
from genviral_relay.rules.account_health import next_listing_at
from genviral_relay.rules.backpressure import Backpressure
from genviral_relay.rules.schedule import PollingPolicy
from local.emulator import GenviralEmulator
from tests.support.doubles import InMemoryStore, InMemoryWorkQueue, SteppingClock
from tests.support.ledger import Ledger, outcome_of
from tests.support.seams import no_sleep


@dataclass
class Lane:
    """One workspace of the stack: its posts, its key's client and what the deployment composes for it."""

    name: str
    planned: list[PlannedPost]
    changes: list[Change]
    source: PhasedSource
    checker: PostCheck
    batch: WorkBatch
    health: AccountHealthCheck
    tick: PollTick
    queue: InMemoryWorkQueue
    registrations: list[int]
    next_registration: int = 0
    next_change: int = 0


@dataclass
class WorkspaceFigures:
    name: str
    posts: int
    genviral_calls: int
    list_calls: int
    """Of them, list calls: the retry sweep's (one a tick while a failure may be retried) and the bulk refreshes'."""
    lags: list[float]


@dataclass
class WorkspacesWeek:
    workspaces: list[WorkspaceFigures]
    transitions: int
    lost: int
    duplicate_ids: int
    unexpected: int
    crossed: int
    """Events whose post belongs to another workspace than the relay that published them."""
    unobservable: int
    """Completions upstream that the post left before the relay read it (not owed: `Ledger.read`)."""
    wall_seconds: float


def workspace_name(index: int) -> str:
    return f"ws-{index:02d}"


def simulate_workspaces_week(workspaces: int, posts: int, seed: int) -> WorkspacesWeek:
    """`posts` shared out evenly among `workspaces`, each planned like the single-workspace week (registered mode,
    account checks and URL re-checks on)."""
    started = time.monotonic()
    start = datetime(2026, 3, 2, tzinfo=UTC)
    clock = SteppingClock(start)
    names = [workspace_name(index) for index in range(workspaces)]
    factories.reset()
    keys = {name: f"gva_live_bench-{name}.0123456789abcdef" for name in names}
    with GenviralEmulator(workspaces=keys, clock=clock) as emulator:
        targets = TargetsStandIn(Counter())
        published_at: dict[tuple[str, str], datetime] = {}
        lane_published: dict[str, dict[tuple[str, str], datetime]] = {name: {} for name in names}
        published_by: dict[str, str] = {}
        """post id -> its workspace."""
        store = InMemoryStore()
        policy = PollingPolicy(tick=TICK)
        ledger = Ledger(tracks_reads=True)
        upstream_at: dict[tuple[str, str, str, str], tuple[datetime, str]] = {}
        lanes = [
            _lane(name, index, posts // workspaces, seed, start, emulator, keys[name], store, targets,
                  lane_published[name], clock, policy)
            for index, name in enumerate(names)
        ]  # fmt: skip
        for lane in lanes:
            lane.source.ledger = ledger
        end = start + timedelta(days=8)
        while clock.now <= end:
            for lane in lanes:
                _upstream(lane, emulator, ledger, upstream_at, clock.now, published_by)
            for lane in lanes:
                _tick(lane)
            previous = clock.now
            clock.now = min(
                _next_tick(previous, store, lane.planned, lane.registrations, lane.next_registration, lane.changes,
                           lane.next_change, end)
                for lane in lanes
            )  # fmt: skip
            for lane in lanes:  # an account check falls due while a post is watched: that minute is busy
                record = store.notices.records.get(scoped(ACCOUNT_HEALTH_RECORD, lane.name))
                due_at = next_listing_at(
                    AccountHealth.model_validate_json(record.state) if record else None, ACCOUNT_CHECK_EVERY
                )
                wanted = previous + TICK if due_at is None else max(due_at, previous + TICK)
                if any(store.in_workspace(lane.name).watched_post_ids(limit=1)):
                    clock.now = min(clock.now, wanted)
        delivered = targets.received
        audit = ledger.audit(delivered, targets.parked)
        documents = delivered["sns"] + delivered["eventbridge"]
        post_of = {document["event_id"]: document["post_id"] for document in documents if "post_id" in document}
        for moments in lane_published.values():
            published_at.update(moments)
        crossed = sum(  # published by another workspace's relay, or (once documents name it) naming another
            published_by[post_of[event_id]] != name
            for name, moments in lane_published.items()
            for event_id, _target in moments
            if event_id in post_of
        ) + sum(
            document.get("workspace", published_by[document["post_id"]]) != published_by[document["post_id"]]
            for document in documents
            if "post_id" in document
        )
        event_keys = {document["event_id"]: outcome_of(document) for document in documents}
        lags: dict[str, list[float]] = {name: [] for name in names}
        for (event_id, _target), moment in published_at.items():
            key = event_keys.get(event_id)
            if key in upstream_at and upstream_at[key][1] != LATE_URL:
                lags[published_by[post_of[event_id]]].append((moment - upstream_at[key][0]).total_seconds())
        calls = emulator.calls_by_workspace()
        return WorkspacesWeek(
            workspaces=[
                WorkspaceFigures(
                    lane.name,
                    len(lane.planned),
                    calls[lane.name],
                    sum(count for phase, count in lane.source.calls.items() if phase.startswith(LIST_PREFIX)),
                    lags[lane.name],
                )
                for lane in lanes
            ],
            transitions=audit.expected,
            lost=audit.lost,
            duplicate_ids=audit.duplicate_ids,
            unexpected=audit.unexpected,
            crossed=crossed,
            unobservable=audit.unobservable,
            wall_seconds=time.monotonic() - started,
        )


def _lane(
    name: str,
    index: int,
    posts: int,
    seed: int,
    start: datetime,
    emulator: GenviralEmulator,
    key: str,
    store: InMemoryStore,
    targets: TargetsStandIn,
    published_at: dict[tuple[str, str], datetime],
    clock: SteppingClock,
    policy: PollingPolicy,
) -> Lane:
    """What the deployment composes for one workspace, on its view of the table and with its key."""
    rng, urls = random.Random(seed * 1000 + index), random.Random(seed * 1000 + 500 + index)
    planned, changes = plan_week(posts, start, rng, urls)
    view = store.in_workspace(name)
    client = GenviralClient(emulator.base_url, StaticToken(key), sleep=no_sleep, clock=clock)
    source = PhasedSource(client, clock, emulator, policy.lead_time, view)
    # `published_at`: what this workspace's relay published; none of it may be another workspace's post.
    sns = SnsPublisher(targets, "arn:aws:sns:us-east-1:123456789012:events", sleep=no_sleep)  # type: ignore[arg-type]
    bus = EventBridgePublisher(targets, "relay-events", sleep=no_sleep)  # type: ignore[arg-type]
    path = compose_relay(
        store=view,
        state=view,
        source=source,
        publishers=[TimedPublisher(sns, clock, published_at), TimedPublisher(bus, clock, published_at)],
        dead_letters=targets,
        clock=clock,
        policy=policy,
        account_checks=True,
        workspace=name,
    )
    queue = InMemoryWorkQueue()
    health = AccountHealthCheck(
        source=AccountCheckSource(source),
        store=view,
        index=view,
        state=view,
        notices=path.notices,
        pause=path.pause,
        clock=clock,
    )
    tick = PollTick(
        index=view,
        pause=path.pause,
        queue=queue,
        clock=clock,
        discover=False,
        backpressure=Backpressure(tick=TICK),
        windows=HotWindows(store=view, index=view, discover=None),
        accounts=AccountChecks(store=view.notices, index=view, every=ACCOUNT_CHECK_EVERY),
    )
    return Lane(
        name=name,
        planned=planned,
        changes=changes,
        source=source,
        checker=path.checker,
        batch=path.work_batch(discovery=path.discovery(lambda _now: start), accounts=False),
        health=health,
        tick=tick,
        queue=queue,
        registrations=sorted(range(len(planned)), key=lambda i: planned[i].created_at),
    )


def _upstream(
    lane: Lane,
    emulator: GenviralEmulator,
    ledger: Ledger,
    upstream_at: dict[tuple[str, str, str, str], tuple[datetime, str]],
    now: datetime,
    published_by: dict[str, str],
) -> None:
    """The lane's posts created (and registered by their pipeline) until `now`, then Genviral's changes."""
    while lane.next_registration < len(lane.registrations):
        plan = lane.planned[lane.registrations[lane.next_registration]]
        if plan.created_at > now:
            break
        plan.post_id = emulator.create_post(
            accounts=plan.accounts, scheduled_at=plan.scheduled_at, created_at=plan.created_at, workspace=lane.name
        )
        published_by[plan.post_id] = lane.name
        ledger.observe(emulator.post_json(plan.post_id))
        lane.source.plans[plan.post_id] = plan
        lane.source.registering = True
        lane.checker.check(plan.post_id, trigger="register")
        lane.source.registering = False
        lane.next_registration += 1
    while lane.next_change < len(lane.changes) and lane.changes[lane.next_change].at <= now:
        _apply(emulator, lane.planned, lane.changes[lane.next_change], ledger, upstream_at)
        lane.next_change += 1


def _tick(lane: Lane) -> None:
    """The workspace's tick and its workers, in batches of 10, as the poller and the worker run each workspace."""
    lane.queue.sent.clear()
    lane.tick.run()
    queued = [WorkItem(str(index), request) for index, (request, _) in enumerate(lane.queue.sent)]
    if any(isinstance(item.request, AccountsRequest) for item in queued):
        lane.health.run()
        queued = [item for item in queued if not isinstance(item.request, AccountsRequest)]
    for offset in range(0, len(queued), 10):
        lane.batch.run(queued[offset : offset + 10])


def workspace_rows(week: WorkspacesWeek) -> list[str]:
    """The per-workspace table and the totals, in RESULTS.md's format."""
    rows = [
        "| workspace | posts | Genviral calls | of which list calls | calls per post | lag p50 / p95 / max |",
        "|---|---|---|---|---|---|",
    ]
    for figures in week.workspaces:
        lags = figures.lags
        rows.append(
            f"| {figures.name} | {figures.posts} | {figures.genviral_calls} | {figures.list_calls} | "
            f"{figures.genviral_calls / max(figures.posts, 1):.1f} | {percentile(lags, 0.5):.0f} s / "
            f"{percentile(lags, 0.95):.0f} s / {max(lags, default=0):.0f} s |"
        )
    every_lag = [lag for figures in week.workspaces for lag in figures.lags]
    total = sum(figures.genviral_calls for figures in week.workspaces)
    posts = sum(figures.posts for figures in week.workspaces)
    lists = sum(figures.list_calls for figures in week.workspaces)
    rows.append(
        f"| **all** | {posts} | {total} | {lists} | {total / max(posts, 1):.1f} | {percentile(every_lag, 0.5):.0f} s / "
        f"{percentile(every_lag, 0.95):.0f} s / {max(every_lag, default=0):.0f} s |"
    )
    rows += [
        "",
        f"Transitions {week.transitions}; lost events / duplicate ids / events without a transition / events of "
        f"another workspace: {week.lost} / {week.duplicate_ids} / {week.unexpected} / {week.crossed}. Completions "
        f"upstream the post left before the relay read it (not owed): {week.unobservable}.",
    ]
    return rows
