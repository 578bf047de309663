"""Several workspaces in one stack (`polling/workspace_runs.py`), on the in-memory doubles: the poller ticks each
workspace the registry names and the worker runs each workspace's messages with its own batch, so one workspace's
pause, failure or load never stops another's, and each keeps to its own concurrency cap."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import ClassVar

import pytest

from genviral_relay.checking.pause import GenviralPause
from genviral_relay.errors import EnqueueError, TokenUnavailableError
from genviral_relay.models.messages import CheckRequest, NoticesRequest, WorkRequest, WorkspacesRequest
from genviral_relay.models.upstream import Post
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.outbox import FLUSH_AFTER
from genviral_relay.observability import Metric, clear_workspace_metrics, flush_workspace_metrics, metrics
from genviral_relay.polling.stack_work import StackTick
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.work_batch import WorkBatch, WorkItem
from genviral_relay.polling.workspace_queue import HeldSends, WorkspaceQueue
from genviral_relay.polling.workspace_runs import WorkspaceBatches, WorkspaceTicks
from genviral_relay.polling.workspaces import SYNC_EVERY
from tests.builders import NOW, account, post
from tests.support.doubles import InMemoryPostSource, InMemoryStore, InMemoryWorkQueue, SteppingClock
from tests.unit.test_poll_tick_spec import owe_a_notice
from tests.unit.world import World, emitted

ACME, BETA = "acme", "beta"
POSTS = {
    ws: [f"00000000-0000-4000-{index:04d}-{number:012d}" for number in range(1, 7)]
    for index, ws in enumerate((ACME, BETA, DEFAULT_WORKSPACE), 1)
}


class WorkspaceWorld(World):
    """One workspace of the stack: its check path on its view of the stack's one table, with its own key (its own
    Genviral double); the clock is the stack's."""

    def __init__(self, table: InMemoryStore, clock: SteppingClock, workspace: str) -> None:
        super().__init__()
        self.workspace = workspace
        self.clock = clock
        self.store = table.in_workspace(workspace)


class Stack:
    """Workspaces in one stack: one table and one work queue; each workspace its own check path and key."""

    def __init__(self, *workspaces: str, threads: int = 1) -> None:
        clock = SteppingClock(NOW)
        self.table = InMemoryStore(clock=clock)
        self.worlds = {workspace: WorkspaceWorld(self.table, clock, workspace) for workspace in workspaces}
        self.queue = InMemoryWorkQueue()
        self.held = HeldSends(self.queue)
        self.threads = threads
        self.named: list[str] = list(workspaces)
        self._ticks: dict[str, PollTick] = {}
        self.clock = clock
        self.stack_tick = StackTick(notices=self.table.notices, sync_every=SYNC_EVERY, queue=self.queue, clock=clock)

    def watched(self, workspace: str, count: int = 2) -> list[str]:
        """Given `count` posts of `workspace` watched and due, which Genviral now shows posted."""
        world = self.worlds[workspace]
        post_ids = POSTS[workspace][:count]
        for post_id in post_ids:
            world.register(post(account(status="scheduled"), post_id=post_id))
            world.source.put(post(account(status="posted"), post_id=post_id, status="posted"))
        world.later(timedelta(minutes=5))
        world.forget_calls()
        metrics.clear_metrics()  # what the Given counted
        clear_workspace_metrics()
        return post_ids

    def tick_of(self, workspace: str) -> PollTick:
        world = self.worlds[workspace]
        if workspace not in self._ticks:
            self._ticks[workspace] = PollTick(
                index=world.store,
                pause=GenviralPause(world.store, world.clock),
                queue=WorkspaceQueue(self.held, workspace),
                clock=world.clock,
                discover=False,
            )
        return self._ticks[workspace]

    def ticks(self, registered: Callable[[], list[str]] | None = None, *, stack_wide: bool = False) -> WorkspaceTicks:
        """`stack_wide`: with the stack's own work (the flush, the sync) on its own, as `workspace_factories` composes
        them (the worlds' batches have no sync to run)."""
        return WorkspaceTicks(
            workspaces=registered or (lambda: list(self.worlds)),
            tick_of=self.tick_of,
            stack=self.stack_tick if stack_wide else None,
            held=self.held,
        )

    def batch_of(self, workspace: str) -> WorkBatch:
        return self.worlds[workspace].batch(threads=self.threads)

    def batches(self) -> WorkspaceBatches:
        return WorkspaceBatches(known=lambda: tuple(self.named), batch_of=self.batch_of)

    def taken(self) -> list[WorkItem]:
        """The queue's messages, as the worker receives them."""
        taken = [WorkItem(f"m{index}", request) for index, (request, _) in enumerate(self.queue.sent)]
        self.queue.sent.clear()
        return taken

    def recorded(self, workspace: str) -> set[str]:
        world = self.worlds[workspace]
        return {p for p in POSTS[workspace] if (w := world.store.get(p)) is not None and w.post_status == "posted"}


