"""When the poller asks for an account health check (`polling/account_checks.py` in `polling/tick.py`): every
`AccountCheckMinutes` after the last listing, at the next tick after a listing that missed a known account, only
while a post is watched, never while Genviral calls are paused; at most one read of the health record a tick."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from genviral_relay.checking.pause import GenviralPause
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth, AccountHealthEntry
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.messages import AccountsRequest
from genviral_relay.polling.account_checks import AccountChecks
from genviral_relay.polling.tick import PollTick
from genviral_relay.rules.account_health import failed
from tests.builders import NOW
from tests.support.doubles import InMemoryWorkQueue
from tests.support.notice_doubles import InMemoryNoticeStore
from tests.unit.world import World

EVERY = timedelta(minutes=15)
LATER_POST = "00000000-0000-4000-8000-000000000001"
ACCOUNTS = AccountsRequest(accounts="check")


class Poller:
    def __init__(self, world: World) -> None:
        self.world = world
        self.records = InMemoryNoticeStore()
        self.queue = InMemoryWorkQueue()
        self.tick = PollTick(
            index=world.store,
            pause=GenviralPause(world.store, world.clock),
            queue=self.queue,
            clock=world.clock,
            discover=False,
            accounts=AccountChecks(store=self.records, index=world.store, every=EVERY),
        )

    def asks(self) -> bool:
        """Run a tick; whether it queued an account check."""
        self.queue.sent.clear()
        self.tick.run()
        return ACCOUNTS in [request for request, _ in self.queue.sent]

    def listed(self, at: datetime, *, confirm: bool = False) -> None:
        """A worker committed a listing made at `at`."""
        self.recorded(AccountHealth(listed_at=at, confirm=confirm), at)

    def recorded(self, health: AccountHealth, at: datetime) -> None:
        """A worker committed `health`."""
        stored = self.records.records.get(ACCOUNT_HEALTH_RECORD)
        state = health.model_dump_json()
        self.records.commit(
            ACCOUNT_HEALTH_RECORD,
            state,
            expected_version=stored.version if stored else 0,
            notices=(),
            owed=(),
            committed_at=at,
        )


@pytest.fixture
def poller(world: World) -> Poller:
    world.store.save(
        WatchRecord(post_id=LATER_POST, version=1, registered_at=NOW, next_check_at=NOW + timedelta(days=2)),
        expected_version=0,
        new_events=(),
    )
    return Poller(world)


def test_the_first_tick_asks_then_every_interval_after_the_last_listing(poller: Poller) -> None:
    assert poller.asks()
    poller.listed(NOW)
    poller.world.later(EVERY - timedelta(minutes=1))
    assert not poller.asks()
    poller.world.later(timedelta(minutes=1))
    assert poller.asks()


def test_a_listing_that_missed_an_account_is_confirmed_at_the_next_tick(poller: Poller) -> None:
    poller.listed(NOW, confirm=True)
    poller.world.later(timedelta(minutes=1))
    assert poller.asks()


def test_a_failed_listing_is_asked_for_again_at_the_next_tick_once_then_less_and_less_often(poller: Poller) -> None:
    poller.listed(NOW)
    poller.world.later(EVERY)
    health = AccountHealth(listed_at=NOW)
    asked_at: list[int] = []
    for minute in range(60):
        if poller.asks():
            asked_at.append(minute)
            # the worker's listing fails a few seconds later
            health = failed(health, poller.world.clock.now + timedelta(seconds=5))
            poller.recorded(health, poller.world.clock.now)
        poller.world.later(timedelta(minutes=1))
    assert asked_at[:2] == [0, 1]  # at once, then at the next tick once
    gaps = [later - earlier for earlier, later in itertools.pairwise(asked_at)]
    assert gaps == [1, 3, 5, 9, 16, 16]  # doubling (plus the tick it waits for), at most the interval


def test_a_warm_poller_reads_the_record_once_until_the_next_listing_is_due(poller: Poller) -> None:
    poller.listed(NOW)
    poller.records.calls.clear()
    for _ in range(14):
        poller.world.later(timedelta(minutes=1))
        assert not poller.asks()
    assert poller.records.calls["get_item"] == 1


def test_nothing_watched_nothing_asked(world: World) -> None:
    poller = Poller(world)
    assert not poller.asks()
    assert world.store.calls["query"] > 0  # it looked


def test_a_post_due_now_is_enough_to_know_one_is_watched(world: World) -> None:
    world.store.save(
        WatchRecord(post_id=LATER_POST, version=1, registered_at=NOW, next_check_at=NOW),
        expected_version=0,
        new_events=(),
    )
    poller = Poller(world)
    world.store.calls.clear()
    assert poller.asks()
    assert world.store.calls["query"] == 5 + 1  # the due index and the retry shard: no extra query


def test_nothing_is_asked_while_genviral_calls_are_paused(poller: Poller) -> None:
    poller.world.store.store_pause(until=NOW + timedelta(minutes=5), reason="HTTP 403")
    assert not poller.asks()
    assert poller.records.calls["get_item"] == 0


def test_without_account_checks_the_tick_never_asks(world: World, poller: Poller) -> None:
    queue = InMemoryWorkQueue()
    PollTick(
        index=world.store, pause=GenviralPause(world.store, world.clock), queue=queue, clock=world.clock, discover=False
    ).run()
    assert ACCOUNTS not in [request for request, _ in queue.sent]


def test_an_idle_deployment_reads_once_an_interval_for_the_account_checks(world: World) -> None:
    """Nothing watched: the ticks of one interval read the health record and look for a watched post once."""

    def reads(poller: Poller | None) -> tuple[int, int]:
        tick = (
            poller.tick
            if poller is not None
            else PollTick(
                index=world.store,
                pause=GenviralPause(world.store, world.clock),
                queue=InMemoryWorkQueue(),
                clock=world.clock,
                discover=False,
            )
        )
        records = poller.records if poller is not None else None
        world.store.calls.clear()
        if records is not None:
            records.calls.clear()
        for _ in range(15):
            world.later(timedelta(minutes=1))
            tick.run()
        return world.store.calls["query"], records.calls["get_item"] if records is not None else 0

    poller = Poller(world)
    poller.listed(NOW)
    world.later(timedelta(hours=1))
    queries_off, _ = reads(None)
    queries_on, record_reads = reads(poller)

    world.store.calls.clear()
    next(world.store.watched_post_ids(limit=1, awaiting_retry=False), None)
    one_look = world.store.calls["query"]
    assert record_reads == 1
    assert queries_on - queries_off == one_look  # one look for a watched post an interval
    assert not any(request == ACCOUNTS for request, _ in poller.queue.sent)


def test_a_post_due_while_idle_gets_its_listing_at_once(world: World) -> None:
    poller = Poller(world)
    poller.listed(NOW)
    world.later(timedelta(hours=1))
    assert not poller.asks()  # nothing watched: not looked at again for an interval
    world.store.save(
        WatchRecord(post_id=LATER_POST, version=1, registered_at=NOW, next_check_at=world.clock.now),
        expected_version=0,
        new_events=(),
    )
    world.later(timedelta(minutes=1))
    assert poller.asks()


def test_a_disconnect_awaiting_its_reconnection_is_listed_for_even_with_nothing_watched(world: World) -> None:
    poller = Poller(world)
    down = AccountHealthEntry(status="revoked", announced="e-1", changes=1)
    poller.recorded(AccountHealth(accounts={"a": down}, listed_at=NOW), NOW)
    asked = []
    for minute in range(1, 46):
        world.later(timedelta(minutes=1))
        if poller.asks():
            asked.append(minute)
            poller.recorded(AccountHealth(accounts={"a": down}, listed_at=world.clock.now), world.clock.now)
    assert asked == [15, 30, 45]


def test_posts_that_wait_only_for_the_retry_sweep_ask_for_no_listing_until_one_is_due(world: World) -> None:
    # A post whose accounts are final but for a failure Genviral may retry: nothing is at risk to warn of
    retrying = WatchRecord(
        post_id=LATER_POST, version=1, registered_at=NOW, next_check_at=NOW + timedelta(hours=6), awaiting_retry=True
    )
    world.store.save(retrying, expected_version=0, new_events=())
    poller = Poller(world)

    assert not poller.asks()
    world.later(timedelta(hours=6))  # its own checkpoint comes due: that tick lists (an account may be pending)
    assert poller.asks()
