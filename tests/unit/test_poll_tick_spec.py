"""A poller tick (`polling/tick.py`) on the in-memory doubles: what it queues for the workers, and that
it queues nothing while Genviral calls are paused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genviral_relay.checking.pause import GenviralPause
from genviral_relay.errors import EnqueueError
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.messages import CheckRequest, DiscoverRequest, NoticesRequest, SweepRequest, WorkRequest
from genviral_relay.models.relay_notices import RelayStateEvent
from genviral_relay.notices.outbox import FLUSH_AFTER
from genviral_relay.observability import Metric
from genviral_relay.polling.stack_work import StackTick
from genviral_relay.polling.tick import PollTick
from tests.builders import NOW
from tests.support.doubles import InMemoryWorkQueue
from tests.unit.world import World, emitted

DUE_NOW, DUE_BEFORE, DUE_LATER, WAITING = (f"00000000-0000-4000-8000-{index:012d}" for index in range(1, 5))


def store_watch(world: World, post_id: str, **fields: object) -> None:
    world.store.save(
        WatchRecord(post_id=post_id, version=1, registered_at=NOW, **fields),  # type: ignore[arg-type]
        expected_version=0,
        new_events=(),
    )


def tick(world: World, queue: InMemoryWorkQueue, *, discover: bool = False) -> PollTick:
    return PollTick(
        index=world.store,
        pause=GenviralPause(world.store, world.clock),
        queue=queue,
        clock=world.clock,
        discover=discover,
    )


def queued(queue: InMemoryWorkQueue) -> list[WorkRequest]:
    return [request for request, _ in queue.sent]


def due_check(post_id: str) -> CheckRequest:
    """A check this tick queued, wanted since this tick."""
    return CheckRequest(post_id=post_id, queued_at=NOW, waiting_since=NOW)


@pytest.fixture
def queue() -> InMemoryWorkQueue:
    return InMemoryWorkQueue()


def test_a_tick_queues_a_check_for_every_due_watch_only(world: World, queue: InMemoryWorkQueue) -> None:
    store_watch(world, DUE_NOW, next_check_at=NOW)
    store_watch(world, DUE_BEFORE, next_check_at=NOW - timedelta(hours=1))
    store_watch(world, DUE_LATER, next_check_at=NOW + timedelta(seconds=1))
    store_watch(world, "00000000-0000-4000-8000-000000000099", watching=False)  # out of the due index

    report = tick(world, queue).run()

    assert report.queued == 2
    assert sorted(queued(queue), key=str) == sorted([due_check(DUE_NOW), due_check(DUE_BEFORE)], key=str)
    assert emitted(Metric.CHECKS_QUEUED) == [2]
    assert emitted(Metric.POLLER_TICKS) == [1]


def test_a_tick_queues_the_retry_sweep_while_a_post_awaits_a_retry(world: World, queue: InMemoryWorkQueue) -> None:
    store_watch(world, WAITING, next_check_at=NOW + timedelta(hours=1), awaiting_retry=True)

    tick(world, queue).run()

    assert queued(queue) == [SweepRequest(sweep="retry")]  # and no check: the post is not due


def test_a_tick_queues_no_sweep_when_no_post_awaits_a_retry(world: World, queue: InMemoryWorkQueue) -> None:
    store_watch(world, DUE_NOW, next_check_at=NOW)

    tick(world, queue).run()

    assert queued(queue) == [due_check(DUE_NOW)]


def test_a_tick_in_discover_mode_queues_a_discover_run(world: World, queue: InMemoryWorkQueue) -> None:
    report = tick(world, queue, discover=True).run()

    assert report.queued == 1
    assert queued(queue) == [DiscoverRequest(discover="posts")]


def test_a_tick_while_paused_queues_nothing(world: World, queue: InMemoryWorkQueue) -> None:
    store_watch(world, DUE_NOW, next_check_at=NOW)
    store_watch(world, WAITING, next_check_at=NOW + timedelta(hours=1), awaiting_retry=True)
    world.store.store_pause(until=NOW + timedelta(minutes=5), reason="402 subscription_required")

    report = tick(world, queue, discover=True).run()

    assert (report.queued, report.paused) == (0, "402 subscription_required")
    assert queue.sent == []
    assert emitted(Metric.TICKS_PAUSED) == [1]
    assert emitted(Metric.POLLER_TICKS) == [1]  # a paused tick still ran


def test_every_message_carries_the_ticks_correlation_id(world: World, queue: InMemoryWorkQueue) -> None:
    store_watch(world, DUE_NOW, next_check_at=NOW)
    store_watch(world, WAITING, next_check_at=NOW + timedelta(hours=1), awaiting_retry=True)

    tick(world, queue, discover=True).run(correlation_id="tick-7")

    assert len(queue.sent) == 3
    assert {correlation_id for _, correlation_id in queue.sent} == {"tick-7"}


def test_a_tick_whose_messages_cannot_be_queued_fails(world: World, queue: InMemoryWorkQueue) -> None:
    store_watch(world, DUE_NOW, next_check_at=NOW)
    queue.failing = True

    with pytest.raises(EnqueueError):
        tick(world, queue).run()
    assert emitted(Metric.POLLER_TICKS) == []  # the silence alarm sees the tick did not run to the end


def owe_a_notice(world: World) -> None:
    """A notice committed now that SNS has not taken (its process crashed, or SNS refused it)."""
    notice = RelayStateEvent(
        event_id="00000000-0000-5000-8000-000000000001",
        event_type="relay.paused",
        detected_at="2025-02-01T15:00:00.000Z",
        reason="402",
        http_status=402,
        until=None,
        paused_at="2025-02-01T15:00:00.000Z",
    )
    world.store.notices.commit("X", "{}", expected_version=0, notices=(notice,), owed=("sns",), committed_at=NOW)


def flushing_tick(world: World, queue: InMemoryWorkQueue) -> StackTick:
    return StackTick(notices=world.store.notices, sync_every=None, queue=queue, clock=world.clock)


def test_a_tick_queues_one_flush_once_a_notice_is_owed_past_its_own_process(
    world: World, queue: InMemoryWorkQueue
) -> None:
    owe_a_notice(world)

    assert flushing_tick(world, queue).run() == 0
    assert queued(queue) == []  # its own process may still be publishing it

    world.later(FLUSH_AFTER)
    world.store.calls.clear()
    assert flushing_tick(world, queue).run() == 1
    assert queued(queue) == [NoticesRequest(notices="flush")]
    assert world.store.calls["query"] == 1  # one look at the owed notices a tick


def test_a_notice_left_with_nothing_owed_queues_no_flush(world: World, queue: InMemoryWorkQueue) -> None:
    owe_a_notice(world)
    world.store.notices.empty("00000000-0000-5000-8000-000000000001")  # a crash mid-acknowledge, in 0.5
    world.later(FLUSH_AFTER)

    flushing_tick(world, queue).run()

    assert not any(isinstance(request, NoticesRequest) for request in queued(queue))
