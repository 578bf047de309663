"""UTC time: one format for everything the relay writes, a tolerant parser for what it reads."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
TimeLeft = Callable[[], timedelta]
"""What remains of the invocation (Lambda's `get_remaining_time_in_millis`): work that cannot finish in it waits."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC with milliseconds, so string order is time order (the due index relies on it)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_ts_or_none(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment is not None else None


def to_milliseconds(moment: datetime) -> datetime:
    """The precision the relay stores (and Genviral's timestamps carry)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_ts(value: str | None) -> datetime | None:
    """Parse an ISO-8601 timestamp as Genviral writes it; None for null or anything unparseable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_DURATION_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def moment_from(spec: str, now: datetime) -> datetime:
    """`now`, a duration back from now (`90m`, `12h`, `7d`, `2w`) or an ISO-8601 time; ValueError otherwise."""
    text = spec.strip()
    if text.lower() == "now":
        return now
    duration = _DURATION.match(text.lower())
    if duration:
        return now - int(duration.group(1)) * _DURATION_UNIT[duration.group(2)]
    if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"{spec!r} is not 'now', a duration like 7d, or an ISO-8601 time")
    moment = parse_ts(text)
    if moment is None:
        raise ValueError(f"{spec!r} is not a valid ISO-8601 time")
    return moment
