"""What a person reads about a notice: an account that left `active` or came back (`account.*`), the relay's calls
to Genviral stopping and starting again (`relay.*`). About no post: the footer names the account or the relay.

As in `message.py`, every string is plain and unescaped and may hold someone else's text (a handle, a status as
Genviral gives it, post ids, a refusal's reason): the renderers escape all of it.
"""

from __future__ import annotations

from typing import assert_never

from genviral_relay.models.relay_notices import AccountStatusEvent, NoticeType, PostsAtRisk, RelayStateEvent
from genviral_relay.rules.chat.message import AccountLine, ChatMessage, handle, platform_name
from genviral_relay.rules.chat.text import utc_time

POSTS_NAMED = 5
"""Post ids a message names of those at risk (the soonest; the rest are counted)."""
RELAY = "genviral-relay"


def _detected(notice: AccountStatusEvent | RelayStateEvent) -> str | None:
    moment = utc_time(notice.detected_at)
    return f"Detected {moment}" if moment is not None else None


def _posts(posts: PostsAtRisk, *, count_only: str, listed: str) -> str:
    """The posts at risk in words: first their count and the soonest ids (kept before someone else's text, so no cut
    loses them)."""
    if posts.count == 0:
        return count_only
    named = posts.post_ids[:POSTS_NAMED]
    more = posts.count - len(named)
    ids = ", ".join(named) + (f" and {more} more" if more > 0 and named else "")
    noun = "post" if posts.count == 1 else "posts"
    return f"{posts.count} watched {noun} {listed}" + (f": {ids}." if ids else ".")


def _was(previous: str | None) -> str:
    return f" (was {previous})" if previous else " (was not listed)"


def _disconnected(notice: AccountStatusEvent) -> ChatMessage:
    platform, who = platform_name(notice.account), handle(notice.account)
    status = notice.status or "no longer listed"
    summary = _posts(notice.posts_at_risk, count_only="No watched post waits on it.",
                     listed="at risk (not yet published to it)")  # fmt: skip
    summary += " Genviral no longer lists it." if notice.status is None else f" Genviral lists it as {notice.status}."
    line = AccountLine("bad", platform, who, status + _was(notice.previous_status))
    return ChatMessage("bad", f"Disconnected on {platform}: {who}", summary, (line,), None, _detected(notice), "",
                       notice.event_type, f"account {notice.account_id}")  # fmt: skip


def _reconnected(notice: AccountStatusEvent) -> ChatMessage:
    platform, who = platform_name(notice.account), handle(notice.account)
    status = notice.status or "listed"
    summary = _posts(notice.posts_at_risk, count_only="No watched post waits on it.",
                     listed="waiting on it can go out again")  # fmt: skip
    summary += f" Genviral lists it as {status} again."
    line = AccountLine("good", platform, who, status + _was(notice.previous_status))
    return ChatMessage("good", f"Reconnected on {platform}: {who}", summary, (line,), None, _detected(notice), "",
                       notice.event_type, f"account {notice.account_id}")  # fmt: skip


def _refusal(notice: RelayStateEvent) -> str:
    return f" (HTTP {notice.http_status})" if notice.http_status is not None else ""


def _paused(notice: RelayStateEvent) -> ChatMessage:
    until = utc_time(notice.until)
    summary = "The relay stopped calling Genviral" + (f" until {until}" if until else "") + ": no post is checked "
    summary += f"meanwhile. Why: {notice.reason}"
    # No status: the key itself could not be read, so Genviral refused nothing
    headline = "Relay paused: " + (f"Genviral refused its key{_refusal(notice)}" if notice.http_status is not None
                                   else "it could not read its Genviral key")  # fmt: skip
    return ChatMessage("bad", headline, summary, (), None, _detected(notice), "", notice.event_type, RELAY)


def _resumed(notice: RelayStateEvent) -> ChatMessage:
    since = utc_time(notice.paused_at)
    summary = "Calls to Genviral work again; watched posts are checked as before. They had stopped"
    summary += (f" since {since}" if since else "") + f"{_refusal(notice)}: {notice.reason}"
    return ChatMessage("good", "Relay resumed: calls to Genviral work again", summary, (), None, _detected(notice), "",
                       notice.event_type, RELAY)  # fmt: skip


def notice_message(notice: AccountStatusEvent | RelayStateEvent) -> ChatMessage:
    """The message a person reads about `notice`."""
    event_type: NoticeType = notice.event_type
    match event_type:
        case "account.disconnected":
            assert isinstance(notice, AccountStatusEvent)
            return _disconnected(notice)
        case "account.reconnected":
            assert isinstance(notice, AccountStatusEvent)
            return _reconnected(notice)
        case "relay.paused":
            assert isinstance(notice, RelayStateEvent)
            return _paused(notice)
        case "relay.resumed":
            assert isinstance(notice, RelayStateEvent)
            return _resumed(notice)
        case _:
            assert_never(event_type)