def pause(world: World) -> None:
    world.store.store_pause(until=world.clock() + timedelta(minutes=5), reason="401 unauthorized")


def workspaces_of(requests: list[WorkRequest]) -> list[str | None]:
    return [getattr(request, "workspace", None) for request in requests]


# ---------------------------------------------------------------------- the poller


def test_each_workspace_ticks_its_own_due_posts_and_its_messages_name_it() -> None:
    stack = Stack(DEFAULT_WORKSPACE, ACME)
    default_posts, acme_posts = stack.watched(DEFAULT_WORKSPACE), stack.watched(ACME)

    report = stack.ticks().run()

    sent = [request for request, _ in stack.queue.sent]
    assert report.queued == 4
    assert report.ticked == (DEFAULT_WORKSPACE, ACME)
    by_post = {request.post_id: request.workspace for request in sent if isinstance(request, CheckRequest)}
    assert by_post == {**dict.fromkeys(default_posts), **dict.fromkeys(acme_posts, ACME)}  # default's name none
    assert json.loads(sent[0].model_dump_json(exclude_none=True)).keys() == {"post_id", "queued_at", "waiting_since"}


def test_a_paused_workspace_queues_nothing_and_the_others_are_still_checked() -> None:
    stack = Stack(ACME, BETA)
    stack.watched(ACME)
    beta_posts = stack.watched(BETA)
    pause(stack.worlds[ACME])

    report = stack.ticks().run()
    failed = stack.batches().run(stack.taken())

    assert report.paused == {ACME: "401 unauthorized"}
    assert report.queued == 2
    assert failed == []
    assert stack.recorded(BETA) == set(beta_posts)
    assert stack.recorded(ACME) == set()
    assert stack.worlds[ACME].source.calls.total() == 0  # the paused key is asked nothing
    assert emitted(Metric.TICKS_PAUSED) == [1]


def test_a_workspace_whose_tick_fails_is_counted_and_the_others_tick_first(caplog: pytest.LogCaptureFixture) -> None:
    stack = Stack(ACME, BETA)
    stack.watched(ACME)
    stack.watched(BETA)
    stack.tick_of(ACME)._index = None  # type: ignore[assignment]  # a bug in acme's tick: it raises

    with pytest.raises(AttributeError):  # once the others ticked: the invocation fails as a failed tick always did
        stack.ticks().run()

    assert set(workspaces_of([request for request, _ in stack.queue.sent])) == {BETA}
    assert emitted(Metric.WORKSPACE_TICK_FAILURES) == [1]
    assert "A workspace's tick failed" in caplog.text


def test_a_notice_flush_is_asked_for_once_however_many_workspaces_tick() -> None:
    stack = Stack(ACME, BETA)
    for world in stack.worlds.values():  # (one table in a deployment: every workspace's tick sees the notice)
        owe_a_notice(world)
        world.later(FLUSH_AFTER)  # past the time its own process had to publish it

    stack.ticks(stack_wide=True).run()

    assert [request for request, _ in stack.queue.sent] == [NoticesRequest(notices="flush"), SYNC]


SYNC = WorkspacesRequest(workspaces="sync")


