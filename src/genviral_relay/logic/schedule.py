"""When to check a watched post next. Pure: the caller passes the clock reading.

`next_check` answers a moment (at or before `now` means "every tick"), or None when the post needs
no more checks. The scheduler treats every past moment alike, so a post that is due every tick
keeps its stored `next_check_at` and an unchanged check writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from genviral_relay.clock import parse_ts
from genviral_relay.models.upstream import FAILED, FINAL_STATUSES, Post


@dataclass(frozen=True)
class PollingPolicy:
    lead_time: timedelta = timedelta(minutes=10)
    """Start checking every tick this long before `scheduled_at`."""
    overdue_after: timedelta = timedelta(hours=1)
    """A post still unfinished this long after `scheduled_at` is checked less often..."""
    overdue_interval: timedelta = timedelta(minutes=10)
    """...at this interval."""
    failed_recheck_interval: timedelta = timedelta(minutes=15)
    """A finished post with a failed account is re-checked at this interval (Genviral retries can post it)..."""
    failed_retry_window: timedelta = timedelta(hours=24)
    """...for this long after the last failed attempt."""
    outbox_retry_delay: timedelta = timedelta(minutes=2)
    """A post with unpublished events is due again after this delay, in case the publisher crashed."""

    def next_check(self, post: Post, now: datetime) -> datetime | None:
        states = post.accounts.states
        if not states or any(state.status not in FINAL_STATUSES for state in states):
            return self._while_unfinished(post, now)
        failures = [state for state in states if state.status == FAILED]
        if not failures:
            return None
        last_attempt = max((parse_ts(state.last_attempted_at) or now for state in failures), default=now)
        if now - last_attempt >= self.failed_retry_window:
            return None
        return now + self.failed_recheck_interval

    def _while_unfinished(self, post: Post, now: datetime) -> datetime:
        scheduled_at = parse_ts(post.scheduled_at)
        if scheduled_at is None:
            return now
        if scheduled_at - self.lead_time > now:
            return scheduled_at - self.lead_time
        if now - scheduled_at > self.overdue_after:
            return now + self.overdue_interval
        return now


def same_schedule(stored: datetime | None, wanted: datetime | None, now: datetime) -> bool:
    """Whether the stored next check already gives what the policy wants (any past moment means "now")."""
    if stored is None or wanted is None:
        return stored is wanted
    if wanted <= now:
        return stored <= now
    return stored == wanted
