"""The outbox (`checking/outbox.py`) on the in-memory doubles: events are committed with the state
that produced them, published after, acknowledged last, and never dropped while a target owes them;
a target refusing every call (an outage) parks nothing, is retried with back-off and gets the same
ids once it is back; only an event refused for what it holds is parked."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from genviral_relay.checking.outbox import Outbox
from genviral_relay.errors import OutboxNotEmptyError
from genviral_relay.models.domain import TARGETS, OutboxEntry, WatchRecord
from genviral_relay.observability import Metric
from genviral_relay.rules.schedule import PollingPolicy
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
    assert first.unpublished == 1
    assert world.published("sns") == [event.event_id]
    pending = world.stored()
    assert pending.outbox == {OutboxEntry(event_id=event.event_id, target="eventbridge")}
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

    # committed (one entry per target, and the feed's), nothing acknowledged
    assert len(world.stored().outbox) == len(TARGETS) + 1
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
    assert len(ended.outbox) == 3  # both transitions and the post's completion
    assert ended.next_check_at == NOW + world.policy.outbox_retry_delay  # still due, for the outbox
    asked = world.source.calls["get_post"]

    # When the target is back and the poller comes round
    world.publishers["sns"].failing = False
    world.later(world.policy.outbox_retry_delay)
    outcome = world.check.check(POST_ID)

    # Then the events are published without asking Genviral again, and the watch leaves the due index
    assert outcome.result == "flushed"
    assert world.source.calls["get_post"] == asked
    assert len(world.published("sns")) == 3
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

    assert outcome.unpublished == 1
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

    world.path_with(["eventbridge"]).checker.check(POST_ID)

    ((_, target, reason),) = world.dead_letters.parked
    assert target == "sns"
    assert "no longer configured" in reason
    assert world.published("sns") == []
    assert world.stored().outbox == frozenset()


def test_an_entry_whose_event_document_expired_is_dropped_and_counted(world: World) -> None:
    # Given an outbox entry whose event left the table (past its retention)
    lost = OutboxEntry(event_id="past-retention", target="sns")
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


# ---------------------------------------------------------------- a target refusing every call: an outage


def next_retry(world: World) -> None:
    """Move the clock to the watch's next check (the poller queues it at that tick)."""
    due = world.stored().next_check_at
    assert due is not None
    world.later(max(timedelta(0), due - world.clock.now))


def test_a_target_refusing_every_call_parks_nothing_and_the_same_ids_go_out_once_it_is_back(world: World) -> None:
    # Given a finished post whose two events the topic cannot take: it was deleted
    both_accounts_posted(world)
    world.publishers["sns"].down = "NotFound"
    detected = sorted(event.event_id for event in world.check.check(POST_ID).events)
    asked = world.source.calls["get_post"]

    # While the topic stays missing, every retry keeps the events
    for _ in range(3):
        next_retry(world)
        assert world.check.check(POST_ID).result == "flushed"
    assert world.dead_letters.parked == []
    assert emitted(Metric.EVENTS_DEAD_LETTERED) == []
    assert sorted(entry.event_id for entry in world.stored().outbox) == detected
    assert {entry.target for entry in world.stored().outbox} == {"sns"}

    # When the topic is back, the next retry publishes the same ids, once each, with nothing to redrive
    world.publishers["sns"].down = None
    next_retry(world)
    world.check.check(POST_ID)

    assert sorted(world.published("sns")) == sorted(world.published("eventbridge")) == detected
    assert world.stored().outbox == frozenset()
    assert world.stored().next_check_at is None  # finished: out of the due index
    assert world.source.calls["get_post"] == asked  # the retries never asked Genviral
    assert emitted(Metric.PENDING_OUTBOX_AGE) == [0.0, 120.0, 300.0, 480.0, 660.0]  # the wait, growing


