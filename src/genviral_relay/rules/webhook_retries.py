"""The retry rule of a webhook delivery: Standard Webhooks' schedule of attempts, later when the endpoint asks."""

from __future__ import annotations

from datetime import datetime, timedelta

from genviral_relay.rules.retry_after import RetryAfter, seconds_until

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""Standard Webhooks' schedule: the wait before each retry, counted from the previous attempt (8 attempts)."""
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
RETRY_AFTER_CAP = timedelta(hours=1)
"""The longest wait an endpoint's `Retry-After` adds: a wrong header must not put its deliveries off for days."""
BACK_PRESSURE_STATUSES = frozenset({429, 503})
"""The answers whose `Retry-After` is honoured (too many requests, unavailable for now); on others it means nothing."""
DUE_TOLERANCE = timedelta(milliseconds=500)
"""A delivery due this little later is attempted now: the dispatcher's and the delivery function's clocks differ
by a few milliseconds, not worth a hop of a second."""
EVENTS_KEPT_AT_LEAST = timedelta(days=2)
"""However short `EventRetentionDays`, an event stays stored this long: a webhook delivery's last retry, about
28 hours after its first attempt (and its waits' hops), still finds the document it signs."""


def events_kept_for(retention_days: int) -> timedelta:
    """How long stored events are kept (their TTL) for the deployment's `EventRetentionDays`."""
    return max(timedelta(days=retention_days), EVENTS_KEPT_AT_LEAST)


def next_attempt_due(attempt: int, now: datetime, status: int | None, retry_after: RetryAfter | None) -> datetime:
    """When the attempt after failed attempt number `attempt` (not the last) is due: the schedule's delay after
    `now`, or, after a 429 or 503 with `Retry-After`, no earlier than the endpoint asked (at most RETRY_AFTER_CAP)."""
    due = now + RETRY_DELAYS[attempt - 1]
    if status in BACK_PRESSURE_STATUSES and retry_after is not None:
        asked = min(seconds_until(retry_after, now), RETRY_AFTER_CAP.total_seconds())
        due = max(due, now + timedelta(seconds=asked))
    return due
