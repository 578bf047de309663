"""When to check a watched post next: adaptive, so the relay calls Genviral as little as it can
while still seeing a change within one tick when one is likely. Pure: the caller passes the time.

`next_check` answers a moment (at or before `now` means "every tick"), or None when the post needs
no more checks. The poller treats every past moment alike, so a post that is due every tick keeps
its stored `next_check_at` and a check that changes nothing writes nothing.

- A post scheduled far ahead is checked at shrinking intervals (each three quarters of the time left,
  at most `far_interval_max` apart, so a reschedule is noticed) until `lead_time` before
  `scheduled_at`, then every tick.
- A post in its publishing window is checked every tick; a post with no `scheduled_at` (queued for
  immediate publishing, or a draft) is in its window from `created_at`.
- A post still unfinished long after its time (or its last change, such as a retry) backs off, up
  to `overdue_interval_max`; the first sighting of a post registered late is not a change.
- A finished post is not checked any more, except that a failed account keeps it watched for
  `failed_retry_window` (Genviral's retry can still post it): the retry sweep (one list call per
  tick for all such posts) notices a retry; the post's own checks at `retry_checkpoints` catch a
  retry the sweep could not see, and one at the end closes the window.
- A posting reported without its URL keeps the post watched, finished or not, and checked at
  `url_checks` after the relay saw it, for 24 h (`rules/late_urls.py`).
- A post that still owes a target events is due again soon whatever its own schedule: first after
  `outbox_retry_delay` (a publisher may have crashed), then, while the target keeps failing, after
  delays that double with the wait of its oldest event, up to `outbox_retry_delay_max`
  (`outbox_retry_at`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from genviral_relay.clock import parse_ts
from genviral_relay.models.domain import FAILED
from genviral_relay.models.upstream import Post
from genviral_relay.rules.completion import is_complete
from genviral_relay.rules.late_urls import URL_CHECKS, next_url_check


def due_moment(post: Post) -> datetime | None:
    """When the post is due: its `scheduled_at`; a post without a time is published (or, a draft, edited)
    soon after it is created."""
    return parse_ts(post.scheduled_at) or parse_ts(post.created_at)


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}


def tick_of(schedule_expression: str) -> timedelta:
    """The interval of a `rate(...)` expression; cron and at() expressions are taken as one minute."""
    match = _RATE.match(schedule_expression.strip())
    if not match:
        return timedelta(minutes=1)
    return timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2).rstrip("s")])


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(high, value))


@dataclass(frozen=True)
class PollingPolicy:
    tick: timedelta = timedelta(minutes=1)
    lead_time: timedelta = timedelta(minutes=3)
    far_interval_max: timedelta = timedelta(hours=6)
    overdue_after: timedelta = timedelta(hours=1)
    overdue_interval_max: timedelta = timedelta(minutes=30)
    failed_retry_window: timedelta = timedelta(hours=24)
    outbox_retry_delay: timedelta = timedelta(minutes=2)
    """A post with unpublished events is due again after this delay, in case the publisher crashed;
    the first delay of the back-off while a target keeps failing (`outbox_retry_at`)."""
    outbox_retry_delay_max: timedelta = timedelta(minutes=3)
    """The longest delay of that back-off. The alarms on publishing (`PendingOutboxAlarm`,
    `PublishFailuresAlarm`) look at 5-minute periods and read a period without data as fine: a
    retry at most this long after the last (plus up to a tick before the poller queues it) lands
    in every period, so they stay in alarm through an outage instead of flapping."""
    delayed_after: timedelta | None = timedelta(minutes=15)
    """How long an account may be awaited before it is reported delayed (`DelayedAfterMinutes`; None: never)."""
    retry_checkpoints: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=6))
    """Own checks of a finished post with a failure, this long after the attempt, besides the one at
    the window's end: a retry the sweep cannot see (an account sent back as `pending` rather than
    `retry`, or posted again within one tick) is still reported within hours."""
    url_checks: tuple[timedelta, ...] = URL_CHECKS
    """Checks of a posting reported without its URL, this long after the relay saw it; the last ends the wait."""

    def next_check(
        self,
        post: Post,
        now: datetime,
        *,
        last_change: datetime | None = None,
        first_seen: datetime | None = None,
        delay_reportable_at: datetime | None = None,
        urls_awaited: Sequence[datetime] = (),
    ) -> datetime | None:
        """`last_change`: when the relay last saw the post change (a retry restarts the every-tick window).
        `first_seen`: when the relay started watching it. Both date a failure Genviral gives no
        `last_attempted_at` for, so its retry window still ends. `delay_reportable_at`: when an
        account of the post becomes reportable as delayed (`rules/delays.py`): the post is checked
        then at the latest, whatever the overdue back-off says. `urls_awaited`: since when each posting
        reported without its URL has been awaited (`rules/late_urls.py`): its checks come on top."""
        url_check = next_url_check(urls_awaited, now, self.url_checks)
        if is_complete(post):
            own = self._after_finish(post, now, last_change, first_seen)
        else:
            own = self._while_unfinished(post, now, last_change)
            own = own if delay_reportable_at is None else min(own, delay_reportable_at)
        return min((moment for moment in (own, url_check) if moment is not None), default=None)

    def _after_finish(
        self, post: Post, now: datetime, last_change: datetime | None, first_seen: datetime | None
    ) -> datetime | None:
        window_ends = self._retry_window_end(post, now, last_change, first_seen)
        if window_ends is None or window_ends <= now:
            return None
        attempted = window_ends - self.failed_retry_window
        return min([window_ends, *(attempted + after for after in self.retry_checkpoints if attempted + after > now)])

    def outbox_retry_at(self, now: datetime, waiting_since: datetime | None) -> datetime:
        """When to try again a target that failed to take a watch's events (`waiting_since`: when
        the oldest of them was detected; None or later than `now`: just now).

        The delay is `outbox_retry_delay` plus the time already waited, at most
        `outbox_retry_delay_max`: each retry waits twice as long as the one before (2, 4, 8, 16
        minutes... with a longer cap), counted from state the watch already has, without counting
        attempts. Nothing is ever given up: a target that comes back gets the events at the next
        retry, under the same ids.
        """
        waited = max(timedelta(0), now - waiting_since) if waiting_since is not None else timedelta(0)
        return now + _clamp(self.outbox_retry_delay + waited, self.outbox_retry_delay, self.outbox_retry_delay_max)

    def awaits_retry(
        self, post: Post, now: datetime, *, last_change: datetime | None = None, first_seen: datetime | None = None
    ) -> bool:
        """A failed account still inside its retry window: the retry sweep watches the post.

        Genviral lists posts whose accounts were sent back to the scheduler (`GET /posts?status=retry`);
        one such call per tick finds every retried post, instead of a check per failed post. The
        post keeps its own schedule too (for a finished post, `retry_checkpoints` and the window's
        end), and the sweep sees a retry even while that schedule backs off. `last_change`,
        `first_seen`: as for `next_check`.
        """
        window_ends = self._retry_window_end(post, now, last_change, first_seen)
        return window_ends is not None and window_ends > now

    def _retry_window_end(
        self, post: Post, now: datetime, last_change: datetime | None, first_seen: datetime | None
    ) -> datetime | None:
        failures = [state for state in post.accounts.states if state.status == FAILED]
        if not failures:
            return None
        undated_failure_at = last_change or first_seen or now  # when the relay saw it, at the latest
        last_attempt = max(parse_ts(state.last_attempted_at) or undated_failure_at for state in failures)
        return last_attempt + self.failed_retry_window

    def _while_unfinished(self, post: Post, now: datetime, last_change: datetime | None) -> datetime:
        scheduled_at = due_moment(post)
        if scheduled_at is None:
            return now
        window_opens = scheduled_at - self.lead_time
        if now < window_opens:
            return min(window_opens, now + _clamp((window_opens - now) * 3 / 4, self.tick, self.far_interval_max))
        active_since = max(scheduled_at, last_change) if last_change is not None else scheduled_at
        overdue = now - active_since - self.overdue_after
        if overdue <= timedelta(0):
            return now
        return now + _clamp(overdue / 2, self.tick, self.overdue_interval_max)


def same_schedule(stored: datetime | None, wanted: datetime | None, now: datetime) -> bool:
    """Whether the stored next check already gives what the policy wants (any past moment means "now")."""
    if stored is None or wanted is None:
        return stored is wanted
    if wanted <= now:
        return stored <= now
    return stored == wanted


def with_outbox_retry(wanted: datetime | None, retry_at: datetime) -> datetime:
    """The next check of a watch that owes events: its own next check, or the outbox retry if sooner."""
    return retry_at if wanted is None else min(wanted, retry_at)
