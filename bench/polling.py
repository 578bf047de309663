"""`make bench`: how few calls the relay needs, how fast it reports, and what a check costs.

A simulated week drives the real check code (Genviral emulator on loopback, moto in-process) with a
simulated clock: posts are created, rescheduled, published on time or late, failed, retried into
posts and deleted; the poller ticks every minute. Printed, measured in one run:

1. Genviral calls per transition, relay vs a fixed-rate baseline (every unfinished post every tick);
2. detection lag (simulated seconds from the upstream change to the publish), p50 and p95;
3. DynamoDB and publish calls per check and per transition;
4. CPU time per post check (parse + diff + decisions, no I/O);
5. cold import time of each handler, from a built artifact with and without its bytecode, vs a bare
   `import boto3, requests`; peak RSS of a worker process checking 1,000 posts;
6. lost and duplicate events.

About 5 % of the postings get their public URL 1-60 minutes after they are posted (as TikTok often does):
the checks the relay makes for those URLs alone are a category of Genviral calls of their own.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from genviral_relay import factories
from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.aws.publishers import EventBridgePublisher, SnsPublisher
from genviral_relay.checking.account_health import AccountHealthCheck
from genviral_relay.checking.ports import (
    AccountSource,
    DeadLetters,
    EventPublisher,
    PostPage,
    PostSource,
    PublishResult,
)
from genviral_relay.clock import parse_ts
from genviral_relay.clock import utc_now as _utc_now
from genviral_relay.genviral.client import GenviralClient, StaticToken
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth
from genviral_relay.models.domain import FINAL_STATUSES, Target, WatchRecord
from genviral_relay.models.events import RelayEvent
from genviral_relay.models.messages import AccountsRequest
from genviral_relay.models.upstream import AccountListing, Envelope, Post
from genviral_relay.observability import logger
from genviral_relay.polling.account_checks import AccountChecks
from genviral_relay.polling.bulk_refresh import HotWindows
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.work_batch import WorkItem
from genviral_relay.relay import compose_relay
from genviral_relay.rules.account_health import next_listing_at
from genviral_relay.rules.backpressure import Backpressure
from genviral_relay.rules.schedule import PollingPolicy, same_schedule
from genviral_relay.rules.transitions import detect_transitions
from local.emulator import GenviralEmulator
from local.stack import MotoStack
from tests.support.doubles import InMemoryStore, InMemoryWorkQueue, SteppingClock
from tests.support.ledger import Ledger, is_completion, outcome_of, url_resolution
from tests.support.runtime import RUNTIME_PYTHON, find_runtime_python
from tests.support.seams import no_sleep

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TOKEN = "gva_live_bench.0123456789abcdef"  # noqa: S105 - the emulator's test key
TICK = timedelta(minutes=1)
LIST_PREFIX = "list of "
URL_CHECKS = "URL re-checks (posted without a URL)"
LATE_URL = "URL given late (1-60 min)"
LATE_URL_SHARE = 0.05
ENRICHMENT = f"{LIST_PREFIX}accounts (naming the accounts of events)"
ACCOUNT_CHECKS = "account checks"
"""The account health check's listings (`AccountCheckMinutes`): a category of their own, not a post check."""
ACCOUNT_CHECK_EVERY = timedelta(minutes=15)  # the template's default AccountCheckMinutes
HANDLERS = (
    "genviral_relay.handlers.poller",
    "genviral_relay.handlers.worker",
    "genviral_relay.handlers.api",
    "genviral_relay.handlers.webhook_dispatcher",
    "genviral_relay.handlers.webhook_delivery",
)


# ---------------------------------------------------------------------- the simulated world
@dataclass(order=True)
class Change:
    at: datetime
    order: int
    post: int = field(compare=False)
    kind: str = field(compare=False)  # posted | failed | retry | reschedule | delete
    account: int = field(default=0, compare=False)
    value: Any = field(default=None, compare=False)
    url_later: bool = field(default=False, compare=False)
    """A posting whose URL comes with a later `url` change."""


@dataclass
class PlannedPost:
    created_at: datetime
    scheduled_at: datetime | None
    accounts: int
    finished_at: datetime  # when the fixed-rate baseline would stop (last account final, or deleted)
    post_id: str = ""
    deleted: bool = False


