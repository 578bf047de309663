"""Late URLs: an account `posted` before the platform gave its public URL (TikTok often takes minutes).

Pure. When the relay reports an account `posted` with `published_url` null, it marks the account's
snapshot with when it saw it (`AccountSnapshot.url_awaited_since`), and the post stays watched,
checked again at `PollingPolicy.url_checks` after that moment (backing off, the last at 24 h). When
a later answer shows a URL, the account still `posted` at the same attempt, one
`post.account.url_resolved` reports it, keyed on the posting's outcome event; a URL that appears
after the 24 h, while the post is checked anyway, is reported too. The account leaving `posted`
ends the wait (posting again is a new outcome, with a wait of its own).

A posting recorded silently (a discover baseline) or reported before 0.5 is not awaited: its URL,
when it appears, is recorded silently like any other detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from genviral_relay.clock import parse_ts
from genviral_relay.models.domain import POSTED, AccountSnapshot
from genviral_relay.models.upstream import AccountState

URL_CHECKS: tuple[timedelta, ...] = (
    timedelta(minutes=15),
    *(timedelta(hours=hours) for hours in (1, 2, 4, 8, 16, 24)),
)
"""When a posting without a URL is checked again, counted from when the relay saw it (seven checks at most; the
last ends the wait). Each is a Genviral call of its own once the post is otherwise finished, so they are few: a
URL that comes within minutes (TikTok's usual delay) costs one, one within the hour two; the calm-week benchmark
measures both the calls and the lag (checks at 10 and 30 minutes cost a quarter more calls there, for a median
lag about three minutes shorter)."""


def lacks_url(state: AccountState) -> bool:
    return state.status == POSTED and state.published_url is None


def url_awaited_since(before: AccountSnapshot | None, state: AccountState, *, reported_at: str | None) -> str | None:
    """The mark the account's snapshot keeps now. `reported_at`: the detection's time when it reports the
    account's posting (None: it does not, or silently)."""
    if not lacks_url(state):
        return None
    if reported_at is not None:
        return reported_at
    return before.url_awaited_since if before is not None and before.status == POSTED else None


def resolves_url(before: AccountSnapshot | None, state: AccountState) -> bool:
    """Whether `state` gives the URL of a posting the relay reported without one (same attempt: the caller
    has ruled out a new outcome)."""
    return (
        before is not None
        and before.url_awaited_since is not None
        and state.status == POSTED
        and state.published_url is not None
    )


def url_key(account_id: str, posted_event_id: str | None) -> str:
    """What makes one resolution distinct: the account and the posting's outcome event."""
    return f"{account_id}|url_resolved|{posted_event_id or ''}"


def urls_awaited(accounts: Mapping[str, AccountSnapshot]) -> tuple[datetime, ...]:
    """Since when each posting without a URL has been awaited."""
    return tuple(moment for state in accounts.values() if (moment := parse_ts(state.url_awaited_since)) is not None)


def next_url_check(awaited: Iterable[datetime], now: datetime, checks: Iterable[timedelta]) -> datetime | None:
    """The next check any awaited URL asks for after `now` (None: none awaited, or every wait is over)."""
    offsets = tuple(checks)
    return min((since + after for since in awaited for after in offsets if since + after > now), default=None)
