"""The adaptive polling policy: when a watch is checked next."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genviral_relay.clock import format_ts
from genviral_relay.models.upstream import Post
from genviral_relay.rules.schedule import PollingPolicy, same_schedule, tick_of
from tests.builders import ACCOUNT_B, NOW, account, post

policy = PollingPolicy()


def scheduled_in(delta: timedelta, *states: dict[str, object]) -> Post:
    return post(*(states or (account(),)), scheduled_at=format_ts(NOW + delta))


def test_far_future_post_is_checked_at_shrinking_intervals_capped_to_catch_reschedules() -> None:
    far = policy.next_check(scheduled_in(timedelta(days=2)), NOW)
    nearer = policy.next_check(scheduled_in(timedelta(hours=2)), NOW)

    assert far == NOW + policy.far_interval_max
    window_opens = timedelta(hours=2) - policy.lead_time
    assert nearer == NOW + window_opens * 3 / 4


def test_far_future_checks_land_on_the_window_opening_and_stay_few() -> None:
    # Walk a post scheduled two days ahead from now to its publishing window.
    scheduled = NOW + timedelta(days=2)
    moment, checks = NOW, 0
    while True:
        wanted = policy.next_check(post(account(), scheduled_at=format_ts(scheduled)), moment)
        assert wanted is not None
        if wanted <= moment:
            break
        moment, checks = wanted, checks + 1
    assert moment == scheduled - policy.lead_time
    assert checks <= 20  # against 2,870 ticks for a fixed-rate poller


def test_post_in_its_publishing_window_is_due_every_tick() -> None:
    wanted = policy.next_check(scheduled_in(timedelta(minutes=2)), NOW)
    assert wanted is not None
    assert wanted <= NOW


def test_post_with_no_time_is_in_its_window_from_its_creation() -> None:
    def created(ago: timedelta, status: str = "pending") -> Post:
        return post(account(status="pending"), status=status, scheduled_at=None, created_at=format_ts(NOW - ago))

    just_queued = policy.next_check(created(timedelta(minutes=5)), NOW)
    stuck = policy.next_check(created(timedelta(hours=1, minutes=30)), NOW)
    old_draft = policy.next_check(created(timedelta(days=3), status="draft"), NOW)
    unknown_age = policy.next_check(post(account(status="pending"), scheduled_at=None, created_at=None), NOW)

    assert just_queued is not None
    assert just_queued <= NOW
    assert stuck == NOW + timedelta(minutes=15)
    assert old_draft == NOW + policy.overdue_interval_max
    assert unknown_age is not None
    assert unknown_age <= NOW


def test_late_post_is_checked_every_tick_for_a_while_then_backs_off() -> None:
    late = policy.next_check(scheduled_in(-timedelta(minutes=30), account(status="pending")), NOW)
    very_late = policy.next_check(scheduled_in(-timedelta(minutes=90), account(status="pending")), NOW)
    forgotten = policy.next_check(scheduled_in(-timedelta(days=3), account(status="pending")), NOW)

    assert late is not None
    assert late <= NOW
    assert very_late == NOW + timedelta(minutes=15)  # half of the half hour past the grace period
    assert forgotten == NOW + policy.overdue_interval_max


def test_fully_posted_post_needs_no_more_checks() -> None:
    finished = post(account(status="posted"), account(ACCOUNT_B, status="posted"))
    assert policy.next_check(finished, NOW) is None


def test_failed_account_is_left_to_the_retry_sweep_until_its_window_ends() -> None:
    def failed_ago(age: timedelta) -> Post:
        return post(
            account(status="failed", last_attempted_at=format_ts(NOW - age)), account(ACCOUNT_B, status="posted")
        )

    fresh = failed_ago(timedelta(seconds=30))
    stale = failed_ago(policy.failed_retry_window)

    assert policy.awaits_retry(fresh, NOW)
    assert policy.next_check(fresh, NOW) == NOW - timedelta(seconds=30) + timedelta(hours=1)
    assert not policy.awaits_retry(stale, NOW)
    assert policy.next_check(stale, NOW) is None
    assert policy.awaits_retry(post(account(status="failed"), account(ACCOUNT_B, status="retry")), NOW)
    assert not policy.awaits_retry(post(account(status="posted")), NOW)


def test_a_finished_post_with_a_failure_has_a_few_own_checks_in_its_retry_window() -> None:
    failed_at = NOW - timedelta(minutes=5)
    failed = post(account(status="failed", last_attempted_at=format_ts(failed_at)))

    moments, moment = [], NOW
    while (wanted := policy.next_check(failed, moment)) is not None:
        moments.append(wanted)
        moment = wanted

    assert moments == [failed_at + timedelta(hours=1), failed_at + timedelta(hours=6), failed_at + timedelta(hours=24)]
    short = PollingPolicy(failed_retry_window=timedelta(hours=2))
    assert short.next_check(failed, failed_at + timedelta(hours=1)) == failed_at + timedelta(hours=2)


def test_a_failure_without_an_attempt_time_is_dated_by_what_the_relay_saw() -> None:
    undated = post(account(status="failed", last_attempted_at=None))

    seen_failing = policy.next_check(undated, NOW, last_change=NOW - timedelta(hours=2))
    long_watched = policy.next_check(undated, NOW, first_seen=NOW - policy.failed_retry_window)

    assert seen_failing == NOW - timedelta(hours=2) + timedelta(hours=6)
    assert long_watched is None  # the window closes instead of sliding along with every check
    assert not policy.awaits_retry(undated, NOW, first_seen=NOW - policy.failed_retry_window)
    assert policy.awaits_retry(undated, NOW)


def test_retry_window_is_configurable() -> None:
    no_retries = PollingPolicy(failed_retry_window=timedelta(0))
    assert no_retries.next_check(post(account(status="failed")), NOW) is None


@pytest.mark.parametrize(
    ("expression", "tick"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("rate(1 day)", timedelta(days=1)),
        ("cron(0/5 * * * ? *)", timedelta(minutes=1)),
    ],
)
def test_tick_comes_from_the_poll_schedule(expression: str, tick: timedelta) -> None:
    assert tick_of(expression) == tick


def test_any_past_moment_is_the_same_every_tick_schedule() -> None:
    assert same_schedule(NOW - timedelta(hours=3), NOW - timedelta(seconds=1), NOW)
    assert same_schedule(None, None, NOW)
    assert not same_schedule(None, NOW, NOW)
    assert not same_schedule(NOW + timedelta(minutes=1), NOW, NOW)
    assert not same_schedule(NOW + timedelta(minutes=1), NOW + timedelta(minutes=2), NOW)
    assert same_schedule(NOW + timedelta(minutes=2), NOW + timedelta(minutes=2), NOW)


def test_a_recent_change_restarts_the_every_tick_window_of_a_late_post() -> None:
    retried = scheduled_in(-timedelta(hours=5), account(status="retry"))

    assert policy.next_check(retried, NOW) == NOW + policy.overdue_interval_max
    wanted = policy.next_check(retried, NOW, last_change=NOW - timedelta(minutes=2))
    assert wanted is not None
    assert wanted <= NOW