def plan_week(
    posts: int, start: datetime, rng: random.Random, urls: random.Random | None = None
) -> tuple[list[PlannedPost], list[Change]]:
    """A realistic mix over seven days: on time, late, failed, failed then retried, rescheduled, deleted. `urls`
    draws which postings get their URL late, and when (its own generator, so the rest of the week is the same
    week with or without them)."""
    planned: list[PlannedPost] = []
    changes: list[Change] = []
    sequence = 0

    def change(at: datetime, index: int, kind: str, account: int = 0, value: Any = None) -> None:
        nonlocal sequence
        sequence += 1
        late = kind == "posted" and urls is not None and urls.random() < LATE_URL_SHARE
        changes.append(Change(at, sequence, index, kind, account, value, url_later=late))
        if late and urls is not None:
            sequence += 1
            changes.append(Change(at + timedelta(minutes=urls.uniform(1, 60)), sequence, index, "url", account))

    for index in range(posts):
        created = start + timedelta(seconds=rng.uniform(0, 6 * 86400))
        immediate = rng.random() < 0.1
        lead = timedelta(minutes=min(rng.lognormvariate(math.log(240), 1.6), 5 * 24 * 60))
        scheduled = None if immediate else created + max(lead, timedelta(minutes=3))
        publish_at = created + timedelta(seconds=rng.uniform(5, 60)) if scheduled is None else scheduled
        accounts = rng.randint(1, 4)
        last = created
        if scheduled is not None and rng.random() < 0.1:  # rescheduled before it was due
            moved_at = created + (scheduled - created) * rng.uniform(0.1, 0.9)
            scheduled = max(moved_at + timedelta(minutes=5), scheduled + timedelta(minutes=rng.uniform(-600, 1440)))
            change(moved_at, index, "reschedule", value=scheduled)
            publish_at = scheduled
        if rng.random() < 0.03:  # deleted before it went out
            gone = created + (publish_at - created) * rng.uniform(0.2, 0.9)
            change(gone, index, "delete")
            planned.append(PlannedPost(created, scheduled, accounts, gone))
            continue
        for account in range(accounts):
            roll = rng.random()
            if roll < 0.65:
                at = publish_at + timedelta(seconds=rng.uniform(5, 180))
                change(at, index, "posted", account, "on time")
            elif roll < 0.78:
                at = publish_at + timedelta(minutes=rng.uniform(10, 60))
                change(at, index, "posted", account, "late (10-60 min)")
            elif roll < 0.80:
                at = publish_at + timedelta(minutes=rng.uniform(60, 360))
                change(at, index, "posted", account, "very late (1-6 h)")
            elif roll < 0.92:
                at = publish_at + timedelta(seconds=rng.uniform(5, 300))
                change(at, index, "failed", account, "failed")
            else:
                failed = publish_at + timedelta(seconds=rng.uniform(5, 300))
                retried = failed + timedelta(minutes=rng.uniform(5, 360))
                at = retried + timedelta(minutes=rng.uniform(1, 5))
                change(failed, index, "failed", account, "failed")
                change(retried, index, "retry", account)
                change(at, index, "posted", account, "posted after a retry")
            last = max(last, at)
        planned.append(PlannedPost(created, scheduled, accounts, last))
    changes.sort()
    return planned, changes


# ---------------------------------------------------------------------- instrumentation
class TargetsStandIn(DeadLetters):
    """SNS `PublishBatch` and EventBridge `PutEvents` that accept everything, as subscribers see it.

    The real publishers (batching, request shapes) run on top; moto is left out of the simulated week
    because its in-process request interception makes every one of the week's Genviral calls slower.
    """

    def __init__(self, calls: Counter[str]) -> None:
        self.calls = calls
        self.received: dict[str, list[dict[str, Any]]] = {"sns": [], "eventbridge": []}
        self.parked: list[dict[str, Any]] = []

    def publish_batch(self, **request: Any) -> dict[str, Any]:
        self.calls["publish_batch"] += 1
        entries = request["PublishBatchRequestEntries"]
        self.received["sns"].extend(json.loads(entry["Message"]) for entry in entries)
        return {"Successful": [{"Id": entry["Id"], "MessageId": entry["Id"]} for entry in entries], "Failed": []}

    def put_events(self, **request: Any) -> dict[str, Any]:
        self.calls["put_events"] += 1
        entries = request["Entries"]
        self.received["eventbridge"].extend(json.loads(entry["Detail"]) for entry in entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(index)} for index, _ in enumerate(entries)]}

    def park(self, event: RelayEvent, target: Target, reason: str) -> None:
        self.parked.append({"target": target, "reason": reason, "event": event.model_dump(mode="json")})


