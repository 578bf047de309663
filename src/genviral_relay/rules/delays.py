"""Delayed postings: an account still neither `posted` nor `failed` some time after it was due.

Pure: the caller passes the detection time and the threshold (`DelayedAfterMinutes`).

An account is *awaited* from its post's `scheduled_at` (a post without one is published as soon as
it is created: from `created_at`) or, after a retry the relay saw (the account went from final
back to another status), from that sighting: the new attempt is due then. It is *delayed* once it
has been awaited for the threshold. Each attempt is reported once: the key is the account and the
moment it is awaited from, so a reschedule or a retry is a new attempt and may be reported again.

Nothing is awaited of a post or an account in a status that is not heading for posting (a draft,
a canceled or deleted post or account): those are not postings that hang.
"""

from __future__ import annotations

from datetime import datetime

from genviral_relay.clock import format_ts, parse_ts
from genviral_relay.models.domain import FINAL_STATUSES, AccountSnapshot
from genviral_relay.models.upstream import Post
from genviral_relay.rules.schedule import due_moment

NOT_HEADING_FOR_POSTING = frozenset({"draft", "canceled", "deleted"})
"""Post or account statuses whose accounts are not expected to be posted to (documented or seen in Genviral)."""


def awaited_since(post: Post, account: AccountSnapshot) -> datetime | None:
    """From when `account` (as just recorded) has been due to be posted to; None when nothing is awaited."""
    if account.status in FINAL_STATUSES or account.status in NOT_HEADING_FOR_POSTING:
        return None
    if post.status in NOT_HEADING_FOR_POSTING:
        return None
    return parse_ts(account.retry_seen_at) or due_moment(post)


def delay_key(account_id: str, since: datetime) -> str:
    """What makes one delay distinct: the account and the attempt, named by the moment it is awaited from."""
    return f"{account_id}|delayed|{format_ts(since)}"


def retry_seen_at(previous: AccountSnapshot | None, status: str, seen_at: datetime) -> str | None:
    """When a retry of the account was first seen, for the snapshot recorded now: set when it leaves a final
    status, kept while it stays out of one, dropped once it is final again."""
    if status in FINAL_STATUSES or previous is None:
        return None
    if previous.status in FINAL_STATUSES:
        return format_ts(seen_at)
    return previous.retry_seen_at
