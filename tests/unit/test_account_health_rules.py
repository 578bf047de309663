"""Account health, the pure rule (`rules/account_health.py`): what a listing of `GET /accounts` says changed, which
changes are announced and under which id, what is at risk, and when the next listing is due."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from genviral_relay.models.account_health import AccountHealth
from genviral_relay.models.domain import AccountSnapshot, WatchRecord
from genviral_relay.models.relay_notices import POSTS_AT_RISK_LISTED, PostsAtRisk
from genviral_relay.models.upstream import Account, AccountListing
from genviral_relay.rules.account_health import (
    MAX_NOTICES_PER_COMMIT,
    HealthStep,
    account_event_id,
    changed_accounts,
    failed,
    next_listing_at,
    observe,
    posts_at_risk,
)
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW

TICK = timedelta(minutes=1)
ONE_AT_RISK = PostsAtRisk(count=1, post_ids=("11111111-1111-1111-1111-111111111111",))
WATCHED_A = {ACCOUNT_A: ONE_AT_RISK}
ACCOUNT_C = "3c6a1f5e-0d7b-4c8e-9a1b-2f3e4d5c6b7a"


def listed(account_id: str = ACCOUNT_A, status: str | None = "active") -> Account:
    return Account(id=account_id, platform="tiktok", username="cafe", display_name="Cafe", type="byo", status=status)


def answer(*accounts: Account, unreadable: tuple[str, ...] = (), workspace_id: str = "ws-1") -> AccountListing:
    return AccountListing(accounts=accounts, unreadable_ids=unreadable, scope="workspace", workspace_id=workspace_id)


def listings(
    *answers: list[Account] | AccountListing,
    watched: Mapping[str, PostsAtRisk] = WATCHED_A,
    health: AccountHealth | None = None,
) -> list[HealthStep]:
    """Observe each listing in turn, a tick apart; every step."""
    steps = []
    state = health or AccountHealth()
    for index, listing in enumerate(answers):
        full = answer(*listing) if isinstance(listing, list) else listing
        step = observe(state, full, NOW + index * TICK, watched=watched)
        steps.append(step)
        state = step.state
    return steps


def kinds(step: HealthStep) -> list[tuple[str, str | None, str | None]]:
    return [(notice.event_type, notice.status, notice.previous_status) for notice in step.notices]


# ---------------------------------------------------------------- what is a change


def test_the_first_listing_is_the_baseline_and_announces_the_watched_accounts_not_active() -> None:
    (first,) = listings(
        [listed(), listed(ACCOUNT_B, "revoked"), listed(ACCOUNT_C, "paused")],
        watched={ACCOUNT_A: ONE_AT_RISK, ACCOUNT_B: ONE_AT_RISK},
    )
    assert kinds(first) == [("account.disconnected", "revoked", None)]  # C: no watched post targets it
    assert first.notices[0].account_id == ACCOUNT_B
    assert first.state.accounts[ACCOUNT_C].status == "paused"


def test_an_account_not_active_is_announced_once_when_a_watched_post_first_targets_it() -> None:
    _, unwatched = listings([listed()], [listed(status="revoked")], watched={})
    targeted, again = listings([listed(status="revoked")], [listed(status="revoked")], health=unwatched.state)

    assert unwatched.notices == ()
    assert kinds(targeted) == [("account.disconnected", "revoked", "revoked")]  # its last listed status
    assert again.notices == ()


def test_an_account_never_listed_is_unknown_not_disconnected() -> None:
    (first,) = listings([listed(ACCOUNT_B)], watched={ACCOUNT_A: ONE_AT_RISK})
    assert first.notices == ()
    assert ACCOUNT_A not in first.state.accounts


def test_an_account_listed_with_another_status_is_disconnected_at_once() -> None:
    _, second = listings([listed()], [listed(status="revoked")])

    assert kinds(second) == [("account.disconnected", "revoked", "active")]
    (notice,) = second.notices
    assert notice.account.username == "cafe"
    assert notice.posts_at_risk == ONE_AT_RISK
    assert notice.detected_at == "2025-02-01T15:01:00.000Z"


def test_an_account_missing_from_one_listing_asks_for_a_confirming_one_and_is_no_change_if_back() -> None:
    _, missed, back = listings([listed(), listed(ACCOUNT_B)], [listed(ACCOUNT_B)], [listed(), listed(ACCOUNT_B)])

    assert missed.notices == ()
    assert missed.state.confirm
    assert missed.state.accounts[ACCOUNT_A].status == "active"
    assert back.notices == ()
    assert not back.state.confirm
    assert back.state.accounts[ACCOUNT_A].missed == 0


def test_an_account_missing_from_two_listings_in_a_row_has_vanished() -> None:
    _, _, gone = listings([listed(), listed(ACCOUNT_B)], [listed(ACCOUNT_B)], [listed(ACCOUNT_B)])

    assert kinds(gone) == [("account.disconnected", None, "active")]
    assert gone.notices[0].account.username == "cafe"  # named as it was last listed
    assert not gone.state.confirm


def test_a_disconnect_is_announced_once_and_its_reconnection_once() -> None:
    b = listed(ACCOUNT_B)
    steps = listings(
        [listed(), b],
        [listed(status="paused"), b],
        [listed(status="revoked"), b],
        [b],
        [b],
        [listed(), b],
        [listed(), b],
    )

    assert [kinds(step) for step in steps] == [
        [],
        [("account.disconnected", "paused", "active")],
        [],  # paused, then revoked: still disconnected
        [],
        [],  # then gone: still disconnected
        [("account.reconnected", "active", None)],
        [],
    ]


def test_an_account_no_watched_post_targets_changes_silently() -> None:
    steps = listings([listed()], [listed(status="revoked")], [listed()], watched={})

    assert [step.notices for step in steps] == [(), (), ()]
    assert steps[1].state.accounts[ACCOUNT_A].status == "revoked"


def test_a_reconnection_is_announced_even_when_no_watched_post_targets_the_account_any_more() -> None:
    _, down = listings([listed()], [listed(status="revoked")])
    (back,) = listings([listed()], watched={}, health=down.state)

    assert kinds(back) == [("account.reconnected", "active", "revoked")]
    assert back.notices[0].posts_at_risk == PostsAtRisk(count=0, post_ids=())


def test_a_listing_without_status_means_active_as_genviral_documents() -> None:
    _, second = listings([listed(status=None)], [listed(status=None)])
    assert second.notices == ()
    assert second.state.accounts[ACCOUNT_A].status == "active"


def test_a_vanished_account_never_announced_is_forgotten() -> None:
    *_, gone = listings([listed(), listed(ACCOUNT_B)], [listed(ACCOUNT_B)], [listed(ACCOUNT_B)], watched={})
    assert set(gone.state.accounts) == {ACCOUNT_B}


def test_changed_accounts_are_those_a_listing_may_announce() -> None:
    health = listings([listed(), listed(ACCOUNT_B)])[0].state
    assert changed_accounts(health, answer(listed(), listed(ACCOUNT_B, "paused")), NOW) == {ACCOUNT_B}
    assert changed_accounts(health, answer(listed()), NOW) == frozenset()  # B missed once: nothing to announce yet


# ---------------------------------------------------------------- ids


def test_ids_come_from_the_account_and_its_change_number() -> None:
    steps = listings([listed()], [listed(status="revoked")], [listed()], [listed(status="revoked")])
    ids = [notice.event_id for step in steps for notice in step.notices]

    assert ids == [account_event_id(ACCOUNT_A, number) for number in (1, 2, 3)]
    assert len(set(ids)) == 3
    assert account_event_id(ACCOUNT_B, 1) != ids[0]


def test_observing_the_same_listing_on_the_same_record_again_gives_the_same_ids() -> None:
    (first,) = listings([listed()])
    again = [observe(first.state, answer(listed(status="revoked")), NOW, watched=WATCHED_A) for _ in range(2)]
    assert again[0] == again[1]


def test_the_announced_disconnect_is_remembered_under_its_id() -> None:
    _, down = listings([listed()], [listed(status="revoked")])
    assert down.state.accounts[ACCOUNT_A].announced == down.notices[0].event_id


# ---------------------------------------------------------------- posts at risk


def watched(post_id: str, scheduled_at: str | None, **states: str) -> WatchRecord:
    return WatchRecord(
        post_id=post_id,
        version=1,
        registered_at=NOW,
        scheduled_at=scheduled_at,
        accounts={account_id: AccountSnapshot(status=status) for account_id, status in states.items()},
    )


def test_posts_at_risk_are_the_watched_posts_not_final_for_the_account_soonest_first() -> None:
    watches = [
        watched("p-unscheduled", None, a="pending"),
        watched("p-later", "2025-02-03T10:00:00Z", a="scheduled"),
        watched("p-soon", "2025-02-02T10:00:00+00:00", a="pending", b="pending"),
        watched("p-posted", "2025-02-01T10:00:00Z", a="posted"),
        watched("p-other", "2025-02-01T10:00:00Z", b="pending"),
        watched("p-ended", "2025-02-01T10:00:00Z", a="pending").model_copy(update={"watching": False}),
    ]

    risks = posts_at_risk(watches, ["a", "c"])

    assert risks == {"a": PostsAtRisk(count=3, post_ids=("p-soon", "p-later", "p-unscheduled"))}


def test_an_account_targeted_only_by_final_states_is_watched_with_nothing_at_risk() -> None:
    assert posts_at_risk([watched("p", None, a="failed")], ["a"]) == {"a": PostsAtRisk(count=0, post_ids=())}


def test_at_most_a_hundred_posts_at_risk_are_named_and_all_are_counted() -> None:
    watches = [watched(f"p{index:03}", f"2025-02-0{1 + index % 5}T10:00:00Z", a="pending") for index in range(150)]
    (risk,) = posts_at_risk(watches, ["a"]).values()
    assert (risk.count, len(risk.post_ids)) == (150, POSTS_AT_RISK_LISTED)
    assert risk.post_ids[0] == "p000"
    assert "p004" not in risk.post_ids  # the latest are left out


# ---------------------------------------------------------------- when to list


def test_the_first_listing_is_due_at_once_then_every_interval() -> None:
    every = timedelta(minutes=15)
    assert next_listing_at(None, every) is None
    (step,) = listings([listed()])
    assert next_listing_at(step.state, every) == NOW + every


def test_a_listing_that_missed_a_known_account_is_confirmed_at_once() -> None:
    _, missed = listings([listed(), listed(ACCOUNT_B)], [listed(ACCOUNT_B)])
    assert next_listing_at(missed.state, timedelta(minutes=15)) is None


# ---------------------------------------------------------------- many changes at once


def many(count: int, status: str = "active") -> list[Account]:
    return [listed(f"00000000-0000-4000-8000-{index:012}", status) for index in range(count)]


def test_a_mass_revocation_is_announced_over_a_few_listings_each_change_once() -> None:
    watched = {account.id: ONE_AT_RISK for account in many(100)}
    steps = listings(many(100), *[many(100, "revoked")] * 4, watched=watched)

    counts = [len(step.notices) for step in steps]
    assert counts == [0, MAX_NOTICES_PER_COMMIT, MAX_NOTICES_PER_COMMIT, 20, 0]
    assert all(len(step.notices) <= MAX_NOTICES_PER_COMMIT for step in steps)
    assert [step.state.confirm for step in steps] == [False, True, True, False, False]  # the rest at the next tick
    announced = [notice.account_id for step in steps for notice in step.notices]
    assert sorted(announced) == sorted(watched)  # every change once
    assert {notice.event_id for step in steps for notice in step.notices} == {
        account_event_id(account_id, 1) for account_id in watched
    }
    assert next_listing_at(steps[1].state, timedelta(minutes=15)) is None


# ---------------------------------------------------------------- one id per change


def test_an_id_is_never_reused_after_the_account_left_the_record() -> None:
    """The reviewer's scenario: A vanishes while no watched post targets it, comes back, and is revoked again."""
    b = listed(ACCOUNT_B)
    down = listings([listed(), b], [listed(status="revoked"), b], [listed(), b])
    forgotten = listings([b], [b], watched={}, health=down[-1].state)
    assert ACCOUNT_A not in forgotten[-1].state.accounts
    again = listings([listed(), b], [listed(status="revoked"), b], health=forgotten[-1].state)

    ids = [notice.event_id for step in down + forgotten + again for notice in step.notices]
    assert len(ids) == 3
    assert ids == [account_event_id(ACCOUNT_A, number) for number in (1, 2, 3)]


