"""The simple polling policy: when a watch is checked next."""

from __future__ import annotations

from datetime import timedelta

from genviral_relay.clock import format_ts
from genviral_relay.logic.schedule import PollingPolicy, same_schedule
from tests.builders import ACCOUNT_B, NOW, account, post

policy = PollingPolicy()


def test_far_future_post_is_checked_once_shortly_before_it_is_scheduled() -> None:
    scheduled = NOW + timedelta(days=2)
    wanted = policy.next_check(post(account(), scheduled_at=format_ts(scheduled)), NOW)
    assert wanted == scheduled - policy.lead_time


def test_post_in_its_publishing_window_is_due_every_tick() -> None:
    wanted = policy.next_check(post(account(), scheduled_at=format_ts(NOW + timedelta(minutes=5))), NOW)
    assert wanted is not None
    assert wanted <= NOW


def test_post_queued_for_immediate_publishing_is_due_every_tick() -> None:
    wanted = policy.next_check(post(account(status="pending"), scheduled_at=None), NOW)
    assert wanted is not None
    assert wanted <= NOW


def test_long_overdue_post_is_checked_less_often() -> None:
    scheduled = NOW - policy.overdue_after - timedelta(minutes=1)
    wanted = policy.next_check(post(account(status="pending"), scheduled_at=format_ts(scheduled)), NOW)
    assert wanted == NOW + policy.overdue_interval


def test_fully_posted_post_needs_no_more_checks() -> None:
    finished = post(account(status="posted"), account(ACCOUNT_B, status="posted"))
    assert policy.next_check(finished, NOW) is None


def test_failed_account_is_rechecked_within_the_retry_window_then_dropped() -> None:
    recent = post(account(status="failed", last_attempted_at=format_ts(NOW - timedelta(hours=1))))
    stale = post(account(status="failed", last_attempted_at=format_ts(NOW - policy.failed_retry_window)))

    assert policy.next_check(recent, NOW) == NOW + policy.failed_recheck_interval
    assert policy.next_check(stale, NOW) is None


def test_any_past_moment_is_the_same_every_tick_schedule() -> None:
    assert same_schedule(NOW - timedelta(hours=3), NOW - timedelta(seconds=1), NOW)
    assert same_schedule(None, None, NOW)
    assert not same_schedule(None, NOW, NOW)
    assert not same_schedule(NOW + timedelta(minutes=1), NOW, NOW)
    assert not same_schedule(NOW + timedelta(minutes=1), NOW + timedelta(minutes=2), NOW)
    assert same_schedule(NOW + timedelta(minutes=2), NOW + timedelta(minutes=2), NOW)
