"""Chat deliveries, per event type and per service: what a person reads, in each service's shape and limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from genviral_relay.models.chat import CHAT_FORMATS
from genviral_relay.models.events import parse_event
from genviral_relay.models.webhook_documents import SUBSCRIBABLE_TYPES, parse_webhook_document
from genviral_relay.rules.chat.message import LOOKS
from genviral_relay.rules.chat.render import chat_body, chat_payload, describe
from tests.support.notice_samples import AT_RISK, TIKTOK, notice
from tests.unit.chat_checks import discord_problems, links, slack_problems, strings, teams_problems
from tests.unit.chat_samples import sample, sample_document, with_text

CHECKS = {"slack": slack_problems, "discord": discord_problems, "teams": teams_problems}
TIKTOK_URL = "https://www.tiktok.com/@brand/video/7466130000000000000"


def shown(payload: dict[str, Any]) -> str:
    """Everything a person could read in the payload, escapes undone (near enough for "it says X")."""
    texts = [text for path, text in strings(payload) if not path.endswith((".type", ".url", "contentType"))]
    text = "\n".join(texts).replace("\\", "").replace("\N{ZERO WIDTH SPACE}", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
@pytest.mark.parametrize("event_type", list(SUBSCRIBABLE_TYPES))
def test_every_event_type_renders_within_the_services_limits(event_type: str, chat_format: Any) -> None:
    payload = chat_payload(chat_format, sample(event_type))
    assert CHECKS[chat_format](payload) == []
    assert json.loads(chat_body(chat_format, sample(event_type))) == payload


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_posted_account_says_where_and_links_the_published_post(chat_format: Any) -> None:
    payload = chat_payload(chat_format, sample("post.account.posted"))
    text = shown(payload)
    assert "Posted on TikTok: @brand" in text
    assert "2025-02-01 15:00 UTC" in text  # the post's time, in UTC
    assert "Holiday drops start Monday!" in text  # the caption
    assert LOOKS["good"].emoji in text
    assert links(payload) == {TIKTOK_URL}


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_failed_account_gives_the_error_category_and_message(chat_format: Any) -> None:
    event = sample("post.account.failed")
    payload = chat_payload(chat_format, event)
    text = shown(payload)
    assert "Failed on Instagram: @brand.shop" in text
    assert f"media_rejected: {event.error_message}" in text  # type: ignore[attr-defined]
    assert LOOKS["bad"].emoji in text
    assert links(payload) == set()


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_delayed_account_says_since_when(chat_format: Any) -> None:
    text = shown(chat_payload(chat_format, sample("post.account.delayed")))
    assert "Delayed on Instagram: @brand.shop" in text
    assert "still pending since 2025-02-01 18:00 UTC" in text
    assert LOOKS["late"].emoji in text


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_completion_lists_every_account_with_its_outcome(chat_format: Any) -> None:
    payload = chat_payload(chat_format, sample("post.completed"))
    text = shown(payload)
    assert "Post partly published: 1 posted, 1 failed" in text
    assert "TikTok @brand" in text
    assert "Instagram @brand.shop" in text
    assert "media_rejected: Instagram rejected the media" in text
    assert LOOKS["mixed"].emoji in text
    assert links(payload) == {TIKTOK_URL}


def test_the_colours_and_emoji_are_one_table_across_the_services() -> None:
    for event_type in SUBSCRIBABLE_TYPES:
        message = describe(sample(event_type))
        discord = chat_payload("discord", sample(event_type))["embeds"][0]
        slack = chat_payload("slack", sample(event_type))
        teams = chat_payload("teams", sample(event_type))["attachments"][0]["content"]["body"][0]["inlines"][0]
        assert discord["color"] == message.look.colour
        assert discord["title"].startswith(message.look.emoji)
        assert slack["text"].startswith(message.look.emoji)
        assert teams["text"].startswith(message.look.emoji)
        assert teams["color"] == message.look.teams_colour


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.com/x", "https://evil.example/a b", "//x.y/z"])
def test_a_published_url_that_is_not_a_web_address_is_shown_never_linked(chat_format: Any, url: str) -> None:
    payload = chat_payload(chat_format, with_text("post.account.posted", url=url))
    assert links(payload) == set()
    assert CHECKS[chat_format](payload) == []
    assert url.replace(" ", "") in shown(payload).replace(" ", "")


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_an_account_with_no_listing_is_named_by_its_id(chat_format: Any) -> None:
    text = shown(chat_payload(chat_format, with_text("post.account.failed", username=None, platform=None)))
    assert "an unlisted account" in text
    assert "Brand Shop" in text  # the display name stands in for the missing handle


def test_a_post_never_scheduled_is_labelled_by_its_creation() -> None:
    document = sample_document("post.account.failed")
    document["post"]["scheduled_at"] = None
    footer = describe(parse_event(document)).footer
    assert footer.startswith("Created "), footer


def test_twenty_failed_accounts_with_long_errors_stay_within_slacks_total_block_text() -> None:
    event = with_text("post.completed", caption="c" * 2200, username="u" * 30, platform="tiktok", error="e" * 1000,
                      url="https://www.tiktok.com/@u/video/1", accounts=20)  # fmt: skip
    assert slack_problems(chat_payload("slack", event)) == []


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_disconnected_account_names_itself_its_status_and_the_posts_at_risk(chat_format: Any) -> None:
    payload = chat_payload(chat_format, sample("account.disconnected"))
    text = shown(payload)
    assert "Disconnected on TikTok: @brand" in text
    assert "revoked (was active)" in text
    assert "7 watched posts at risk" in text
    assert f"{AT_RISK[0]}, {AT_RISK[1]}" in text  # the soonest first
    assert AT_RISK[4] in text  # the first five named, the rest counted
    assert AT_RISK[5] not in text
    assert "and 2 more" in text
    assert LOOKS["bad"].emoji in text
    assert links(payload) == set()


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_an_account_genviral_no_longer_lists_says_so(chat_format: Any) -> None:
    document = sample_document("account.disconnected")
    document["status"] = None
    text = shown(chat_payload(chat_format, parse_webhook_document(document)))
    assert "no longer listed (was active)" in text
    assert "Genviral no longer lists it" in text


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_reconnected_account_is_good_news_with_the_posts_that_can_go_out(chat_format: Any) -> None:
    text = shown(chat_payload(chat_format, sample("account.reconnected")))
    assert "Reconnected on TikTok: @brand" in text
    assert "active (was revoked)" in text
    assert "2 watched posts waiting on it can go out again" in text
    assert LOOKS["good"].emoji in text


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_pause_gives_the_reason_the_status_and_until_when(chat_format: Any) -> None:
    text = shown(chat_payload(chat_format, sample("relay.paused")))
    assert "Relay paused: Genviral refused its key (HTTP 402)" in text
    assert "until 2025-02-01 09:15 UTC" in text
    assert "Why: Genviral refused the key: payment required" in text
    assert LOOKS["bad"].emoji in text


def test_a_pause_without_a_status_does_not_say_genviral_refused_the_key() -> None:
    message = describe(notice("relay.paused", http_status=None, reason="the Genviral secret could not be read"))
    assert message.headline == "Relay paused: it could not read its Genviral key"
    assert message.summary.endswith("Why: the Genviral secret could not be read")


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_resume_says_calls_work_again_and_since_when_they_had_stopped(chat_format: Any) -> None:
    text = shown(chat_payload(chat_format, sample("relay.resumed")))
    assert "Relay resumed: calls to Genviral work again" in text
    assert "since 2025-02-01 09:00 UTC (HTTP 402)" in text
    assert LOOKS["good"].emoji in text


@pytest.mark.parametrize("event_type", ["account.disconnected", "account.reconnected"])
def test_an_accounts_notice_is_about_no_post_and_its_footer_names_the_account(event_type: str) -> None:
    footer = describe(sample(event_type)).footer
    assert footer.startswith("Detected 2025-02-01 14:"), footer
    assert footer.endswith(f"account {TIKTOK.id}")
    assert "post" not in footer


@pytest.mark.parametrize("event_type", ["relay.paused", "relay.resumed"])
def test_the_relays_notice_footer_names_the_relay(event_type: str) -> None:
    footer = describe(sample(event_type)).footer
    assert footer.startswith("Detected 2025-02-01 09:"), footer
    assert footer.endswith("genviral-relay")


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
@pytest.mark.parametrize("event_type", list(SUBSCRIBABLE_TYPES))
def test_a_message_names_its_workspace_unless_it_is_the_default_one(event_type: str, chat_format: Any) -> None:
    default = sample(event_type)
    acme = default.model_copy(update={"workspace": "acme"})

    assert describe(acme).footer == f"Workspace acme \N{MIDDLE DOT} {describe(default).footer}"
    assert "Workspace acme" in shown(chat_payload(chat_format, acme))
    assert "Workspace" not in shown(chat_payload(chat_format, default))  # a stack with one key names none
    assert CHECKS[chat_format](chat_payload(chat_format, acme.model_copy(update={"workspace": "w" * 40}))) == []