def test_the_stack_wide_work_is_queued_when_the_first_workspaces_tick_fails() -> None:
    stack = Stack(ACME, BETA)
    stack.watched(BETA)
    owe_a_notice(stack.worlds[ACME])
    stack.worlds[ACME].later(FLUSH_AFTER)
    stack.tick_of(ACME)._index = None  # type: ignore[assignment]  # acme (first in order) fails every tick

    with pytest.raises(AttributeError):
        stack.ticks(stack_wide=True).run()

    sent = [request for request, _ in stack.queue.sent]
    assert sent[:2] == [NoticesRequest(notices="flush"), SYNC]  # in a send of their own, before any workspace's
    assert set(workspaces_of(sent[2:])) == {BETA}


def test_the_stack_wide_work_is_queued_when_every_workspace_is_paused_and_the_sync_every_five_minutes() -> None:
    stack = Stack(ACME, BETA)
    for world in stack.worlds.values():
        pause(world)
    owe_a_notice(stack.worlds[ACME])
    stack.worlds[ACME].later(FLUSH_AFTER)
    ticks = stack.ticks(stack_wide=True)

    first = ticks.run()
    stack.worlds[ACME].later(SYNC_EVERY)
    ticks.run()

    assert first.paused.keys() == {ACME, BETA}
    assert [request for request, _ in stack.queue.sent] == [NoticesRequest(notices="flush"), SYNC] * 2


def test_a_failing_send_of_the_stack_wide_work_stops_no_workspace_and_is_asked_again() -> None:
    stack = Stack(ACME, BETA)
    stack.watched(ACME)
    failing = InMemoryWorkQueue()
    failing.failing = True
    ticks = WorkspaceTicks(
        workspaces=lambda: [ACME, BETA],
        tick_of=stack.tick_of,
        stack=StackTick(notices=stack.table.notices, sync_every=SYNC_EVERY, queue=failing, clock=stack.clock),
        held=stack.held,
    )

    with pytest.raises(EnqueueError):  # the invocation fails, as a failed tick does: its alarm sees it
        ticks.run()
    failing.failing = False
    ticks.run()

    assert set(workspaces_of([request for request, _ in stack.queue.sent])) == {ACME}
    assert [request for request, _ in failing.sent] == [SYNC]  # not remembered as asked until it was queued


def test_the_workspaces_checks_are_queued_interleaved_so_a_batch_of_ten_holds_several_workspaces() -> None:
    stack = Stack(ACME, BETA, DEFAULT_WORKSPACE)
    acme_posts, beta_posts = stack.watched(ACME, 4), stack.watched(BETA, 2)
    default_posts = stack.watched(DEFAULT_WORKSPACE, 3)

    stack.ticks().run(correlation_id="tick-1")

    sent = [(request.post_id, correlation_id) for request, correlation_id in stack.queue.sent]  # type: ignore[union-attr]
    expected = [acme_posts[0], beta_posts[0], default_posts[0], acme_posts[1], beta_posts[1], default_posts[1]]
    expected += [acme_posts[2], default_posts[2], acme_posts[3]]  # each workspace's in the order it queued them
    assert sent == [(post_id, "tick-1") for post_id in expected]


def test_a_stack_of_one_workspace_queues_what_its_tick_queues_in_its_order() -> None:
    stack = Stack(DEFAULT_WORKSPACE)
    stack.watched(DEFAULT_WORKSPACE, 4)
    alone = InMemoryWorkQueue()
    tick = PollTick(
        index=stack.worlds[DEFAULT_WORKSPACE].store,
        pause=GenviralPause(stack.table, stack.clock),
        queue=alone,
        clock=stack.clock,
        discover=False,
    )

    stack.ticks().run(correlation_id="c")
    tick.run(correlation_id="c")

    assert stack.queue.sent == alone.sent


