"""Backpressure in the poller (`rules/backpressure.py`) on the in-memory doubles: while the work queue
holds a backlog, a tick tops it up to one tick of the fleet's measured work, the longest-waiting
posts first, and says how many checks it deferred and for how long."""

from __future__ import annotations

from datetime import timedelta

from genviral_relay.checking.pause import GenviralPause
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.messages import CheckRequest
from genviral_relay.observability import Metric
from genviral_relay.polling.tick import PollTick
from genviral_relay.rules.backpressure import Backpressure
from tests.builders import NOW
from tests.support.doubles import InMemoryWorkQueue
from tests.unit.world import World, emitted

TICK = timedelta(minutes=1)
POSTS = [f"00000000-0000-4000-8000-{index:012d}" for index in range(1, 61)]


def due(world: World, post_ids: list[str], *, since: timedelta = timedelta(minutes=5)) -> None:
    """Watches due every tick, the first one longest."""
    for offset, post_id in enumerate(post_ids):
        world.store.save(
            WatchRecord(
                post_id=post_id, version=1, registered_at=NOW, next_check_at=NOW - since + offset * timedelta(seconds=1)
            ),
            expected_version=0,
            new_events=(),
        )


class Poller:
    """One poller execution environment: its tick and what it has learnt, and the queue it fills."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.queue = InMemoryWorkQueue()
        self.backpressure = Backpressure(tick=TICK)
        self.tick = PollTick(
            index=world.store,
            pause=GenviralPause(world.store, world.clock),
            queue=self.queue,
            clock=world.clock,
            discover=False,
            backpressure=self.backpressure,
        )

    def run(self, *, backlog: int | None) -> list[CheckRequest]:
        """A tick while the queue holds `backlog` messages; what it queued."""
        self.queue.waiting = backlog
        self.queue.sent.clear()
        self.tick.run()
        return [request for request, _ in self.queue.sent if isinstance(request, CheckRequest)]


def ids(requests: list[CheckRequest]) -> list[str]:
    return [request.post_id for request in requests]


def test_a_poller_that_knows_no_pace_queues_every_due_post(world: World) -> None:
    due(world, POSTS[:30])

    queued = Poller(world).run(backlog=500)  # a fresh execution environment: a backlog alone limits nothing

    assert len(queued) == 30
    assert emitted(Metric.CHECKS_DEFERRED) == []  # written only while something is deferred
    assert emitted(Metric.WORK_QUEUE_BACKLOG) == [500]


def test_with_a_backlog_a_tick_queues_no_more_than_the_fleet_took_in_the_last_tick(world: World) -> None:
    due(world, POSTS)
    poller = Poller(world)
    assert len(poller.run(backlog=0)) == 60
    world.later(TICK)

    # 25 of the 60 were taken in that tick, 35 still wait: the fleet's pace is 25 a tick.
    assert poller.run(backlog=35) == []
    assert poller.backpressure.capacity == 25
    world.later(TICK)

    # Another 25 taken: 10 wait, so 15 more fill the queue up to one tick of work.
    assert len(poller.run(backlog=10)) == 15
    assert emitted(Metric.CHECKS_DEFERRED) == [60, 45]
    assert emitted(Metric.WORK_QUEUE_BACKLOG) == [35, 10]  # none at the first tick: the queue was empty


def test_posts_never_queued_go_first_then_those_queued_longest_ago_each_saying_since_when_it_waits(
    world: World,
) -> None:
    due(world, POSTS[:20])
    poller = Poller(world)
    first = world.clock.now
    poller.run(backlog=0)
    world.later(TICK)
    assert poller.run(backlog=10) == []  # pace 10, and the queue holds that already: all 20 deferred
    deferred_at = world.clock.now
    due(world, POSTS[20:30], since=timedelta(minutes=1))  # newly due, never queued
    world.later(TICK)

    queued = poller.run(backlog=0)  # the fleet kept up: a limit of 20, twice what it took

    assert ids(queued) == POSTS[20:30] + POSTS[:10]
    assert [request.waiting_since for request in queued] == [world.clock.now] * 10 + [deferred_at] * 10
    assert {request.queued_at for request in queued} == {world.clock.now}
    world.later(TICK)
    assert ids(poller.run(backlog=0))[:10] == POSTS[10:20]  # deferred since `deferred_at`, queued at `first`
    assert first < deferred_at
    assert emitted(Metric.LONGEST_DEFERRAL) == [60.0]  # written only while a post waits since an earlier tick


def test_the_limit_grows_again_once_the_fleet_keeps_up(world: World) -> None:
    due(world, POSTS)
    poller = Poller(world)
    poller.run(backlog=0)
    world.later(TICK)
    poller.run(backlog=50)  # pace 10
    assert poller.backpressure.capacity == 10
    world.later(TICK)
    poller.run(backlog=0)  # 50 taken in a tick with the queue emptied: the pace was at least that
    assert poller.backpressure.capacity == 100


def test_an_unknown_backlog_limits_nothing(world: World) -> None:
    due(world, POSTS)
    poller = Poller(world)
    poller.run(backlog=0)
    world.later(TICK)
    poller.run(backlog=50)
    world.later(TICK)

    assert len(poller.run(backlog=None)) == 60  # SQS's counts could not be read: queue everything due