# ---------------------------------------------------------------- no false disconnect


def test_an_item_listed_but_unreadable_counts_as_listed_with_its_status_unknown() -> None:
    b = listed(ACCOUNT_B)
    steps = listings([listed(), b], answer(b, unreadable=(ACCOUNT_A,)), answer(b, unreadable=(ACCOUNT_A,)))

    assert [step.notices for step in steps] == [(), (), ()]
    assert [step.state.confirm for step in steps] == [False, False, False]
    assert steps[-1].state.accounts[ACCOUNT_A].status == "active"


def test_an_item_without_a_readable_id_leaves_every_missing_account_as_it_was() -> None:
    b = listed(ACCOUNT_B)
    first, *_rest = listings([listed(), b])
    unidentified = AccountListing(accounts=(b,), unidentified=1, scope="workspace", workspace_id="ws-1")
    steps = listings(unidentified, unidentified, health=first.state)

    assert [step.notices for step in steps] == [(), ()]
    assert steps[-1].state.accounts[ACCOUNT_A] == first.state.accounts[ACCOUNT_A]


def test_an_empty_listing_while_accounts_are_known_is_suspect_and_changes_nothing() -> None:
    first, empty, again = listings([listed(), listed(ACCOUNT_B)], [], [])  # a tick apart

    assert (empty.notices, again.notices) == ((), ())
    assert empty.suspect
    assert again.suspect
    assert again.state.accounts == first.state.accounts
    assert not empty.state.confirm  # not the one-tick confirmation: the next regular listing
    assert next_listing_at(empty.state, timedelta(minutes=15)) == empty.state.listed_at + timedelta(minutes=15)