class PhasedSource(PostSource, AccountSource):
    """Counts Genviral calls by the polling phase the post was in when it was called for; lists the
    accounts too, so events are named as in a deployment and the listings that costs are counted. A
    check of a finished post whose watch awaits a URL is a URL re-check."""

    def __init__(
        self,
        inner: PostSource,
        clock: SteppingClock,
        emulator: GenviralEmulator,
        lead: timedelta,
        store: InMemoryStore,
    ) -> None:
        self._inner = inner
        self._store = store
        self._clock = clock
        self._emulator = emulator
        self._lead = lead
        self.plans: dict[str, PlannedPost] = {}
        self.registering = False
        self.calls: Counter[str] = Counter()
        self.ledger: Ledger | None = None
        """Told of every post the relay reads (a completion it cannot have read is not owed)."""

    def get_post(self, post_id: str) -> Post:
        self.calls[self._phase(post_id)] += 1
        return self._read(self._inner.get_post(post_id))

    def posts_in_status(self, status: str, *, limit: int) -> PostPage:
        self.calls[f"{LIST_PREFIX}{status} posts"] += 1
        return self._listed(self._inner.posts_in_status(status, limit=limit))

    def posts_created(self, since: datetime, until: datetime, *, limit: int) -> PostPage:
        self.calls[f"{LIST_PREFIX}posts by created_at (new posts, bulk refresh)"] += 1
        return self._listed(self._inner.posts_created(since, until, limit=limit))

    def _read(self, post: Post) -> Post:
        if self.ledger is not None:
            self.ledger.read(post.id)
        return post

    def _listed(self, page: PostPage) -> PostPage:
        for post in page.posts:
            self._read(post)
        return page

    def list_accounts(self, *, count: bool = True) -> AccountListing:
        if count:
            self.calls[ENRICHMENT] += 1
        assert isinstance(self._inner, AccountSource)
        return self._inner.list_accounts()

    def _phase(self, post_id: str) -> str:
        if self.registering:
            return "registration"
        plan = self.plans[post_id]
        if plan.deleted:
            return "deleted (last check)"
        current = self._emulator.post_json(post_id)
        if all(state["status"] in FINAL_STATUSES for state in current["accounts"]["states"]):
            watch = self._store.peek(post_id)
            if watch is not None and any(state.url_awaited_since for state in watch.accounts.values()):
                return URL_CHECKS
            return "finished (retry window, outbox)"
        now = self._clock.now
        due_at = current.get("scheduled_at")
        opens = parse_ts(due_at) if due_at else plan.created_at
        assert opens is not None
        if now < opens - self._lead:
            return "before the publishing window"
        if now < opens + timedelta(hours=1):
            return "publishing window (first hour)"
        return "overdue (after the first hour)"


class AccountCheckSource(AccountSource):
    """The account health check's view of Genviral: its listings counted apart from the naming lookup's."""

    def __init__(self, inner: PhasedSource) -> None:
        self._inner = inner

    def list_accounts(self) -> AccountListing:
        self._inner.calls[ACCOUNT_CHECKS] += 1
        return self._inner.list_accounts(count=False)


class TimedPublisher(EventPublisher):
    """Remembers the simulated time each event first reached its target."""

    def __init__(
        self, inner: EventPublisher, clock: SteppingClock, published_at: dict[tuple[str, str], datetime]
    ) -> None:
        self.target = inner.target
        self._inner = inner
        self._clock = clock
        self._published_at = published_at

    def publish(self, events: Sequence[RelayEvent]) -> PublishResult:
        result = self._inner.publish(events)
        for event in events:
            if event.event_id in result.published:
                self._published_at.setdefault((event.event_id, self.target), self._clock.now)
        return result


@dataclass
class WeekResult:
    mode: str
    posts: int
    transitions: int
    relay_genviral_calls: int
    baseline_genviral_calls: int
    checks: int
    dynamodb_calls: Counter[str]
    publish_calls: Counter[str]
    poller_ticks: int
    poller_queries: int
    """The ticks' queries: the due index, and the created index when posts are due together."""
    calls_by_phase: Counter[str]
    lags: dict[str, list[float]]
    urls_resolved: int
    """Postings reported without a URL whose URL came later (each a `post.account.url_resolved`)."""
    lost: int
    duplicate_ids: int
    unexpected: int
    wall_seconds: float


