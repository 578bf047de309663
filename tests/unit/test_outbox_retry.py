"""The outbox back-off (`PollingPolicy.outbox_retry_at`): when a watch whose target keeps failing is
tried again, from the wait of its oldest event alone."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from genviral_relay.rules.schedule import PollingPolicy, with_outbox_retry
from tests.builders import NOW

MINUTE = timedelta(minutes=1)
long_cap = PollingPolicy(outbox_retry_delay_max=timedelta(minutes=30))


def attempts(policy: PollingPolicy, count: int) -> list[timedelta]:
    """The delays between attempts when each retry runs on time, the first right at detection."""
    detected, now, delays = NOW, NOW, []
    for _ in range(count):
        retry_at = policy.outbox_retry_at(now, detected)
        delays.append(retry_at - now)
        now = retry_at
    return delays


def test_each_retry_waits_twice_as_long_as_the_one_before_up_to_the_cap() -> None:
    assert attempts(long_cap, 7) == [m * MINUTE for m in (2, 4, 8, 16, 30, 30, 30)]


def test_the_default_cap_keeps_a_retry_in_every_five_minute_period_of_the_alarms() -> None:
    policy = PollingPolicy()
    assert attempts(policy, 4) == [m * MINUTE for m in (2, 3, 3, 3)]
    # a retry is queued by the first tick at or after its time: at most a tick late
    assert policy.outbox_retry_delay_max + policy.tick < 5 * MINUTE


def test_an_event_just_detected_or_dated_later_waits_the_first_delay() -> None:
    assert long_cap.outbox_retry_at(NOW, None) == NOW + 2 * MINUTE
    assert long_cap.outbox_retry_at(NOW, NOW) == NOW + 2 * MINUTE
    assert long_cap.outbox_retry_at(NOW, NOW + timedelta(hours=1)) == NOW + 2 * MINUTE  # clock skew


def test_a_late_retry_still_backs_off_from_the_wait_so_far() -> None:
    # the poller ran the retry due at 6 minutes at 7: the next waits the 7 minutes so far plus 2
    assert long_cap.outbox_retry_at(NOW + 7 * MINUTE, NOW) == NOW + 16 * MINUTE


@given(waited=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
def test_the_delay_is_always_between_the_first_delay_and_the_cap(waited: timedelta) -> None:
    for policy in (PollingPolicy(), long_cap):
        delay = policy.outbox_retry_at(NOW + waited, NOW) - (NOW + waited)
        assert policy.outbox_retry_delay <= delay <= policy.outbox_retry_delay_max


def test_a_watch_that_owes_events_is_due_at_its_own_check_or_the_retry_whichever_is_first() -> None:
    retry_at = NOW + 3 * MINUTE
    assert with_outbox_retry(None, retry_at) == retry_at
    assert with_outbox_retry(NOW + timedelta(hours=6), retry_at) == retry_at
    assert with_outbox_retry(NOW - MINUTE, retry_at) == NOW - MINUTE