def test_a_failed_send_of_the_workspaces_checks_fails_the_tick_and_the_next_tick_queues_them_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = Stack(ACME, BETA)
    acme_posts, beta_posts = stack.watched(ACME), stack.watched(BETA)
    ticks = stack.ticks()
    stack.queue.failing = True

    with pytest.raises(EnqueueError):  # the invocation fails, as a failed tick does: its alarm sees it
        ticks.run()
    stack.queue.failing = False
    stack.clock.now += timedelta(minutes=1)
    ticks.run()

    queued = {request.post_id for request, _ in stack.queue.sent if isinstance(request, CheckRequest)}
    assert queued == {*acme_posts, *beta_posts}  # nothing held over, nothing lost: still due, queued again
    assert "The workspaces' checks could not be queued" in caplog.text


class RefusingFirstSend(InMemoryWorkQueue):
    """SQS refusing one send of a tick's (its first), taking the others."""

    def __init__(self) -> None:
        super().__init__()
        self.sends = 0

    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        self.sends += 1
        self.failing = self.sends == 1
        return super().send(requests, correlation_id=correlation_id)


def test_a_refused_send_of_the_workspaces_checks_stops_none_of_the_sends_after_it() -> None:
    stack = Stack(ACME, BETA)
    stack.queue = RefusingFirstSend()
    stack.held = HeldSends(stack.queue)
    acme_posts, beta_posts = stack.watched(ACME, 6), stack.watched(BETA, 6)

    with pytest.raises(EnqueueError):  # the tick still fails: its alarm sees the refusal
        stack.ticks().run()

    assert stack.queue.sends == 2  # a worker's batch to a send: 12 checks, two sends
    queued = {request.post_id for request, _ in stack.queue.sent if isinstance(request, CheckRequest)}
    assert queued == {acme_posts[5], beta_posts[5]}  # the second send's; the first's are due again next tick


def test_a_workspace_whose_tick_fails_keeps_nothing_of_the_others_held(caplog: pytest.LogCaptureFixture) -> None:
    stack = Stack(ACME, BETA)
    stack.watched(ACME)
    beta_posts = stack.watched(BETA)
    stack.tick_of(BETA)._index = None  # type: ignore[assignment]  # a bug in beta's tick, after acme's queued

    with pytest.raises(AttributeError):
        stack.ticks().run()

    assert set(workspaces_of([request for request, _ in stack.queue.sent])) == {ACME}
    assert stack.held.release() == 0  # acme's checks went out; nothing waits for the next tick
    assert not {request.post_id for request, _ in stack.queue.sent} & set(beta_posts)  # type: ignore[union-attr]


def test_before_any_registry_only_the_default_workspace_ticks() -> None:
    stack = Stack(DEFAULT_WORKSPACE)
    stack.watched(DEFAULT_WORKSPACE)

    report = stack.ticks(registered=list).run()  # the registry names none yet

    assert report.ticked == (DEFAULT_WORKSPACE,)
    assert report.queued == 2


def test_a_removed_workspace_is_not_ticked_and_its_watches_stay() -> None:
    stack = Stack(ACME, BETA)
    acme_posts = stack.watched(ACME)
    stack.watched(BETA)

    report = stack.ticks(registered=lambda: [BETA]).run()

    assert report.ticked == (BETA,)
    assert set(workspaces_of([request for request, _ in stack.queue.sent])) == {BETA}
    assert all(stack.worlds[ACME].store.get(post_id) is not None for post_id in acme_posts)


# ---------------------------------------------------------------------- the worker


def test_the_worker_runs_each_workspaces_messages_with_its_own_key() -> None:
    stack = Stack(DEFAULT_WORKSPACE, ACME)
    default_posts, acme_posts = stack.watched(DEFAULT_WORKSPACE), stack.watched(ACME)
    stack.ticks().run()

    failed = stack.batches().run(stack.taken())

    assert failed == []
    assert stack.recorded(DEFAULT_WORKSPACE) == set(default_posts)
    assert stack.recorded(ACME) == set(acme_posts)
    assert stack.worlds[ACME].source.calls["get_post"] == 2 == stack.worlds[DEFAULT_WORKSPACE].source.calls["get_post"]


