"""`Retry-After` (RFC 9110 §10.2.3): how long a server asks to be left alone, as delay-seconds or an HTTP date.

One reading for the Genviral client (how long to sleep before calling again) and the webhook attempts (when an
endpoint's next attempt is due). The header is read once, into seconds or a moment; a moment becomes a wait only
against the reader's own clock (the webhook sender has none: its deadline is monotonic).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RetryAfter = float | datetime
"""Seconds to wait (never negative), or the moment to wait until (timezone-aware: an HTTP date)."""

_DELAY_SECONDS = re.compile(r"^-?\d+(\.\d+)?$")
"""Digits, as RFC 9110 has them (a fraction and a "-" tolerated): no exponent, "nan" or "inf" passes as a delay."""


def read_retry_after(value: str | None) -> RetryAfter | None:
    """A `Retry-After` header's value as seconds (a negative delay is none: 0) or a moment; None when unusable."""
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.match(text):
        return max(0.0, float(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # "-0000" parses as naive: UTC


def seconds_until(retry_after: RetryAfter, now: datetime) -> float:
    """The wait asked for, from `now`: 0 for a moment already past."""
    if isinstance(retry_after, datetime):
        return max(0.0, (retry_after - now).total_seconds())
    return retry_after


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None when unusable."""
    retry_after = read_retry_after(value)
    return None if retry_after is None else seconds_until(retry_after, now)