def test_a_suspect_listing_is_confirmed_by_a_regular_listing_saying_the_same() -> None:
    _first, empty = listings([listed(), listed(ACCOUNT_B)], [])
    confirmed = observe(empty.state, answer(), NOW + timedelta(minutes=16), watched=WATCHED_A)

    assert not confirmed.suspect
    assert kinds(confirmed) == [("account.disconnected", None, "active")]  # B: no watched post targets it
    assert confirmed.state.suspect_since is None


def test_a_suspect_listing_followed_by_a_normal_one_is_no_change() -> None:
    _, _empty, back = listings([listed(), listed(ACCOUNT_B)], [], [listed(), listed(ACCOUNT_B)])
    assert back.notices == ()
    assert not back.suspect
    assert back.state.suspect_since is None
    assert back.state.accounts[ACCOUNT_A].missed == 0


def test_a_listing_missing_every_known_account_but_listing_others_is_suspect() -> None:
    _, moved = listings([listed(), listed(ACCOUNT_B)], [listed(ACCOUNT_C, "revoked")])
    assert moved.suspect
    assert moved.notices == ()


def test_another_workspace_or_scope_is_a_new_baseline() -> None:
    watched = {ACCOUNT_A: ONE_AT_RISK, ACCOUNT_C: ONE_AT_RISK}
    _, down = listings([listed()], [listed(status="revoked")], watched=watched)
    other = listings(answer(listed(ACCOUNT_C), workspace_id="ws-2"), watched=watched, health=down.state)[0]

    assert other.notices == ()
    assert not other.suspect
    assert set(other.state.accounts) == {ACCOUNT_A, ACCOUNT_C}  # A kept only for its awaited reconnection
    assert other.state.accounts[ACCOUNT_A].status is None
    assert other.state.workspace_id == "ws-2"
    personal = AccountListing(accounts=(listed(ACCOUNT_B),), scope="personal")
    assert not observe(other.state, personal, NOW, watched=watched).suspect


# ---------------------------------------------------------------- failed listings


def test_a_failed_listing_is_tried_at_the_next_tick_once_then_backs_off_to_the_interval() -> None:
    every = timedelta(minutes=15)
    (step,) = listings([listed()])
    health, waits = step.state, []
    for index in range(6):
        health = failed(health, NOW + index * TICK)
        due = next_listing_at(health, every)
        waits.append(None if due is None else due - health.failed_at)  # type: ignore[operator]
    minutes = [None if wait is None else wait / TICK for wait in waits]
    assert minutes == [None, 2, 4, 8, 15, 15]
    assert health.accounts == step.state.accounts
    assert health.listed_at == step.state.listed_at
    (after,) = listings([listed()], health=health)
    assert (after.state.failures, after.state.failed_at) == (0, None)


# ---------------------------------------------------------------- awaiting a reconnection


def test_an_announced_disconnect_awaits_its_reconnection() -> None:
    _, down, back = listings([listed()], [listed(status="revoked")], [listed()])
    assert down.state.awaiting_reconnect
    assert not back.state.awaiting_reconnect
