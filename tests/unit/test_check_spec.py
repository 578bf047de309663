"""The check of one post (`checking/check.py`) on the in-memory doubles: what it asks Genviral, what it
writes, what it reports."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta

from genviral_relay.errors import GenviralContractError, GenviralServerError, GenviralUnavailableError
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.pause import PauseStatus
from genviral_relay.observability import Metric
from genviral_relay.relay import polling_policy
from genviral_relay.rules.schedule import PollingPolicy
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, outcomes, post
from tests.unit.world import World, emitted

ATTEMPT = "2025-02-01T15:00:05.000Z"
OTHER_POST = "22222222-2222-2222-2222-222222222222"
WRITES = ("transact_write_items", "update_item", "put_item", "delete_item")


def scheduled() -> dict[str, object]:
    return account(status="scheduled")


def posted(account_id: str = ACCOUNT_A) -> dict[str, object]:
    return account(account_id, status="posted", last_attempted_at=ATTEMPT, published_url="https://x.example/1")


def writes(world: World) -> dict[str, int]:
    return {call: count for call, count in world.store.calls.items() if call in WRITES}


def test_a_registration_stores_a_watch_and_says_it_created_it(world: World) -> None:
    # When a scheduled post is registered
    outcome = world.register(post(scheduled(), account(ACCOUNT_B, status="pending")))

    # Then it is watched, its states recorded, and checked every tick from now (its time has come)
    assert (outcome.result, outcome.created, outcome.events) == ("changed", True, ())
    stored = world.stored()
    assert stored.version == 1
    assert stored.watching
    assert stored.post_status == "scheduled"
    assert {account_id: state.status for account_id, state in stored.accounts.items()} == {
        ACCOUNT_A: "scheduled",
        ACCOUNT_B: "pending",
    }
    assert stored.next_check_at == NOW


def test_registering_a_watched_post_again_creates_nothing(world: World) -> None:
    world.register(post(scheduled()))

    again = world.check.check(POST_ID, trigger="register")

    assert (again.result, again.created) == ("unchanged", False)
    assert world.stored().version == 1


def test_the_first_sighting_of_a_final_account_emits_with_previous_status_null(world: World) -> None:
    outcome = world.register(post(posted(), account(ACCOUNT_B, status="scheduled")))

    (event,) = outcome.events
    assert (event.account_id, event.status, event.previous_status) == (ACCOUNT_A, "posted", None)
    assert world.published("sns") == world.published("eventbridge") == [event.event_id]
    assert outcome.unpublished == 0


def test_a_change_since_the_last_check_emits_from_the_recorded_status(world: World) -> None:
    world.register(post(scheduled()))
    world.source.put(post(posted()))

    outcome = world.check.check(POST_ID)

    assert [(event.previous_status, event.status) for event in outcomes(outcome.events)] == [("scheduled", "posted")]
    assert world.stored().accounts[ACCOUNT_A].status == "posted"


def test_a_post_not_watched_is_not_checked_unless_registered(world: World) -> None:
    world.source.put(post(posted()))

    outcome = world.check.check(POST_ID, trigger="manual")

    assert outcome.result == "not_watched"
    assert world.source.calls["get_post"] == 0
    assert world.store.get(POST_ID) is None


def test_an_unchanged_check_writes_nothing(world: World) -> None:
    world.register(post(scheduled()))
    world.forget_calls()

    outcome = world.check.check(POST_ID)

    assert outcome.result == "unchanged"
    assert world.source.calls["get_post"] == 1
    assert writes(world) == {}
    assert world.stored().version == 1
    assert emitted(Metric.POSTS_UNCHANGED) == [1]


def test_a_404_ends_the_watch(world: World) -> None:
    world.register(post(scheduled()))
    del world.source.posts[POST_ID]

    outcome = world.check.check(POST_ID)

    assert outcome.result == "post_not_found"
    stored = world.stored()
    assert (stored.watching, stored.ended_reason, stored.next_check_at) == (False, "post_not_found", None)
    assert POST_ID not in set(world.store.due_post_ids(NOW + timedelta(days=365)))


def test_a_404_at_registration_stores_nothing(world: World) -> None:
    outcome = world.check.check(POST_ID, trigger="register")

    assert (outcome.result, outcome.created) == ("post_not_found", False)
    assert world.store.get(POST_ID) is None


def test_a_transient_error_defers_the_check_and_keeps_the_state(world: World) -> None:
    world.register(post(scheduled()))
    before = world.stored()
    world.source.put(post(posted()))
    error = GenviralServerError("get_failed", status=500, error_code="get_failed")
    world.source.fail_next[POST_ID] = [error]

    outcome = world.check.check(POST_ID)

    assert (outcome.result, outcome.error, outcome.events) == ("deferred", error, ())
    assert world.stored() == before  # still due, last-seen states untouched: the next check sees the change
    assert world.store.genviral_pause(NOW) == PauseStatus()  # a transient error pauses nothing
    assert outcomes(world.check.check(POST_ID).events)[0].previous_status == "scheduled"


def test_an_answer_about_another_post_defers_the_check(world: World) -> None:
    # Given Genviral answers the wrong post (a contract break): its states must not be recorded
    world.register(post(scheduled()))
    before = world.stored()
    world.source.posts[POST_ID] = post(posted(), post_id=OTHER_POST)

    outcome = world.check.check(POST_ID)

    assert outcome.result == "deferred"
    assert isinstance(outcome.error, GenviralContractError)
    assert OTHER_POST in str(outcome.error)
    assert world.stored() == before
    assert world.store.get(OTHER_POST) is None
    assert world.published("sns") == []


def test_a_registration_under_an_error_stores_a_bare_watch_due_now(world: World) -> None:
    world.source.put(post(posted()))
    world.source.fail_next[POST_ID] = [GenviralUnavailableError("connection reset")]

    outcome = world.check.check(POST_ID, trigger="register")

    assert (outcome.result, outcome.created) == ("deferred", True)
    stored = world.stored()
    assert (stored.version, stored.post_status, stored.accounts, stored.next_check_at) == (1, None, {}, NOW)
    assert POST_ID in set(world.store.due_post_ids(NOW))
    # ...and its first answer later is a first sighting
    first = world.check.check(POST_ID)
    assert (first.result, first.created) == ("changed", False)
    assert [event.previous_status for event in outcomes(first.events)] == [None]


def test_a_check_that_another_check_overtook_reports_a_conflict_and_publishes_nothing(world: World) -> None:
    # Given a check read the watch, then another check committed the same change first
    world.register(post(scheduled()))
    stale = world.stored()
    world.source.put(post(posted()))
    first = world.check.check(POST_ID)

    # When the slower check commits what it found
    late = world.check.check_watch(POST_ID, stale)

    # Then the first check's result stands, and each target got the event once
    assert late.result == "conflict"
    assert late.watch == world.stored()
    assert world.published("sns") == world.published("eventbridge") == [event.event_id for event in first.events]
    assert emitted(Metric.CHECK_CONFLICTS) == [1]


def test_a_due_check_of_an_ended_watch_only_flushes_and_asks_genviral_nothing(world: World) -> None:
    ended = WatchRecord(post_id=POST_ID, version=1, watching=False, ended_reason="finished", registered_at=NOW)
    world.store.save(ended, expected_version=0, new_events=())
    world.source.put(post(posted()))

    due = world.check.check(POST_ID, trigger="due")

    assert due.result == "flushed"
    assert world.source.calls["get_post"] == 0
    assert world.stored() == ended
    # an operator's check-now still asks
    assert world.check.check(POST_ID, trigger="manual").result == "changed"
    assert world.source.calls["get_post"] == 1


def poll_until(world: World, end: timedelta) -> list[tuple[timedelta, list[str]]]:
    """Run the poller's turns a tick apart until `end` after NOW: (when, event types) of each check it made."""
    checks = []
    while world.clock.now - NOW <= end:
        due = world.stored().next_check_at
        if due is not None and due <= world.clock.now:
            outcome = world.check.check(POST_ID)
            checks.append((world.clock.now - NOW, [event.event_type for event in outcome.events]))
        world.later(world.policy.tick)
    return checks