def simulate_week(
    posts: int,
    seed: int,
    mode: str = "registered",
    account_checks: timedelta | None = ACCOUNT_CHECK_EVERY,
    *,
    url_checks: bool = True,
) -> WeekResult:
    """`mode`: "registered" (each post registered by its pipeline when created) or "discover" (nobody
    registers; the worker lists new posts every tick). `account_checks`: `AccountCheckMinutes` (None: off).
    `url_checks`: whether a posting without a URL is checked again (with neither, the week is polled as 0.4 did)."""
    started = time.monotonic()
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    clock = SteppingClock(start)
    planned, changes = plan_week(posts, start, rng, random.Random(seed + 1))
    factories.reset()
    with GenviralEmulator(tokens=[TOKEN], clock=clock) as emulator:
        publish_calls: Counter[str] = Counter()
        targets = TargetsStandIn(publish_calls)
        published_at: dict[tuple[str, str], datetime] = {}
        store = InMemoryStore()
        dynamodb_calls = store.calls
        policy = PollingPolicy(tick=TICK) if url_checks else PollingPolicy(tick=TICK, url_checks=())
        source = PhasedSource(
            GenviralClient(emulator.base_url, StaticToken(TOKEN), sleep=no_sleep, clock=clock),
            clock,
            emulator,
            policy.lead_time,
            store,
        )
        path = compose_relay(
            store=store,
            state=store,
            source=source,
            publishers=[
                TimedPublisher(
                    SnsPublisher(targets, "arn:aws:sns:us-east-1:123456789012:events", sleep=no_sleep),  # type: ignore[arg-type]
                    clock,
                    published_at,
                ),
                TimedPublisher(
                    EventBridgePublisher(targets, "relay-events", sleep=no_sleep),  # type: ignore[arg-type]
                    clock,
                    published_at,
                ),
            ],
            dead_letters=targets,
            clock=clock,
            policy=policy,
            account_checks=account_checks is not None,
        )
        checker = path.checker
        batch = path.work_batch(discovery=path.discovery(lambda _now: start), accounts=False)
        health = AccountHealthCheck(
            source=AccountCheckSource(source),
            store=store,
            index=store,
            state=store,
            notices=path.notices,
            pause=path.pause,
            clock=clock,
        )
        queue = InMemoryWorkQueue()  # emptied by the workers within each tick
        tick = PollTick(
            index=store,
            pause=path.pause,
            queue=queue,
            clock=clock,
            discover=mode == "discover",
            backpressure=Backpressure(tick=TICK),
            windows=HotWindows(store=store, index=store, discover=store if mode == "discover" else None),
            accounts=AccountChecks(store=store.notices, index=store, every=account_checks) if account_checks else None,
        )
        ledger = Ledger(tracks_reads=True)
        source.ledger = ledger
        upstream_at: dict[tuple[str, str, str, str], tuple[datetime, str]] = {}
        registrations = sorted(range(len(planned)), key=lambda index: planned[index].created_at)
        next_registration = 0
        pending = list(changes)
        next_change = 0
        ticks = poller_queries = 0
        end = start + timedelta(days=8)
        clock.now = start
        while clock.now <= end:
            # Upstream: posts created (and registered by their pipeline), then Genviral's changes.
            while (
                next_registration < len(registrations)
                and planned[registrations[next_registration]].created_at <= clock.now
            ):
                plan = planned[registrations[next_registration]]
                plan.post_id = emulator.create_post(
                    accounts=plan.accounts, scheduled_at=plan.scheduled_at, created_at=plan.created_at
                )
                ledger.observe(emulator.post_json(plan.post_id))
                source.plans[plan.post_id] = plan
                if mode == "registered":
                    source.registering = True
                    checker.check(plan.post_id, trigger="register")
                    source.registering = False
                next_registration += 1
            while next_change < len(pending) and pending[next_change].at <= clock.now:
                _apply(emulator, planned, pending[next_change], ledger, upstream_at)
                next_change += 1
            # The poller's tick (the deployment's: backpressure, bulk refresh) and the workers, in batches of 10.
            ticks += 1
            queue.sent.clear()
            queries_before = store.calls["query"]
            tick.run()
            poller_queries += store.calls["query"] - queries_before
            queued = [WorkItem(str(index), request) for index, (request, _) in enumerate(queue.sent)]
            if any(isinstance(item.request, AccountsRequest) for item in queued):
                health.run()  # as a worker would, its listings counted as account checks
                queued = [item for item in queued if not isinstance(item.request, AccountsRequest)]
            for offset in range(0, len(queued), 10):
                batch.run(queued[offset : offset + 10])
            previous = clock.now
            if mode == "discover":  # every tick lists new posts: no minute is idle
                clock.now += TICK
            else:
                clock.now = _next_tick(
                    clock.now, store, planned, registrations, next_registration, pending, next_change, end
                )
                if account_checks is not None:  # a check falls due while a post is watched: that minute is busy
                    record = store.notices.records.get(ACCOUNT_HEALTH_RECORD)
                    health_state = AccountHealth.model_validate_json(record.state) if record else None
                    due_at = next_listing_at(health_state, account_checks)
                    wanted = previous + TICK if due_at is None else max(due_at, previous + TICK)
                    if any(store.watched_post_ids(limit=1)):
                        clock.now = min(clock.now, wanted)

        # Audit against what the subscribers received.
        delivered = targets.received
        audit = ledger.audit(delivered, targets.parked)
        urls_resolved = audit.urls_resolved
        event_keys = {d["event_id"]: outcome_of(d) for d in delivered["sns"] + delivered["eventbridge"]}
        lags: dict[str, list[float]] = {}
        for (event_id, _target), moment in published_at.items():
            if event_keys.get(event_id) in upstream_at:
                changed_at, kind = upstream_at[event_keys[event_id]]
                lags.setdefault(kind, []).append((moment - changed_at).total_seconds())
        baseline = sum(math.ceil((plan.finished_at - plan.created_at) / TICK) + 1 for plan in planned)
        return WeekResult(
            mode=mode,
            posts=posts,
            transitions=audit.expected,
            relay_genviral_calls=len(emulator.requests_log),
            baseline_genviral_calls=baseline,
            checks=sum(
                count
                for phase, count in source.calls.items()
                if not phase.startswith(LIST_PREFIX) and phase != ACCOUNT_CHECKS
            ),
            dynamodb_calls=dynamodb_calls,
            publish_calls=publish_calls,
            poller_ticks=ticks,
            poller_queries=poller_queries,
            calls_by_phase=source.calls,
            lags=lags,
            urls_resolved=urls_resolved,
            lost=audit.lost,
            duplicate_ids=audit.duplicate_ids,
            unexpected=audit.unexpected,
            wall_seconds=time.monotonic() - started,
        )


