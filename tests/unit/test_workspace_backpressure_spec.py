"""Backpressure in a stack of several workspaces (`rules/backlog_shares.py`, `polling/workspace_queue.py`), on the
in-memory doubles: the poller's real ticks on one table and one work queue, with a fleet that takes a fixed number of
messages a tick. Each workspace paces on its own share of the shared queue, so a burst in one never holds back the
others' due posts, and several workspaces together queue what one stack with the same load would."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from genviral_relay.checking.pause import GenviralPause
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.messages import CheckRequest, WorkRequest
from genviral_relay.models.workspaces import stored_workspace
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.workspace_queue import SharedBacklog, WorkspaceQueue
from genviral_relay.polling.workspace_runs import WorkspaceTicks
from genviral_relay.rules.backpressure import Backpressure
from tests.builders import NOW
from tests.support.doubles import InMemoryStore, InMemoryWorkQueue, SteppingClock

TICK = timedelta(minutes=1)
FLEET = 100
"""Messages the workers take from the queue in a tick."""


class SharedQueue(InMemoryWorkQueue):
    """A queue whose backlog counts every message as soon as it is sent, as SQS's does: a workspace ticking after
    another sees what that one just queued."""

    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        sent = super().send(requests, correlation_id=correlation_id)
        self.waiting = (self.waiting or 0) + sent
        return sent


class Poller:
    """The stack's poller, as `workspace_factories.workspace_ticks` composes it, and a fleet draining its queue."""

    def __init__(self, load: dict[str, int], *, due_at: dict[str, datetime] | None = None) -> None:
        """`load`: each workspace's watches, all due at `due_at` (NOW when not given) and due every tick after."""
        self.clock = SteppingClock(NOW)
        table = InMemoryStore(clock=self.clock)
        self.queue = SharedQueue()
        backlog = SharedBacklog(self.queue)
        self.ticks: dict[str, PollTick] = {}
        for number, (workspace, count) in enumerate(load.items()):
            view = table.in_workspace(workspace)
            for index in range(count):
                view.save(
                    WatchRecord(
                        post_id=f"00000000-0000-4000-{number:04d}-{index:012d}",
                        version=1,
                        registered_at=NOW,
                        next_check_at=(due_at or {}).get(workspace, NOW),
                        workspace=stored_workspace(workspace),
                    ),
                    expected_version=0,
                    new_events=(),
                )
            self.ticks[workspace] = PollTick(
                index=view,
                pause=GenviralPause(view, self.clock),
                queue=WorkspaceQueue(self.queue, workspace, backlog),
                clock=self.clock,
                discover=False,
                backpressure=Backpressure(tick=TICK),
            )
        self.poller = WorkspaceTicks(workspaces=lambda: list(load), tick_of=self.ticks.__getitem__, backlog=backlog)

    def tick(self) -> dict[str, set[str]]:
        """One tick of the poller, then one of the fleet: the posts each workspace queued."""
        self.queue.sent.clear()
        self.poller.run()
        self.queue.waiting = max(0, (self.queue.waiting or 0) - FLEET)
        self.clock.now += TICK
        queued: dict[str, set[str]] = {workspace: set() for workspace in self.ticks}
        for request, _ in self.queue.sent:
            assert isinstance(request, CheckRequest)
            queued[request.workspace or "default"].add(request.post_id)
        return queued


def test_a_burst_in_one_workspace_never_holds_back_the_due_posts_of_the_quiet_ones() -> None:
    quiet = [f"quiet-{number}" for number in range(1, 10)]
    poller = Poller({"burst": 500, **dict.fromkeys(quiet, 2)}, due_at=dict.fromkeys(quiet, NOW + 3 * TICK))
    first = poller.tick()
    assert len(first["burst"]) == 500  # a fresh poller knows no pace yet: everything due, as one stack queues it
    poller.tick()
    poller.tick()
    assert poller.queue.waiting == 200  # the burst still waits in the shared queue...

    queued = poller.tick()  # ...when the quiet workspaces' posts fall due

    assert all(len(queued[workspace]) == 2 for workspace in quiet)  # each at its first tick
    assert queued["burst"] == set()  # while the burst itself stays paced: its fleet's tick of work is queued


def test_ten_evenly_loaded_workspaces_queue_together_what_one_stack_with_their_load_queues() -> None:
    one = Poller({"default": 200})
    ten = Poller({f"ws-{number}": 20 for number in range(10)})

    one_queued = [sum(map(len, one.tick().values())) for _ in range(12)]
    ten_queued = [sum(map(len, ten.tick().values())) for _ in range(12)]

    # Bound: within one tick of the fleet's work over the 12 ticks. Each workspace rounds its share and queues at least
    # `Backpressure.minimum` (10, one worker batch) a tick, so ten of them may top the queue up by at most 10 x 10 more
    # than one stack at a tick, which the next tick's measure takes back. Before the shares, ten queued 460 here
    # against one stack's 1200 (20 a tick once paced: each read the others' messages as its own fleet's slowness).
    assert abs(sum(ten_queued) - sum(one_queued)) <= FLEET
    assert sum(one_queued) >= 11 * FLEET  # the fleet's pace, all but the first tick's backlog
