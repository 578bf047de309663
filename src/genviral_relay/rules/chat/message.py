"""What a person reads about an event, whichever service shows it: one `ChatMessage` per event.

Every string here is plain and unescaped, and may hold someone else's text (a caption, an error, a handle, a
platform's name as Genviral gives it): the renderers escape all of it for their service. A new event type is one
case in `post_message` (`notice_messages.py` for a notice; mypy refuses the match until it has one) and, when it
brings a new tone, one row in LOOKS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, assert_never

from genviral_relay.models.events import (
    AccountDelayedEvent,
    AccountOutcomeEvent,
    AccountRef,
    AccountUrlResolvedEvent,
    CompletedAccount,
    EventType,
    PostCompletedEvent,
    RelayEvent,
)
from genviral_relay.models.webhooks import TEST_EVENT_TYPE
from genviral_relay.rules.chat.text import utc_time

Tone = Literal["good", "bad", "late", "mixed"]


@dataclass(frozen=True)
class Look:
    """How a tone shows, the same in every service."""

    emoji: str
    colour: int
    """Discord's embed colour (Slack's brand green, red and yellow)."""
    teams_colour: Literal["Good", "Attention", "Warning"]
    """The Adaptive Card colour of the headline."""


LOOKS: dict[Tone, Look] = {
    "good": Look("\N{WHITE HEAVY CHECK MARK}", 0x2EB67D, "Good"),
    "bad": Look("\N{CROSS MARK}", 0xE01E5A, "Attention"),
    "late": Look("\N{HOURGLASS WITH FLOWING SAND}", 0xECB22E, "Warning"),
    "mixed": Look("\N{WARNING SIGN}\N{VARIATION SELECTOR-16}", 0xF2994A, "Warning"),
}

PLATFORM_NAMES = {
    "tiktok": "TikTok",
    "instagram": "Instagram",
    "youtube": "YouTube",
    "pinterest": "Pinterest",
    "linkedin": "LinkedIn",
    "facebook": "Facebook",
    "x": "X",
    "twitter": "Twitter",
    "bluesky": "Bluesky",
}


@dataclass(frozen=True)
class AccountLine:
    """One account of the post, as a line of the message."""

    tone: Tone
    platform: str
    handle: str
    status: str
    """What happened to it, in words."""
    error_category: str | None = None
    error_message: str | None = None
    url: str | None = None
    """The published post, as Genviral gave it (the renderers link it only when `text.link` allows)."""


@dataclass(frozen=True)
class ChatMessage:
    tone: Tone
    headline: str
    summary: str
    accounts: tuple[AccountLine, ...]
    caption: str | None
    post_time: str | None
    """The post's time (scheduled, else created), in UTC; for a message about no post, its own moment."""
    post_id: str
    event_type: str
    about: str = ""
    """What a message about no post is about (`account <id>`, the relay); empty for a post's and the test's."""
    workspace: str = ""
    """The workspace it is about, shown only when it is not `default` (a stack with one key names none)."""

    @property
    def look(self) -> Look:
        return LOOKS[self.tone]

    @property
    def footer(self) -> str:
        # The workspace first: a footer cut for length keeps it (its name is short and plain).
        return f"Workspace {self.workspace} \N{MIDDLE DOT} {self._footer}" if self.workspace else self._footer

    @property
    def _footer(self) -> str:
        if self.about:  # a notice: about an account or the relay, not a post
            return " \N{MIDDLE DOT} ".join(part for part in (self.post_time, self.about) if part)
        if not self.post_id:  # a test message: about no post
            return f"Sent {self.post_time}" if self.post_time else "Sent by genviral-relay"
        when = self.post_time or "Not scheduled"
        return f"{when} \N{MIDDLE DOT} post {self.post_id}"


def platform_name(account: AccountRef) -> str:
    if account.platform is None:
        return "an unlisted account"
    return PLATFORM_NAMES.get(account.platform.lower(), account.platform)


def handle(account: AccountRef) -> str:
    if account.username:
        return "@" + account.username.removeprefix("@")
    return account.display_name or account.id


def _post_time(
    event: AccountOutcomeEvent | AccountDelayedEvent | AccountUrlResolvedEvent | PostCompletedEvent,
) -> str | None:
    """The post's moment, labelled: when it was scheduled for, else (never scheduled) when it was created."""
    scheduled = utc_time(event.post.scheduled_at)
    if scheduled is not None:
        return f"Scheduled {scheduled}"
    created = utc_time(event.post.created_at)
    return f"Created {created}" if created is not None else None


