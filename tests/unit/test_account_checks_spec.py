"""When the poller asks for an account health check (`polling/account_checks.py` in `polling/tick.py`): every
`AccountCheckMinutes` after the last listing, at the next tick after a listing that missed a known account, only
while a post is watched, never while Genviral calls are paused; at most one read of the health record a tick."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from genviral_relay.checking.pause import GenviralPause
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.messages import AccountsRequest
from genviral_relay.polling.account_checks import AccountChecks
from genviral_relay.polling.tick import PollTick
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
        stored = self.records.records.get(ACCOUNT_HEALTH_RECORD)
        state = AccountHealth(listed_at=at, confirm=confirm).model_dump_json()
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


def test_a_failed_listing_is_asked_for_again_at_the_next_tick(poller: Poller) -> None:
    poller.listed(NOW)
    poller.world.later(EVERY)
    assert poller.asks()
    poller.world.later(timedelta(minutes=1))  # the worker's listing failed: the record says the same
    assert poller.asks()


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
