"""Outbox delivery (`logic/outbox.py`) on the in-memory doubles: events are committed with the state
that produced them, published after, acknowledged last, and never dropped while a target owes them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genviral_relay.errors import OutboxNotEmptyError
from genviral_relay.models.domain import PendingDelivery, WatchRecord
from genviral_relay.observability import Metric
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, post
from tests.unit.world import World, emitted

ATTEMPT = "2025-02-01T15:00:05.000Z"


def posted(account_id: str) -> dict[str, object]:
    return account(
        account_id, status="posted", last_attempted_at=ATTEMPT, published_url=f"https://x.example/{account_id}"
    )


def one_account_posted(world: World) -> None:
    """Given a watched post with two accounts, the first of which Genviral now shows posted."""
    world.register(post(account(ACCOUNT_A), account(ACCOUNT_B)))
    world.source.put(post(posted(ACCOUNT_A), account(ACCOUNT_B)))


def both_accounts_posted(world: World) -> None:
    world.register(post(account(ACCOUNT_A), account(ACCOUNT_B)))
    world.source.put(post(posted(ACCOUNT_A), posted(ACCOUNT_B), status="posted"))


def test_a_failed_publish_keeps_the_event_and_the_next_check_sends_the_same_id(world: World) -> None:
    one_account_posted(world)
    world.publishers["eventbridge"].failing = True

    first = world.check.check(POST_ID)

    (event,) = first.events
    assert first.undelivered == 1
    assert world.published("sns") == [event.event_id]
    pending = world.stored()
    assert pending.outbox == {PendingDelivery(event_id=event.event_id, target="eventbridge")}
    assert pending.next_check_at is not None
    assert pending.next_check_at <= NOW + world.policy.outbox_retry_delay

    world.publishers["eventbridge"].failing = False
    world.later(world.policy.outbox_retry_delay)
    second = world.check.check(POST_ID)

    assert second.events == ()  # no new transition...
    assert world.published("eventbridge") == [event.event_id]  # ...the same id
    assert world.published("sns") == [event.event_id]  # and not sent twice
    assert world.stored().outbox == frozenset()


def test_a_crash_after_the_commit_is_repaired_by_the_next_check_with_the_same_ids(world: World) -> None:
    one_account_posted(world)
    world.publishers["sns"].crashing = True

    with pytest.raises(SystemExit):
        world.check.check(POST_ID)

    assert len(world.stored().outbox) == 2  # committed, nothing acknowledged
    world.publishers["sns"].crashing = False
    world.check.check(POST_ID)

    assert len(world.published("sns")) == len(world.published("eventbridge")) == 1
    assert world.published("sns") == world.published("eventbridge")
    assert world.publishers["sns"].published[0].account_id == ACCOUNT_A
    assert world.stored().outbox == frozenset()


def test_pending_events_survive_the_end_of_the_watch(world: World) -> None:
    # Given every account finished (the watch ends) while a target is down
    both_accounts_posted(world)
    world.publishers["sns"].failing = True
    world.check.check(POST_ID)
    ended = world.stored()
    assert not ended.watching
    assert len(ended.outbox) == 2
    assert ended.next_check_at == NOW + world.policy.outbox_retry_delay  # still due, for the outbox
    asked = world.source.calls["get_post"]

    # When the target is back and the poller comes round
    world.publishers["sns"].failing = False
    world.later(world.policy.outbox_retry_delay)
    outcome = world.check.check(POST_ID)

    # Then the events are published without asking Genviral again, and the watch leaves the due index
    assert outcome.result == "flushed"
    assert world.source.calls["get_post"] == asked
    assert len(world.published("sns")) == 2
    assert world.stored().next_check_at is None
    assert POST_ID not in set(world.store.due_post_ids(NOW + timedelta(days=365)))


def test_events_just_committed_are_published_without_reading_them_back(world: World) -> None:
    one_account_posted(world)
    world.publishers["sns"].failing = True
    world.forget_calls()

    world.check.check(POST_ID)
    assert world.store.calls["batch_get_item"] == 0  # the check holds the documents it just wrote

    world.publishers["sns"].failing = False
    world.check.check(POST_ID)
    assert world.store.calls["batch_get_item"] == 1  # an older entry: its document is read from the table
    assert len(world.published("sns")) == 1


def test_an_event_refused_for_good_is_parked_with_its_reason_and_leaves_the_outbox(world: World) -> None:
    one_account_posted(world)
    world.publishers["eventbridge"].refusing = True

    outcome = world.check.check(POST_ID)

    ((parked, target, reason),) = world.dead_letters.parked
    assert (parked, target) == (outcome.events[0], "eventbridge")
    assert "MalformedDetail" in reason
    assert world.published("sns") == [outcome.events[0].event_id]
    assert world.stored().outbox == frozenset()
    assert emitted(Metric.EVENTS_DEAD_LETTERED) == [1]


def test_an_event_stays_in_the_outbox_when_even_parking_fails(world: World) -> None:
    one_account_posted(world)
    world.publishers["sns"].refusing = True
    world.dead_letters.failing = True

    outcome = world.check.check(POST_ID)

    assert outcome.undelivered == 1
    assert {entry.target for entry in world.stored().outbox} == {"sns"}
    assert world.dead_letters.parked == []
    # once the queue takes it again, the next check parks it
    world.dead_letters.failing = False
    world.check.check(POST_ID)
    assert [target for _, target, _ in world.dead_letters.parked] == ["sns"]
    assert world.stored().outbox == frozenset()


def test_events_for_a_target_switched_off_are_parked_not_dropped(world: World) -> None:
    one_account_posted(world)
    world.publishers["sns"].failing = True
    world.check.check(POST_ID)

    world.path_with(["eventbridge"]).check.check(POST_ID)

    ((_, target, reason),) = world.dead_letters.parked
    assert target == "sns"
    assert "no longer configured" in reason
    assert world.published("sns") == []
    assert world.stored().outbox == frozenset()


def test_an_entry_whose_event_document_expired_is_dropped_and_counted(world: World) -> None:
    # Given an outbox entry whose event left the table (past its retention)
    lost = PendingDelivery(event_id="past-retention", target="sns")
    watch = WatchRecord(post_id=POST_ID, version=1, watching=False, outbox=frozenset({lost}), registered_at=NOW)
    world.store.save(watch, expected_version=0, new_events=())

    outcome = world.check.check(POST_ID)

    assert outcome.result == "flushed"
    assert world.stored().outbox == frozenset()
    assert world.published("sns") == []
    assert emitted(Metric.OUTBOX_ENTRIES_EXPIRED) == [1]


def test_unwatch_refuses_while_events_are_pending(world: World) -> None:
    one_account_posted(world)
    world.publishers["sns"].failing = True
    world.check.check(POST_ID)

    with pytest.raises(OutboxNotEmptyError):
        world.path.unwatch.run(POST_ID)
    assert world.stored().outbox

    world.publishers["sns"].failing = False
    world.path.unwatch.run(POST_ID)
    assert world.store.get(POST_ID) is None
    assert len(world.published("sns")) == 1
