"""At most one check of a post in flight (`polling/in_flight.py`), on the in-memory doubles: a message
queued before a check that already started asks Genviral nothing, a late check claims its post with
one conditional write, and a check on time writes nothing more than before."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from genviral_relay.errors import GenviralServerError
from genviral_relay.models.messages import CheckRequest
from genviral_relay.observability import Metric
from genviral_relay.polling.in_flight import CheckClaims
from genviral_relay.polling.work_batch import WorkItem
from tests.builders import NOW, POST_ID, account, post
from tests.unit.world import World, emitted

TICK = timedelta(minutes=1)
WRITES = ("transact_write_items", "update_item", "put_item", "delete_item")


def due_every_tick(world: World) -> None:
    """Given a watched post in its publishing window (due every tick) that Genviral still shows scheduled."""
    world.register(post(account(status="scheduled"), scheduled_at="2025-02-01T15:00:00Z"))
    assert world.stored().next_check_at is not None
    assert world.stored().next_check_at <= NOW
    world.forget_calls()


def message(queued_at: datetime | None, message_id: str = "m") -> WorkItem:
    return WorkItem(message_id, CheckRequest(post_id=POST_ID, queued_at=queued_at, waiting_since=queued_at))


def writes(world: World) -> int:
    return sum(world.store.calls[name] for name in WRITES)


def test_a_check_on_time_claims_nothing_and_writes_nothing(world: World) -> None:
    due_every_tick(world)
    world.later(timedelta(seconds=20))  # taken within half a tick of its queueing

    world.batch().run([message(NOW)])

    assert world.source.calls["get_post"] == 1
    assert writes(world) == 0
    assert world.stored().claimed_at is None
    assert emitted(Metric.CHECK_CLAIMS) == []


def test_a_late_check_claims_its_post_and_the_next_ticks_copy_asks_genviral_nothing(world: World) -> None:
    due_every_tick(world)
    # The poller queued the post at NOW and again a tick later; the first copy is taken only after that.
    world.later(TICK + timedelta(seconds=30))

    world.batch().run([message(NOW, "first")])
    world.later(timedelta(seconds=5))
    world.batch().run([message(NOW + TICK, "second")])

    assert world.source.calls["get_post"] == 1
    assert world.store.calls["update_item"] == 1  # the claim, and nothing else was written
    assert world.stored().claimed_at == NOW + TICK + timedelta(seconds=30)
    assert world.stored().version == 1  # a claim leaves the version alone
    assert emitted(Metric.CHECK_CLAIMS) == [1]
    assert emitted(Metric.DUPLICATE_CHECKS_SKIPPED) == [1]


def test_a_message_queued_after_the_last_check_started_is_a_check_of_its_own(world: World) -> None:
    due_every_tick(world)
    world.later(timedelta(seconds=45))  # late: claims at NOW + 45 s
    world.batch().run([message(NOW)])
    world.later(timedelta(seconds=15))  # the next tick queues it again after that check

    world.batch().run([message(NOW + TICK)])

    assert world.source.calls["get_post"] == 2
    assert emitted(Metric.DUPLICATE_CHECKS_SKIPPED) == []


def test_two_late_copies_read_before_either_claims_make_one_genviral_call(world: World) -> None:
    due_every_tick(world)
    stale = world.stored()  # both workers read the watch before either claimed it
    world.later(2 * TICK)
    claims = CheckClaims(index=world.store, clock=world.clock, tick=TICK)

    newer = claims.admit(POST_ID, stale, NOW + TICK)
    older = claims.admit(POST_ID, stale, NOW)

    assert (newer.check, older.check) == (True, False)  # the conditional write lets only one through
    assert newer.watch is not None
    assert newer.watch.claimed_at == NOW + 2 * TICK


def test_a_changed_late_check_keeps_its_claim_in_the_watch_it_saves(world: World) -> None:
    due_every_tick(world)
    world.source.put(post(account(status="posted", published_at="2025-02-01T15:00:30Z"), status="posted"))
    world.later(TICK)

    world.batch().run([message(NOW)])
    world.batch().run([message(NOW + timedelta(seconds=30))])  # the copy queued while it waited

    assert world.source.calls["get_post"] == 1
    assert world.stored().claimed_at == NOW + TICK
    assert len(world.published("sns")) == 2  # the transition and the post's completion


def test_a_message_without_a_queueing_time_is_always_checked(world: World) -> None:
    """Queued by 0.3.0: nothing says when, so nothing can say it is a duplicate."""
    due_every_tick(world)
    world.later(timedelta(hours=1))

    world.batch().run([message(None, "a")])  # an hour late: also reports the delivery delayed
    reported = writes(world)
    world.batch().run([message(None, "b")])

    assert world.source.calls["get_post"] == 2
    assert world.stored().claimed_at is None
    assert writes(world) == reported


def test_the_newest_copy_in_a_batch_decides(world: World) -> None:
    due_every_tick(world)
    world.later(timedelta(seconds=40))
    world.batch().run([message(NOW)])  # claims at NOW + 40 s
    world.later(timedelta(seconds=30))

    # The batch holds an old copy and one queued after that claim: the post is checked once more.
    world.batch().run([message(NOW, "old"), message(NOW + TICK, "new")])

    assert world.source.calls["get_post"] == 2


def test_the_batch_reports_how_long_its_checks_waited(world: World) -> None:
    due_every_tick(world)
    world.later(timedelta(seconds=90))
    deferred = WorkItem("m", CheckRequest(post_id=POST_ID, queued_at=NOW, waiting_since=NOW - 2 * TICK))

    world.batch().run([deferred])

    assert emitted(Metric.WORK_QUEUE_AGE) == [90.0]
    assert emitted(Metric.CHECK_DELAY) == [210.0]


def test_a_check_asked_for_now_claims_its_post_so_only_the_messages_queued_after_it_are_checked(
    world: World,
) -> None:
    due_every_tick(world)
    claims = CheckClaims(index=world.store, clock=world.clock, tick=TICK)
    world.later(TICK)

    started = world.clock()
    claims.claim_for_check_now(world.check.check(POST_ID, trigger="manual"), started=started)
    world.later(TICK)
    world.batch().run([message(NOW, "queued before")])
    assert world.source.calls["get_post"] == 1  # the check now's alone
    world.batch().run([message(NOW + TICK + TICK, "queued after")])

    assert world.source.calls["get_post"] == 2
    assert emitted(Metric.DUPLICATE_CHECKS_SKIPPED) == [1]


def test_a_check_asked_for_now_that_got_no_answer_claims_nothing(world: World) -> None:
    due_every_tick(world)
    claims = CheckClaims(index=world.store, clock=world.clock, tick=TICK)
    world.later(TICK)
    world.source.fail_next[POST_ID] = [GenviralServerError("busy", status=503, error_code="unavailable")]

    outcome = world.check.check(POST_ID, trigger="manual")
    claims.claim_for_check_now(outcome, started=NOW + TICK)

    assert outcome.result == "deferred"
    assert world.stored().claimed_at is None
    assert world.store.calls["update_item"] == 0


def test_a_check_now_whose_claim_fails_still_answers(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    due_every_tick(world)
    claims = CheckClaims(index=world.store, clock=world.clock, tick=TICK)

    def throttled(post_id: str, *, queued_at: datetime, now: datetime) -> bool:
        raise RuntimeError("throttled")

    monkeypatch.setattr(world.store, "claim_check", throttled)
    outcome = world.check.check(POST_ID, trigger="manual")
    claims.claim_for_check_now(outcome, started=NOW)  # logged, not raised: the check is done

    assert outcome.result == "unchanged"
    assert world.stored().claimed_at is None
    assert emitted(Metric.CHECK_CLAIMS) == []