def _apply(
    emulator: GenviralEmulator,
    planned: list[PlannedPost],
    change: Change,
    ledger: Ledger,
    upstream_at: dict[tuple[str, str, str, str], tuple[datetime, str]],
) -> None:
    plan = planned[change.post]
    post_id = plan.post_id
    if not post_id or plan.deleted:
        return
    if change.kind == "delete":
        emulator.delete_post(post_id)
        plan.deleted = True
        return
    if change.kind == "reschedule":
        emulator.reschedule(post_id, change.value)
    else:
        account_id = emulator.account_ids(post_id)[change.account]
        if change.kind == "posted":
            if change.url_later:
                emulator.mark_posted(post_id, account_id, published_url=None)
            else:
                emulator.mark_posted(post_id, account_id)
        elif change.kind == "url":
            state = next(s for s in emulator.post_json(post_id)["accounts"]["states"] if s["account_id"] == account_id)
            if state["status"] != "posted" or state["published_url"] is not None:
                return  # posted again since, with its URL
            emulator.resolve_url(post_id, account_id)
            ledger.observe(emulator.post_json(post_id))
            upstream_at[url_resolution(outcome_of({"post_id": post_id, **state}))] = (change.at, LATE_URL)
            return
        elif change.kind == "failed":
            emulator.mark_failed(post_id, account_id, error_message="rejected by the platform")
        else:
            emulator.retry(post_id, [account_id])
    before = len(ledger.expected)
    ledger.observe(emulator.post_json(post_id))
    for outcome in ledger.expected[before:]:
        if not is_completion(outcome):  # lag is measured on transitions, as in 0.3.0
            upstream_at[outcome] = (change.at, str(change.value or change.kind))


def _next_tick(
    now: datetime,
    store: InMemoryStore,
    planned: list[PlannedPost],
    registrations: list[int],
    next_registration: int,
    changes: list[Change],
    next_change: int,
    end: datetime,
) -> datetime:
    """The next minute at which anything can happen: skipping idle minutes changes no result."""
    candidates = [end + TICK]
    if next_registration < len(registrations):
        candidates.append(planned[registrations[next_registration]].created_at)
    if next_change < len(changes):
        candidates.append(changes[next_change].at)
    soonest_due = store.soonest_due(now)
    if soonest_due is not None:
        candidates.append(soonest_due)
    target = max(now + TICK, min(candidates))
    ticks = math.ceil((target - now) / TICK)
    return now + ticks * TICK


# ---------------------------------------------------------------------- CPU, imports, memory
def checks_per_second(seconds: float = 2.0) -> float:
    """Parse + diff + decisions of one post check, on one core, without I/O."""
    emulator = GenviralEmulator(tokens=[TOKEN])
    post_id = emulator.create_post(accounts=3, pinterest={"board_id": "1", "tags": ["a", "b"]})
    first, second, _ = emulator.account_ids(post_id)
    emulator.mark_posted(post_id, first)
    body = json.dumps(
        {"ok": True, "code": 200, "message": "Post retrieved", "data": emulator.post_json(post_id)}
    ).encode()
    previous = detect_transitions(None, Post.model_validate(emulator.post_json(post_id)), datetime.now(UTC))
    emulator.mark_failed(post_id, second, error_message="nope")
    changed = json.dumps(
        {"ok": True, "code": 200, "message": "Post retrieved", "data": emulator.post_json(post_id)}
    ).encode()
    stored = WatchRecord(
        post_id=post_id,
        version=3,
        post_status="pending",
        accounts=previous.accounts,
        occurrences=previous.occurrences,
        registered_at=datetime.now(UTC),
    )
    policy = PollingPolicy()
    now = datetime.now(UTC)
    count = 0
    begin = time.process_time()
    while time.process_time() - begin < seconds:
        for raw in (body, changed):
            envelope = Envelope.model_validate_json(raw)
            post = Post.model_validate(envelope.data)
            detection = detect_transitions(stored, post, now)
            wanted = policy.next_check(post, now)
            same_schedule(stored.settled_next_check_at, wanted, now)
            _ = detection.state_changed
            count += 1
    return count / (time.process_time() - begin)


# Cold imports are measured as Lambda runs them: from a built artifact (src/Makefile's steps: the
# dependencies, the package, the bytecode) on a read-only code folder (-B: nothing is written back), with
# boto3 beside it as the runtime provides it. The artifact is built for this machine, not for Lambda's
# arm64, so the milliseconds are a stand-in; the ratios are what counts.
BUILD_STEPS = ("check-python", "dependencies", "package", "bytecode")  # what src/Makefile's build-<Function> runs


@dataclass
class Artifact:
    python: str  # compiled the artifact and imports from it
    version: str
    runtime_python: bool  # the functions' runtime version, or the current interpreter instead
    task: Path  # like /var/task: package + dependencies + bytecode
    task_without_bytecode: Path  # the same files without any __pycache__
    runtime: Path  # boto3 and its dependencies, with their bytecode, as the Lambda runtime provides them

    def describe(self) -> str:
        why = (
            "the runtime's version"
            if self.runtime_python
            else f"not the runtime's {RUNTIME_PYTHON}: none found (PYTHON, python{RUNTIME_PYTHON} on PATH, pyenv)"
        )
        return f"Python {self.version} ({why})"