def test_work_of_a_workspace_the_secret_no_longer_names_is_acknowledged_without_a_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = Stack(ACME, BETA)
    acme_posts = stack.watched(ACME)
    stack.watched(BETA)
    stack.ticks().run()
    stack.named = [BETA]  # acme left the secret after its checks were queued

    failed = stack.batches().run(stack.taken())

    assert failed == []  # acknowledged: nothing comes back for a workspace that is gone
    assert stack.worlds[ACME].source.calls.total() == 0
    assert all(stack.worlds[ACME].store.get(post_id) is not None for post_id in acme_posts)  # the watches stay
    assert emitted(Metric.UNKNOWN_WORKSPACE_MESSAGES) == [2]
    assert "no longer names" in caplog.text
    assert stack.recorded(BETA) == set(POSTS[BETA][:2])


def test_a_check_queued_for_a_post_since_registered_in_another_workspace_is_acknowledged_without_a_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = Stack(ACME, BETA)
    moved, kept = stack.watched(ACME)
    stack.ticks().run()
    beta = stack.worlds[BETA].store  # meanwhile the post left acme and was registered in beta
    watch = beta.get(moved)
    assert watch is not None
    beta.save(
        watch.model_copy(update={"workspace": BETA, "version": watch.version + 1}),
        expected_version=watch.version,
        new_events=(),
    )

    failed = stack.batches().run(stack.taken())

    assert failed == []  # acknowledged: never retried to the DLQ with the wrong key
    assert stack.worlds[ACME].source.calls["get_post"] == 1  # the other post only
    assert stack.recorded(ACME) == {kept}
    assert beta.get(moved) == watch.model_copy(update={"workspace": BETA, "version": watch.version + 1})
    assert emitted(Metric.UNKNOWN_WORKSPACE_MESSAGES) == [1]
    assert "now watched in another workspace" in caplog.text


def test_stack_wide_work_runs_when_the_default_workspace_is_not_named() -> None:
    stack = Stack(DEFAULT_WORKSPACE, ACME)
    stack.named = [ACME]
    flushed: list[bool] = []
    stack.worlds[DEFAULT_WORKSPACE].path.notices.flush = lambda: flushed.append(True)  # type: ignore[method-assign]

    failed = stack.batches().run([WorkItem("m1", NoticesRequest(notices="flush"))])

    assert failed == []
    assert flushed == [True]


def test_an_unreadable_secret_drops_nothing() -> None:
    stack = Stack(DEFAULT_WORKSPACE)
    posts = stack.watched(DEFAULT_WORKSPACE)
    stack.ticks().run()

    def unreadable() -> tuple[str, ...]:
        raise TokenUnavailableError("the Genviral secret could not be read")

    failed = WorkspaceBatches(known=unreadable, batch_of=stack.batch_of).run(stack.taken())

    assert failed == []
    assert stack.recorded(DEFAULT_WORKSPACE) == set(posts)


def test_a_workspace_batch_that_raises_fails_only_its_own_messages(caplog: pytest.LogCaptureFixture) -> None:
    stack = Stack(ACME, BETA)
    stack.watched(ACME)
    beta_posts = stack.watched(BETA)
    stack.ticks().run()
    taken = stack.taken()
    stack.batch_of(ACME)  # built...
    broken = stack.worlds[ACME].batch()
    broken._pause = None  # type: ignore[assignment]  # ...and a bug in acme's: its run raises

    failed = WorkspaceBatches(
        known=lambda: (ACME, BETA), batch_of=lambda ws: broken if ws == ACME else stack.batch_of(ws)
    ).run(taken)

    assert sorted(failed) == sorted(item.message_id for item in taken if item.request.workspace == ACME)
    assert stack.recorded(BETA) == set(beta_posts)
    assert "A workspace's batch failed" in caplog.text