def test_the_delayed_threshold_is_checked_even_while_the_overdue_back_off_spaces_the_checks() -> None:
    # Given a threshold past the hour after which an unfinished post's checks back off
    threshold = timedelta(minutes=95)
    world = World(policy=replace(PollingPolicy(), delayed_after=threshold))
    world.register(post(account(status="pending")))  # scheduled at NOW

    checks = poll_until(world, timedelta(hours=3))

    # Then a check lands on the threshold itself and reports the delay there, once
    delayed_at = [when for when, types in checks if "post.account.delayed" in types]
    assert delayed_at == [threshold]
    spaced = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(checks)]
    assert max(spaced) > timedelta(minutes=5)  # the back-off did space the checks out...
    assert len(world.published("sns")) == 1  # ...and the delay went out once


def test_without_the_signal_the_back_off_is_not_bent() -> None:
    world = World(policy=replace(PollingPolicy(), delayed_after=None))
    world.register(post(account(status="pending")))

    checks = poll_until(world, timedelta(hours=3))

    assert all(types == [] for _, types in checks)
    assert timedelta(minutes=95) not in [when for when, _ in checks]


def test_delayed_after_minutes_zero_turns_the_signal_off() -> None:
    assert polling_policy(delayed_after_minutes=0).delayed_after is None
    assert polling_policy(delayed_after_minutes=20).delayed_after == timedelta(minutes=20)
    assert polling_policy().delayed_after == timedelta(minutes=15)  # the template's default