def build_artifact(workdir: Path) -> Artifact:
    """The artifact `sam build` makes, for this machine: src/Makefile's steps, with the host's wheels."""
    python, version, is_runtime = find_runtime_python(pyenv=True)
    minor = ".".join(version.split(".")[:2])
    task, runtime = workdir / "task", workdir / "runtime"
    make = ["make", "-s", "--no-print-directory", "-C", str(ROOT / "src"), *BUILD_STEPS]
    _run([*make, f"PYTHON={python}", f"RUNTIME_VERSION={minor}", "PLATFORMS=", f"ARTIFACTS_DIR={task}"])
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"]
    # pip compiles what it installs: the runtime's own libraries come with their bytecode.
    _run([*pip, "--target", str(runtime), f"boto3=={importlib.metadata.version('boto3')}"])
    without = workdir / "task-without-bytecode"
    shutil.copytree(task, without, ignore=shutil.ignore_patterns("__pycache__"))
    return Artifact(python, version, is_runtime, task, without, runtime)


def _run(command: list[str]) -> None:
    env = {name: value for name, value in os.environ.items() if name not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode:
        raise RuntimeError(
            f"building the stand-in artifact failed (pip needs PyPI or its cache): {' '.join(command)}\n"
            + (done.stderr or done.stdout)[-2000:]
        )


def import_seconds(artifact: Artifact, statement: str, runs: int = 7) -> tuple[float, float]:
    """Least CPU time (user + system) of a fresh interpreter running `statement` on the artifact with its
    bytecode and without, each minus an empty interpreter's. CPU time, not wall time: an import is all
    CPU once the files are cached, and a busy machine stretches wall times, not CPU times.

    -I -S: nothing from this machine's environment or site-packages, only the standard library, the
    artifact and the runtime's boto3 (on Lambda /var/task comes first too). -B: no bytecode is written,
    as on Lambda's read-only code folder, so without bytecode every run compiles what it imports."""

    def command(task: Path, code: str) -> list[str]:
        path = f"import sys; sys.path[:0] = [{str(task)!r}, {str(artifact.runtime)!r}]; "
        return [artifact.python, "-I", "-S", "-B", "-c", path + code]

    variants = [
        command(artifact.task, "pass"),
        command(artifact.task, statement),
        command(artifact.task_without_bytecode, statement),
    ]
    best = [math.inf] * len(variants)
    for attempt in range(runs + 1):  # the first round warms the file cache
        for index, variant in enumerate(variants):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(variant, check=True, capture_output=True, cwd=artifact.task)  # noqa: S603
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if attempt:
                seconds = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                best[index] = min(best[index], seconds)
    empty, with_bytecode, without_bytecode = best
    return with_bytecode - empty, without_bytecode - empty


def source_import_seconds(statement: str, runs: int = 7) -> float:
    """Least CPU time of this interpreter running `statement` from the checkout (src/ first, then the virtualenv's
    site-packages, bytecode as this machine keeps it), minus an empty interpreter's: what a developer measures."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    best = {"pass": math.inf, statement: math.inf}
    for attempt in range(runs + 1):  # the first round warms the file cache and writes the bytecode
        for code in best:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env, cwd=ROOT)  # noqa: S603
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if attempt:
                seconds = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                best[code] = min(best[code], seconds)
    return best[statement] - best["pass"]


@dataclass
class ImportFigures:
    artifact: Artifact
    baseline: float  # bare `import boto3, requests`, with bytecode
    handlers: dict[str, tuple[float, float]]  # module: (with bytecode, without)
    source_baseline: float  # the same two imports from the checkout, this interpreter
    source_handlers: dict[str, float]


def measure_imports() -> ImportFigures:
    with tempfile.TemporaryDirectory(prefix="genviral-relay-artifact-") as workdir:
        artifact = build_artifact(Path(workdir))
        baseline, _ = import_seconds(artifact, "import boto3, requests")
        handlers = {module: import_seconds(artifact, f"import {module}") for module in HANDLERS}
    source_baseline = source_import_seconds("import boto3, requests")
    source = {module: source_import_seconds(f"import {module}") for module in HANDLERS}
    return ImportFigures(artifact, baseline, handlers, source_baseline, source)


def _import_rows(figures: ImportFigures) -> list[str]:
    baseline, source_baseline = figures.baseline, figures.source_baseline
    python = ".".join(str(part) for part in sys.version_info[:3])
    return [
        "| 5 | cold imports: CPU time, from a built artifact (src/Makefile's steps with this machine's wheels), "
        f"nothing written back (-B) | compiled and imported by {figures.artifact.describe()} | |",
        f"| 5 | cold import, bare `import boto3, requests` | {baseline * 1000:.0f} ms | |",
        *(
            f"| 5 | cold import `{module}` | {with_ * 1000:.0f} ms ({with_ / baseline:.2f}x); without bytecode "
            f"{without * 1000:.0f} ms ({without / with_:.1f}x slower) | <= 1.5x |"
            for module, (with_, without) in figures.handlers.items()
        ),
        f"| 5 | cold imports from source: CPU time, src/ then the virtualenv, Python {python} | | |",
        f"| 5 | cold import from source, bare `import boto3, requests` | {source_baseline * 1000:.0f} ms | |",
        *(
            f"| 5 | cold import from source `{module}` | {seconds * 1000:.0f} ms ({seconds / source_baseline:.2f}x) "
            "| <= 1.5x |"
            for module, seconds in figures.source_handlers.items()
        ),
    ]


WORKER_CHILD = """
import json, sys, uuid
from genviral_relay.handlers.worker import lambda_handler
from local.runner import FakeLambdaContext
post_ids = json.load(sys.stdin)
failures = 0
for offset in range(0, len(post_ids), 10):
    records = [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps({"post_id": p}),
                "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"}
               for p in post_ids[offset:offset + 10]]
    answer = lambda_handler({"Records": records}, FakeLambdaContext("WorkerFunction"))
    failures += len(answer["batchItemFailures"])