class GatedSource(InMemoryPostSource):
    """Counts each workspace's calls in flight; the first calls wait until `parties` calls are in flight at once."""

    in_flight: ClassVar[Counter[str]] = Counter()
    peak: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def __init__(self, workspace: str, gate: threading.Barrier, opened: threading.Event) -> None:
        super().__init__()
        self.workspace = workspace
        self.gate = gate
        self.opened = opened

    def get_post(self, post_id: str) -> Post:
        with self.lock:
            self.in_flight[self.workspace] += 1
            self.peak[self.workspace] = max(self.peak[self.workspace], self.in_flight[self.workspace])
        try:
            if not self.opened.is_set():
                with contextlib.suppress(threading.BrokenBarrierError):  # the spec's assertions say what went wrong
                    self.gate.wait()
            return super().get_post(post_id)
        finally:
            with self.lock:
                self.in_flight[self.workspace] -= 1


def test_each_workspace_keeps_to_its_own_cap_and_the_workspaces_run_at_once() -> None:
    stack = Stack(ACME, BETA, threads=2)
    for workspace in (ACME, BETA):
        stack.watched(workspace, count=6)
    opened = threading.Event()
    # Two calls of each workspace in flight together, or it breaks; once through, calls go straight on.
    gate = threading.Barrier(4, action=opened.set, timeout=10)
    for workspace, world in stack.worlds.items():
        gated = GatedSource(workspace, gate, opened)
        gated.posts = world.source.posts
        world.source = gated
        del world.path  # composed again on the gated source
    GatedSource.peak.clear()
    stack.ticks().run()

    failed = stack.batches().run(stack.taken())

    assert failed == []
    assert not gate.broken
    assert GatedSource.peak == Counter({ACME: 2, BETA: 2})  # threads_per_worker each, not shared, not exceeded
    assert stack.recorded(ACME) == set(POSTS[ACME])
    assert stack.recorded(BETA) == set(POSTS[BETA])


# ---------------------------------------------------------------------- metrics by workspace


def by_workspace(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    flush_workspace_metrics()
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return {document["workspace"]: document for document in documents}


def test_checks_and_pauses_are_counted_by_workspace_too(capsys: pytest.CaptureFixture[str]) -> None:
    stack = Stack(ACME, BETA)
    stack.watched(ACME)
    stack.watched(BETA)
    pause(stack.worlds[ACME])
    capsys.readouterr()

    stack.ticks().run()
    stack.batches().run(stack.taken())

    documents = by_workspace(capsys)
    assert documents[ACME]["TicksPaused"] == [1.0]
    assert "PostsChecked" not in documents[ACME]
    assert documents[BETA]["PostsChecked"] == [1.0, 1.0]
    assert documents[BETA]["ChecksQueued"] == [2.0]
    assert emitted(Metric.POSTS_CHECKED) == [1.0, 1.0]  # the stack-wide series the alarms watch, as before


@pytest.mark.parametrize(
    ("named", "by_name"),
    [([BETA, DEFAULT_WORKSPACE], {ACME: [2.0]}), ([BETA], {})],
    ids=["the-secret-still-names-several", "the-secret-now-names-one"],
)
def test_a_removed_workspace_s_dropped_work_is_counted_by_workspace_while_the_secret_names_several(
    capsys: pytest.CaptureFixture[str], named: list[str], by_name: dict[str, list[float]]
) -> None:
    stack = Stack(ACME, BETA)
    stack.watched(ACME)
    stack.watched(BETA)
    stack.ticks().run()
    clear_workspace_metrics()  # the ticks' figures
    stack.named = named  # acme left the secret after its checks were queued
    capsys.readouterr()

    stack.batches().run(stack.taken())

    documents = by_workspace(capsys)
    dropped = Metric.UNKNOWN_WORKSPACE_MESSAGES.value
    assert {name: document[dropped] for name, document in documents.items() if dropped in document} == by_name
    assert emitted(Metric.UNKNOWN_WORKSPACE_MESSAGES) == [2]  # the stack-wide series, either way


def test_a_stack_of_one_workspace_writes_no_second_series(capsys: pytest.CaptureFixture[str]) -> None:
    stack = Stack(DEFAULT_WORKSPACE)
    stack.watched(DEFAULT_WORKSPACE)
    capsys.readouterr()

    stack.ticks().run()
    stack.batches().run(stack.taken())

    assert by_workspace(capsys) == {}
    assert emitted(Metric.POSTS_CHECKED) == [1.0, 1.0]