def test_retries_of_a_target_that_keeps_failing_back_off_and_nothing_is_queued_in_between() -> None:
    world = World(policy=PollingPolicy(outbox_retry_delay_max=timedelta(minutes=30)))
    both_accounts_posted(world)
    world.publishers["sns"].down = "AuthorizationError"
    world.check.check(POST_ID)
    world.forget_calls()

    delays = []
    for _ in range(6):
        due = world.stored().next_check_at
        assert due is not None
        delays.append(round((due - world.clock.now).total_seconds() / 60))
        assert POST_ID not in set(world.store.due_post_ids(due - timedelta(seconds=1)))
        world.clock.now = due
        world.check.check(POST_ID)

    assert delays == [2, 4, 8, 16, 30, 30]
    assert world.publishers["sns"].calls == 1 + 6
    assert world.store.calls["transact_write_items"] == 6  # one write per retry, to move the next one back
    assert world.source.calls["get_post"] == 0


def test_the_first_failure_costs_no_write_beyond_the_commit(world: World) -> None:
    both_accounts_posted(world)
    world.publishers["sns"].down = "NotFound"
    world.forget_calls()

    world.check.check(POST_ID)

    assert world.store.calls["transact_write_items"] == 1  # the commit; its retry is the back-off's first
    assert world.stored().next_check_at == NOW + world.policy.outbox_retry_delay


def test_a_post_checked_every_tick_anyway_is_not_held_back(world: World) -> None:
    # Given a post in its publishing window (checked every tick) whose first event the topic cannot take
    one_account_posted(world)
    world.publishers["sns"].down = "NotFound"
    world.check.check(POST_ID)
    world.forget_calls()

    world.later(timedelta(minutes=1))
    outcome = world.check.check(POST_ID)

    assert outcome.result == "unchanged"
    assert outcome.unpublished == 1
    assert world.store.calls["transact_write_items"] == 0  # nothing to move: it stays due every tick
    assert POST_ID in set(world.store.due_post_ids(world.clock.now))


def test_an_entry_refused_for_what_it_holds_parks_that_event_alone(world: World) -> None:
    both_accounts_posted(world)
    world.publishers["sns"].down = "NotFound"
    bad, good, completion = world.check.check(POST_ID).events

    world.publishers["sns"].down = None
    world.publishers["sns"].refused_ids = {bad.event_id}
    next_retry(world)
    world.check.check(POST_ID)

    ((parked, target, reason),) = world.dead_letters.parked
    assert (parked.event_id, target) == (bad.event_id, "sns")
    assert reason.startswith("ValidationException")
    assert world.published("sns") == [good.event_id, completion.event_id]
    assert world.stored().outbox == frozenset()


def test_the_back_off_yields_to_a_check_that_wrote_the_watch_first(world: World) -> None:
    both_accounts_posted(world)
    world.publishers["sns"].down = "NotFound"
    world.check.check(POST_ID)
    read = world.stored()
    # another check commits after this one read the watch
    world.store.save(
        read.model_copy(update={"version": read.version + 1}), expected_version=read.version, new_events=()
    )
    outbox = Outbox(
        store=world.store,
        publishers=list(world.publishers.values()),
        dead_letters=world.dead_letters,
        clock=world.clock,
        policy=world.policy,
    )
    world.later(world.policy.outbox_retry_delay)

    answered = outbox.publish(read)

    assert answered.outbox == read.outbox
    stored = world.stored()
    assert (stored.version, stored.next_check_at) == (read.version + 1, read.next_check_at)  # its write stands


def test_a_refused_call_is_one_warning_with_the_target_and_the_code(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    both_accounts_posted(world)
    world.publishers["sns"].down = "NotFound"

    with caplog.at_level(logging.WARNING):
        world.check.check(POST_ID)

    (line,) = [record for record in caplog.records if record.getMessage() == "Publish failed; kept for the next check"]
    assert (line.target, line.reason, line.events) == ("sns", "NotFound", 3)  # type: ignore[attr-defined]
    assert "caption" not in json.dumps(line.__dict__, default=str)  # never an event body