# VmHWM: this process's own peak (ru_maxrss would include the forking parent's).
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"max_rss_kb": peak_kb, "failures": failures}))
"""


def worker_peak_rss(posts: int = 1000) -> tuple[float, int]:
    """Peak RSS (MB) of a worker process checking `posts` posts; moto and Genviral run in this process."""
    with (
        GenviralEmulator(tokens=[TOKEN]) as emulator,
        MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, mode="server") as stack,
    ):
        scheduled = datetime.now(UTC) - timedelta(minutes=1)
        post_ids = [emulator.create_post(accounts=2, scheduled_at=scheduled) for _ in range(posts)]
        store = DynamoDbStore(
            stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=1), clock=_utc_now
        )
        now = _utc_now()
        for post_id in post_ids:  # registered and due, as the poller would queue them
            store.save(
                WatchRecord(post_id=post_id, version=1, registered_at=now, next_check_at=now),
                expected_version=0,
                new_events=(),
            )
        for post_id in post_ids[: posts // 2]:  # half of them have a transition to publish
            emulator.mark_posted(post_id, emulator.account_ids(post_id)[0])
        env = {
            **os.environ,
            **stack.function_env("WorkerFunction"),
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        child = subprocess.run(  # noqa: S603
            [sys.executable, "-W", "ignore", "-c", WORKER_CHILD],
            input=json.dumps(post_ids),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(child.stdout.strip().splitlines()[-1])
        return report["max_rss_kb"] / 1024, report["failures"]


# ---------------------------------------------------------------------- report
def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description="Genviral-relay benchmark")
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-write", action="store_true", help="print only, leave bench/RESULTS.md alone")
    parser.add_argument(
        "--imports-only", action="store_true", help="only the cold imports (figure 5), printed; RESULTS.md untouched"
    )
    parser.add_argument(
        "--workspaces",
        type=int,
        default=1,
        metavar="N",
        help="only the week with --posts shared out among N workspaces of one stack: calls and lag per workspace "
        "(its section of RESULTS.md replaced)",
    )
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if arguments.imports_only:
        print("\n".join(_import_rows(measure_imports())))
        return 0
    if arguments.workspaces > 1:
        return _several_workspaces(arguments.workspaces, arguments.posts, arguments.seed, write=not arguments.no_write)

    logger.setLevel("WARNING")  # the relay's INFO lines would drown the report
    with contextlib.redirect_stdout(io.StringIO()):
        weeks = [simulate_week(arguments.posts, arguments.seed, mode) for mode in ("registered", "discover")]
        polled_as_before = simulate_week(
            arguments.posts, arguments.seed, "registered", account_checks=None, url_checks=False
        )
    cpu_rate = checks_per_second()
    imports = measure_imports()
    rss_mb, rss_failures = worker_peak_rss()

    registered, discover = weeks
    lines = [
        "# Benchmark results",
        "",
        f"Command: `make bench` (`python -m bench.polling --posts {arguments.posts} --seed {arguments.seed}`), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; the simulated weeks took "
        f"{registered.wall_seconds:.0f} s (registered) and {discover.wall_seconds:.0f} s (discover) of wall time.",
        "",
        f"Simulated: {registered.posts} posts created over six days (1-4 accounts each; on time, late, failed,",
        "failed then retried into posts, rescheduled, deleted), the poller ticking every minute for eight days.",
        "The same week runs twice: `WatchMode=registered` (each post registered by its pipeline when created)",
        "and `WatchMode=discover` (nobody registers; every tick lists the new posts).",
        "",
        "## WatchMode=registered",
        "",
        "| # | figure | value | target |",
        "|---|---|---|---|",
        *_week_rows(registered)[:-1],
        _warnings_row(registered, polled_as_before),
        f"| 4 | CPU per post check (parse + diff + decisions) | {cpu_rate:,.0f} checks/s on one core | >= 2,000/s |",
        *_import_rows(imports),
        f"| 5 | peak RSS, worker process checking 1,000 posts | {rss_mb:.0f} MB ({rss_failures} failed checks) "
        "| <= 100 MB |",
        _week_rows(registered)[-1],
        "",
        "## WatchMode=discover",
        "",
        "| # | figure | value | target |",
        "|---|---|---|---|",
        *_week_rows(discover),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not arguments.no_write:
        RESULTS.write_text(report)
    clean = all((week.lost, week.duplicate_ids, week.unexpected) == (0, 0, 0) for week in weeks)
    return 0 if clean else 1


WORKSPACES_SECTION = "## Several workspaces in one stack"


def _several_workspaces(workspaces: int, posts: int, seed: int, *, write: bool) -> int:
    """The section of RESULTS.md for `--workspaces N`, beside the single-workspace figures above it."""
    from bench.workspaces import simulate_workspaces_week, workspace_rows

    logger.setLevel("WARNING")
    with contextlib.redirect_stdout(io.StringIO()):
        week = simulate_workspaces_week(workspaces, posts, seed)
    section = [
        WORKSPACES_SECTION,
        "",
        f"Command: `python -m bench.polling --workspaces {workspaces} --posts {posts} --seed {seed}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {week.wall_seconds:.0f} s of wall time. The registered week's "
        f"{posts} posts shared out among {workspaces} workspaces of one stack (each planned as the week above, "
        "with a key of its own; one table seen through each workspace's view, each workspace ticked and worked "
        "as the poller and the worker run it). Calls are counted by the emulator from the key that made them.",
        "",
        *workspace_rows(week),
        "",
    ]
    text = "\n".join(section)
    print(text)
    if write:
        current = RESULTS.read_text() if RESULTS.exists() else ""
        kept = current.split(WORKSPACES_SECTION)[0].rstrip("\n")
        RESULTS.write_text(f"{kept}\n\n{text}" if kept else text)
    clean = (week.lost, week.duplicate_ids, week.unexpected, week.crossed) == (0, 0, 0, 0)
    return 0 if clean else 1


def _week_rows(week: WeekResult) -> list[str]:
    """Figures 1, 2, 3 and 6 (the last row) of one simulated week."""
    transitions = max(week.transitions, 1)
    checks = max(week.checks, 1)
    dynamodb = sum(week.dynamodb_calls.values())
    publishes = sum(week.publish_calls.values())
    ratio = week.relay_genviral_calls / max(week.baseline_genviral_calls, 1)
    all_lags = [lag for kind, values in week.lags.items() if kind != LATE_URL for lag in values]
    return [
        f"| 1 | transitions (upstream) | {week.transitions} | |",
        f"| 1 | postings whose URL came 1-60 min later (each one `post.account.url_resolved`) "
        f"| {week.urls_resolved} | |",
        f"| 1 | Genviral calls, relay | {week.relay_genviral_calls} "
        f"({week.relay_genviral_calls / transitions:.2f} per transition) | |",
        f"| 1 | Genviral calls, fixed-rate baseline | {week.baseline_genviral_calls} "
        f"({week.baseline_genviral_calls / transitions:.1f} per transition) | |",
        f"| 1 | relay / baseline | {ratio:.2%} | <= 5% |",
        *(
            f"| 1 | Genviral calls: {phase} | {count} ({count / max(week.relay_genviral_calls, 1):.1%}) | |"
            for phase, count in week.calls_by_phase.most_common()
        ),
        _lag_row("all transitions", all_lags, "p95 <= 60 s (one tick)"),
        *(_lag_row(kind, values, "") for kind, values in sorted(week.lags.items())),
        f"| 3 | checks (single-post calls) | {week.checks} ({week.checks / transitions:.2f} per transition) | |",
        f"| 3 | DynamoDB calls | {dynamodb / checks:.2f} per check, {dynamodb / transitions:.2f} per transition "
        f"({_counts(week.dynamodb_calls)}) | |",
        f"| 3 | publish calls | {publishes / checks:.3f} per check, {publishes / transitions:.2f} per transition "
        f"({_counts(week.publish_calls)}) | |",
        f"| 3 | poller | {week.poller_queries / week.poller_ticks:.2f} index queries per tick (6 of the due index; "
        f"{week.poller_ticks} busy ticks simulated) | |",
        f"| 6 | lost events / duplicate ids / events without a transition | {week.lost} / {week.duplicate_ids} / "
        f"{week.unexpected} | 0 / 0 / 0 |",
    ]


def _warnings_row(week: WeekResult, before: WeekResult) -> str:
    """What the warnings (account checks, URL re-checks) add: this week's Genviral calls against the same week
    polled without them, as 0.4 polls it; the naming listings they spare (an account check names accounts too)
    and any other difference are counted in."""
    extra = week.relay_genviral_calls - before.relay_genviral_calls
    checks = week.calls_by_phase[ACCOUNT_CHECKS]
    urls = week.calls_by_phase[URL_CHECKS]
    spared = before.calls_by_phase[ENRICHMENT] - week.calls_by_phase[ENRICHMENT]
    other = extra - (checks + urls - spared)
    return (
        f"| 1 | Genviral calls the warnings add (account checks {checks} + URL re-checks {urls} - naming listings "
        f"spared {spared} + other {other}) | {extra} ({extra / max(before.relay_genviral_calls, 1):.2%} of the same "
        f"week without them, {before.relay_genviral_calls}) | < 2% |"
    )


def _lag_row(kind: str, lags: list[float], target: str) -> str:
    figures = f"{percentile(lags, 0.5):.0f} s / {percentile(lags, 0.95):.0f} s / {max(lags, default=0):.0f} s"
    return f"| 2 | detection lag p50 / p95 / max, {kind} ({len(lags)}) | {figures} | {target} |"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counter.most_common())


if __name__ == "__main__":
    sys.exit(main())
