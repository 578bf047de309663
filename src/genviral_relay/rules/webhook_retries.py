"""The retry rule of a webhook delivery: Standard Webhooks' schedule of attempts."""

from __future__ import annotations

from datetime import timedelta

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
DUE_TOLERANCE = timedelta(milliseconds=500)
"""A delivery due this little later is attempted now: the dispatcher's and the delivery function's clocks differ
by a few milliseconds, not worth a hop of a second."""
EVENTS_KEPT_AT_LEAST = timedelta(days=2)
"""However short `EventRetentionDays`, an event stays stored this long: a webhook delivery's last retry, about
28 hours after its first attempt (and its waits' hops), still finds the document it signs."""


def events_kept_for(retention_days: int) -> timedelta:
    """How long stored events are kept (their TTL) for the deployment's `EventRetentionDays`."""
    return max(timedelta(days=retention_days), EVENTS_KEPT_AT_LEAST)