def _outcome(event: AccountOutcomeEvent) -> ChatMessage:
    platform, who = platform_name(event.account), handle(event.account)
    if event.status == "posted":
        tone: Tone = "good"
        headline = f"Posted on {platform}: {who}"
        summary = f"The post is live on {platform} for {who}" + _at(utc_time(event.published_at)) + "."
    else:
        tone = "bad"
        headline = f"Failed on {platform}: {who}"
        summary = f"The post could not be published on {platform} for {who}" + _at(utc_time(event.last_attempted_at))
        summary += f" ({event.error_category or 'unknown'})."
    line = AccountLine(tone, platform, who, event.status, event.error_category, event.error_message,
                       event.published_url)  # fmt: skip
    return ChatMessage(tone, headline, summary, (line,), event.post.caption, _post_time(event), event.post_id,
                       event.event_type)  # fmt: skip


def _delayed(event: AccountDelayedEvent) -> ChatMessage:
    platform, who = platform_name(event.account), handle(event.account)
    since = utc_time(event.delayed_since)
    summary = f"Not yet published on {platform} for {who}: still {event.status}" + _since(since) + "."
    line = AccountLine("late", platform, who, f"still {event.status}")
    return ChatMessage("late", f"Delayed on {platform}: {who}", summary, (line,), event.post.caption,
                       _post_time(event), event.post_id, event.event_type)  # fmt: skip


def _url_resolved(event: AccountUrlResolvedEvent) -> ChatMessage:
    platform, who = platform_name(event.account), handle(event.account)
    summary = f"The post on {platform} for {who} has its link now" + _at(utc_time(event.published_at)) + "."
    line = AccountLine("good", platform, who, "posted", url=event.published_url)
    return ChatMessage("good", f"Link ready on {platform}: {who}", summary, (line,), event.post.caption,
                       _post_time(event), event.post_id, event.event_type)  # fmt: skip


def _completed_line(account: CompletedAccount) -> AccountLine:
    tone: Tone = "good" if account.status == "posted" else "bad"
    return AccountLine(tone, platform_name(account.account), handle(account.account), account.status,
                       account.error_category, account.error_message, account.published_url)  # fmt: skip


def _completed(event: PostCompletedEvent) -> ChatMessage:
    total = event.posted_count + event.failed_count
    if event.outcome == "posted":
        tone: Tone = "good"
        headline = f"Post published on all {total} account{'s' if total != 1 else ''}"
    elif event.outcome == "failed":
        tone = "bad"
        headline = f"Post failed on all {total} account{'s' if total != 1 else ''}"
    else:
        tone = "mixed"
        headline = f"Post partly published: {event.posted_count} posted, {event.failed_count} failed"
    summary = f"Every account of the post is done: {event.posted_count} posted, {event.failed_count} failed."
    lines = tuple(_completed_line(account) for account in event.accounts)
    return ChatMessage(tone, headline, summary, lines, event.post.caption, _post_time(event), event.post_id,
                       event.event_type)  # fmt: skip


def _at(moment: str | None) -> str:
    return f" at {moment}" if moment else ""


def _since(moment: str | None) -> str:
    return f" since {moment}" if moment else ""


def post_message(event: RelayEvent) -> ChatMessage:
    """The message a person reads about an event about a post (`render.describe` reads any document)."""
    event_type: EventType = event.event_type
    match event_type:
        case "post.account.posted" | "post.account.failed":
            assert isinstance(event, AccountOutcomeEvent)
            return _outcome(event)
        case "post.account.delayed":
            assert isinstance(event, AccountDelayedEvent)
            return _delayed(event)
        case "post.account.url_resolved":
            assert isinstance(event, AccountUrlResolvedEvent)
            return _url_resolved(event)
        case "post.completed":
            assert isinstance(event, PostCompletedEvent)
            return _completed(event)
        case _:
            assert_never(event_type)


def test_message(detected_at: str) -> ChatMessage:
    """What a channel shows for `POST /webhooks/{id}/test`: that the relay reaches it, and when it was sent."""
    summary = "This channel will be told about the events its endpoint takes. No post is involved."
    return ChatMessage("good", "Test message from genviral-relay", summary, (), None, utc_time(detected_at), "",
                       TEST_EVENT_TYPE)  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """How much of someone else's text a message carries: a renderer tries BUDGETS in turn until its payload fits the
    service's limits (the last always does, whatever the input: the property tests hold it)."""

    caption: int
    error: int
    accounts: int
    """Account lines shown; the rest are counted in one line."""


BUDGETS = (Budget(1500, 1000, 40), Budget(700, 400, 20), Budget(300, 200, 10), Budget(0, 100, 5))


def encoded(payload: dict[str, Any]) -> bytes:
    """A chat payload as the request body carries it, whatever the service: compact UTF-8 JSON (what Teams' size
    limit is measured on)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
