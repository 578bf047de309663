"""Naming accounts (`checking/accounts.py`): the refresh rules, and the lookup on the in-memory doubles."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genviral_relay.checking.accounts import DIRECTORY_TTL, RETRY_AFTER, AccountLookup, describe, needs_refresh
from genviral_relay.errors import GenviralServerError, GenviralTierNotAllowedError
from genviral_relay.models.domain import AccountDirectory, DirectoryEntry
from genviral_relay.models.events import AccountOutcomeEvent, AccountRef, PostCompletedEvent, parse_event
from genviral_relay.observability import Metric
from genviral_relay.rules.transitions import detect_transitions
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, outcomes, post
from tests.support.doubles import InMemoryPostSource, InMemoryStore, SteppingClock
from tests.unit.world import World, emitted

OTHER_POST = "22222222-2222-2222-2222-222222222222"
UNLISTED = "99999999-9999-9999-9999-999999999999"
CAFE = DirectoryEntry(platform="tiktok", username="cafe", display_name="Cafe", type="byo")


def directory(refreshed_ago: timedelta, attempted_ago: timedelta | None = None) -> AccountDirectory:
    return AccountDirectory(
        accounts={ACCOUNT_A: CAFE},
        refreshed_at=NOW - refreshed_ago,
        last_attempt_at=NOW - (attempted_ago if attempted_ago is not None else refreshed_ago),
    )


# ---------------------------------------------------------------- the rules


def test_no_directory_yet_needs_a_listing() -> None:
    assert needs_refresh(None, [ACCOUNT_A], NOW)


def test_a_known_account_in_a_fresh_directory_needs_none() -> None:
    assert not needs_refresh(directory(timedelta(minutes=30)), [ACCOUNT_A], NOW)


def test_an_unknown_account_needs_a_listing_unless_one_was_asked_for_in_the_last_minutes() -> None:
    assert needs_refresh(directory(RETRY_AFTER), [ACCOUNT_A, ACCOUNT_B], NOW)
    assert not needs_refresh(directory(RETRY_AFTER - timedelta(seconds=1)), [ACCOUNT_B], NOW)


def test_a_directory_older_than_the_ttl_needs_a_listing() -> None:
    assert needs_refresh(directory(DIRECTORY_TTL), [ACCOUNT_A], NOW)
    assert not needs_refresh(directory(DIRECTORY_TTL - timedelta(seconds=1)), [ACCOUNT_A], NOW)


def test_after_a_failed_listing_the_next_waits_the_same_minutes() -> None:
    stale = directory(DIRECTORY_TTL * 2, attempted_ago=timedelta(minutes=1))
    assert not needs_refresh(stale, [ACCOUNT_B], NOW)
    assert needs_refresh(directory(DIRECTORY_TTL * 2, attempted_ago=RETRY_AFTER), [ACCOUNT_A], NOW)


def test_describe_names_a_listed_account_and_gives_only_the_id_of_another() -> None:
    known = directory(timedelta(0))
    assert describe(known, ACCOUNT_A) == AccountRef(
        id=ACCOUNT_A, platform="tiktok", username="cafe", display_name="Cafe", type="byo"
    )
    assert describe(known, ACCOUNT_B) == AccountRef(id=ACCOUNT_B)
    assert describe(None, ACCOUNT_A).model_dump() == {
        "id": ACCOUNT_A,
        "platform": None,
        "username": None,
        "display_name": None,
        "type": None,
    }


# ---------------------------------------------------------------- the lookup


class Lookup:
    def __init__(self) -> None:
        self.clock = SteppingClock(NOW)
        self.store = InMemoryStore()
        self.source = InMemoryPostSource()
        self.lookup = AccountLookup(state=self.store, source=self.source, clock=self.clock)


@pytest.fixture
def rig() -> Lookup:
    return Lookup()


def test_the_first_lookup_lists_the_accounts_and_stores_the_directory(rig: Lookup) -> None:
    rig.source.set_account(ACCOUNT_A, platform="instagram", username="cafe", display_name="Cafe", type="hosted")

    named = rig.lookup.describe([ACCOUNT_A])

    assert named == {
        ACCOUNT_A: AccountRef(id=ACCOUNT_A, platform="instagram", username="cafe", display_name="Cafe", type="hosted")
    }
    assert rig.source.calls["list_accounts"] == 1
    stored = rig.store.account_directory()
    assert stored is not None
    assert (stored.refreshed_at, stored.last_attempt_at) == (NOW, NOW)


def test_a_known_account_is_named_from_the_stored_directory_without_a_listing(rig: Lookup) -> None:
    rig.source.set_account(ACCOUNT_A)
    rig.lookup.describe([ACCOUNT_A])
    rig.clock.now += timedelta(minutes=30)
    rig.source.calls.clear()
    rig.store.calls.clear()

    assert rig.lookup.describe([ACCOUNT_A])[ACCOUNT_A].platform == "tiktok"

    assert rig.source.calls["list_accounts"] == 0
    assert dict(rig.store.calls) == {"get_item": 1}


def test_an_unknown_account_lists_again_once_and_a_second_within_minutes_does_not(rig: Lookup) -> None:
    rig.source.set_account(ACCOUNT_A)
    rig.lookup.describe([ACCOUNT_A])
    rig.clock.now += RETRY_AFTER
    rig.source.set_account(ACCOUNT_B, platform="youtube")

    assert rig.lookup.describe([ACCOUNT_B])[ACCOUNT_B].platform == "youtube"
    assert rig.source.calls["list_accounts"] == 2

    rig.clock.now += RETRY_AFTER - timedelta(seconds=1)
    revoked = "99999999-9999-9999-9999-999999999999"
    assert rig.lookup.describe([revoked]) == {revoked: AccountRef(id=revoked)}
    assert rig.source.calls["list_accounts"] == 2


def test_a_revoked_account_is_named_by_its_id_alone(rig: Lookup) -> None:
    rig.source.set_account(ACCOUNT_A)  # ACCOUNT_B is connected no more: Genviral does not list it

    named = rig.lookup.describe([ACCOUNT_A, ACCOUNT_B])

    assert named[ACCOUNT_B] == AccountRef(id=ACCOUNT_B)
    assert named[ACCOUNT_A].username is not None


def test_a_directory_past_its_ttl_is_listed_again(rig: Lookup) -> None:
    rig.source.set_account(ACCOUNT_A, display_name="Old name")
    rig.lookup.describe([ACCOUNT_A])
    rig.source.set_account(ACCOUNT_A, display_name="New name")
    rig.clock.now += DIRECTORY_TTL

    assert rig.lookup.describe([ACCOUNT_A])[ACCOUNT_A].display_name == "New name"
    assert rig.source.calls["list_accounts"] == 2


@pytest.mark.parametrize(
    "error",
    [
        GenviralServerError("accounts failed", status=500, error_code="accounts_failed"),
        GenviralTierNotAllowedError("no", status=403, error_code="tier_not_allowed"),
    ],
)
def test_a_failed_listing_is_a_metric_names_by_id_and_is_not_asked_again_for_minutes(
    rig: Lookup, error: Exception
) -> None:
    rig.source.fail_next["accounts"] = [error]

    assert rig.lookup.describe([ACCOUNT_A]) == {ACCOUNT_A: AccountRef(id=ACCOUNT_A)}

    assert emitted(Metric.ACCOUNT_DIRECTORY_FAILURES) == [1.0]
    stored = rig.store.account_directory()
    assert stored is not None
    assert (stored.refreshed_at, stored.last_attempt_at) == (None, NOW)
    rig.clock.now += timedelta(minutes=1)
    rig.lookup.describe([ACCOUNT_A])
    assert rig.source.calls["list_accounts"] == 1


def test_a_failed_listing_keeps_the_names_already_known(rig: Lookup) -> None:
    rig.source.set_account(ACCOUNT_A)
    rig.lookup.describe([ACCOUNT_A])
    rig.clock.now += DIRECTORY_TTL
    rig.source.fail_next["accounts"] = [GenviralServerError("down", status=500, error_code="accounts_failed")]

    assert rig.lookup.describe([ACCOUNT_A])[ACCOUNT_A].platform == "tiktok"
    assert emitted(Metric.ACCOUNT_DIRECTORY_FAILURES) == [1.0]


class BrokenStore(InMemoryStore):
    def account_directory(self) -> AccountDirectory | None:
        raise RuntimeError("the table is unavailable")

    def save_account_directory(self, directory: AccountDirectory) -> None:
        raise RuntimeError("the table is unavailable")


def test_a_failing_table_still_names_the_accounts_from_a_listing(rig: Lookup) -> None:
    rig.source.set_account(ACCOUNT_A)
    lookup = AccountLookup(state=BrokenStore(), source=rig.source, clock=rig.clock)

    assert lookup.describe([ACCOUNT_A])[ACCOUNT_A].platform == "tiktok"
    assert emitted(Metric.ACCOUNT_DIRECTORY_FAILURES) == [1.0, 1.0]


def test_without_an_account_source_accounts_are_named_by_id(rig: Lookup) -> None:
    lookup = AccountLookup(state=rig.store, source=None, clock=rig.clock)

    assert lookup.describe([ACCOUNT_A]) == {ACCOUNT_A: AccountRef(id=ACCOUNT_A)}
    assert rig.store.account_directory() is None


# ---------------------------------------------------------------- the check names the accounts of its events


def posted(account_id: str = ACCOUNT_A) -> dict[str, object]:
    return account(account_id, status="posted", last_attempted_at="2025-02-01T15:00:05.000Z")


def test_an_event_carries_the_account_as_genviral_lists_it(world: World) -> None:
    world.source.set_account(ACCOUNT_A, platform="instagram", username="cafe", display_name="Cafe", type="hosted")

    event, completion = world.register(post(posted())).events

    assert isinstance(event, AccountOutcomeEvent)
    assert isinstance(completion, PostCompletedEvent)
    assert event.account == AccountRef(
        id=ACCOUNT_A, platform="instagram", username="cafe", display_name="Cafe", type="hosted"
    )
    assert completion.accounts[0].account == event.account  # the completion names its accounts alike
    assert event.sns_attributes()["platform"] == "instagram"
    assert world.publishers["sns"].published == [event, completion]
    (stored,) = world.store.load_events(POST_ID, [event.event_id])
    assert isinstance(stored, AccountOutcomeEvent)
    assert stored.account == event.account


def test_a_revoked_account_gives_its_id_with_nulls_and_no_platform_attribute(world: World) -> None:
    world.source.set_account(ACCOUNT_B)  # ACCOUNT_A is not listed: revoked or removed

    (event,) = outcomes(world.register(post(posted())).events)

    assert event.account == AccountRef(id=ACCOUNT_A)
    assert "platform" not in event.sns_attributes()


def test_an_unknown_account_lists_once_and_another_within_minutes_does_not(world: World) -> None:
    world.source.set_account(ACCOUNT_A)
    world.register(post(posted()))
    assert world.source.calls["list_accounts"] == 1
    world.later(RETRY_AFTER)
    world.source.set_account(ACCOUNT_B, platform="youtube")

    (event,) = outcomes(world.register(post(posted(ACCOUNT_B), post_id=OTHER_POST)).events)
    assert event.account.platform == "youtube"
    assert world.source.calls["list_accounts"] == 2

    world.later(timedelta(minutes=1))
    third = "33333333-3333-3333-3333-333333333333"
    (unknown,) = outcomes(world.register(post(account(UNLISTED, status="failed"), post_id=third)).events)
    assert unknown.account == AccountRef(id=UNLISTED)
    assert world.source.calls["list_accounts"] == 2


def test_the_accounts_call_failing_still_emits_with_the_id_and_counts_a_failure(world: World) -> None:
    world.source.fail_next["accounts"] = [GenviralServerError("down", status=500, error_code="accounts_failed")]

    outcome = world.register(post(posted()))

    assert outcome.result == "changed"
    (event,) = outcomes(outcome.events)
    assert event.account == AccountRef(id=ACCOUNT_A)
    assert world.published("sns") == [event.event_id for event in outcome.events]  # the completion too
    assert emitted(Metric.ACCOUNT_DIRECTORY_FAILURES) == [1.0]


def test_a_check_that_emits_nothing_reads_no_directory(world: World) -> None:
    world.register(post(account(status="scheduled")))
    world.forget_calls()

    assert world.check.check(POST_ID).result == "unchanged"
    world.source.put(post(account(status="pending")))
    assert world.check.check(POST_ID).result == "changed"

    assert world.source.calls["list_accounts"] == 0
    assert world.store.calls["get_item"] == 2  # the watch, twice: never the directory
    assert world.store.account_directory() is None


def test_a_silent_baseline_reads_no_directory(world: World) -> None:
    outcome = world.check.apply_answer(post(posted()), None, silent=True)

    assert (outcome.result, outcome.events) == ("changed", ())
    assert world.source.calls["list_accounts"] == 0


def test_detection_names_the_accounts_it_is_given_and_others_by_id() -> None:
    named = {ACCOUNT_A: AccountRef(id=ACCOUNT_A, platform="tiktok")}

    events = detect_transitions(None, post(posted(), posted(ACCOUNT_B)), NOW, accounts=named).events

    assert [event.account for event in outcomes(events)] == [named[ACCOUNT_A], AccountRef(id=ACCOUNT_B)]
    plain = detect_transitions(None, post(posted(), posted(ACCOUNT_B)), NOW).events
    assert [event.event_id for event in plain] == [event.event_id for event in events]  # names never re-key


def test_an_event_stored_by_0_3_reads_with_an_id_only_account() -> None:
    (event,) = outcomes(detect_transitions(None, post(posted()), NOW).events)
    stored = event.model_dump(mode="json", exclude={"account"})

    read = parse_event(stored)
    assert isinstance(read, AccountOutcomeEvent)
    assert read.account == AccountRef(id=ACCOUNT_A)
