"""Account health, the pure rule (`rules/account_health.py`): what a listing of `GET /accounts` says changed, which
changes are announced and under which id, what is at risk, and when the next listing is due."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from genviral_relay.models.account_health import AccountHealth
from genviral_relay.models.domain import AccountSnapshot, WatchRecord
from genviral_relay.models.relay_notices import POSTS_AT_RISK_LISTED, PostsAtRisk
from genviral_relay.models.upstream import Account
from genviral_relay.rules.account_health import (
    HealthStep,
    account_event_id,
    changed_accounts,
    next_listing_at,
    observe,
    posts_at_risk,
)
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW

TICK = timedelta(minutes=1)
ONE_AT_RISK = PostsAtRisk(count=1, post_ids=("11111111-1111-1111-1111-111111111111",))
WATCHED_A = {ACCOUNT_A: ONE_AT_RISK}


def listed(account_id: str = ACCOUNT_A, status: str | None = "active") -> Account:
    return Account(id=account_id, platform="tiktok", username="cafe", display_name="Cafe", type="byo", status=status)


def listings(
    *answers: list[Account], watched: Mapping[str, PostsAtRisk] = WATCHED_A, health: AccountHealth | None = None
) -> list[HealthStep]:
    """Observe each listing in turn, a tick apart; every step."""
    steps = []
    state = health or AccountHealth()
    for index, answer in enumerate(answers):
        step = observe(state, answer, NOW + index * TICK, watched=watched)
        steps.append(step)
        state = step.state
    return steps


def kinds(step: HealthStep) -> list[tuple[str, str | None, str | None]]:
    return [(notice.event_type, notice.status, notice.previous_status) for notice in step.notices]


# ---------------------------------------------------------------- what is a change


def test_the_first_listing_is_the_baseline_whatever_it_says() -> None:
    (first,) = listings(
        [listed(), listed(ACCOUNT_B, "revoked")], watched={ACCOUNT_A: ONE_AT_RISK, ACCOUNT_B: ONE_AT_RISK}
    )
    assert first.notices == ()
    assert first.state.accounts[ACCOUNT_B].status == "revoked"


def test_an_account_listed_with_another_status_is_disconnected_at_once() -> None:
    _, second = listings([listed()], [listed(status="revoked")])

    assert kinds(second) == [("account.disconnected", "revoked", "active")]
    (notice,) = second.notices
    assert notice.account.username == "cafe"
    assert notice.posts_at_risk == ONE_AT_RISK
    assert notice.detected_at == "2025-02-01T15:01:00.000Z"


def test_an_account_missing_from_one_listing_asks_for_a_confirming_one_and_is_no_change_if_back() -> None:
    _, missed, back = listings([listed()], [], [listed()])

    assert missed.notices == ()
    assert missed.state.confirm
    assert missed.state.accounts[ACCOUNT_A].status == "active"
    assert back.notices == ()
    assert not back.state.confirm
    assert back.state.accounts[ACCOUNT_A].missed == 0


def test_an_account_missing_from_two_listings_in_a_row_has_vanished() -> None:
    _, _, gone = listings([listed()], [], [])

    assert kinds(gone) == [("account.disconnected", None, "active")]
    assert gone.notices[0].account.username == "cafe"  # named as it was last listed
    assert not gone.state.confirm


def test_a_disconnect_is_announced_once_and_its_reconnection_once() -> None:
    steps = listings([listed()], [listed(status="paused")], [listed(status="revoked")], [], [], [listed()], [listed()])

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
    *_, gone = listings([listed()], [], [], watched={})
    assert gone.state.accounts == {}


def test_changed_accounts_are_those_a_listing_may_announce() -> None:
    health = listings([listed(), listed(ACCOUNT_B)])[0].state
    assert changed_accounts(health, [listed(), listed(ACCOUNT_B, "paused")]) == {ACCOUNT_B}
    assert changed_accounts(health, [listed()]) == frozenset()  # B missed once: nothing to announce yet


# ---------------------------------------------------------------- ids


def test_ids_come_from_the_account_and_its_change_number() -> None:
    steps = listings([listed()], [listed(status="revoked")], [listed()], [listed(status="revoked")])
    ids = [notice.event_id for step in steps for notice in step.notices]

    assert ids == [account_event_id(ACCOUNT_A, number) for number in (1, 2, 3)]
    assert len(set(ids)) == 3
    assert account_event_id(ACCOUNT_B, 1) != ids[0]


def test_observing_the_same_listing_on_the_same_record_again_gives_the_same_ids() -> None:
    (first,) = listings([listed()])
    again = [observe(first.state, [listed(status="revoked")], NOW, watched=WATCHED_A) for _ in range(2)]
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
    _, missed = listings([listed()], [])
    assert next_listing_at(missed.state, timedelta(minutes=15)) is None
