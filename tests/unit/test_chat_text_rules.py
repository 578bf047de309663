"""The shared text rules of chat deliveries (cutting, escaping, links, times), the format a URL gets, the default
pace per format, and the reading of each service's answers."""

from __future__ import annotations

import json

import pytest

from genviral_relay.models.chat import CHAT_FORMATS
from genviral_relay.rules.chat.answers import read_answer
from genviral_relay.rules.chat.formats import default_rate_limit, detect_format
from genviral_relay.rules.chat.text import (
    DISCORD_ESCAPES,
    ELLIPSIS,
    SLACK_ESCAPES,
    clean,
    clusters,
    cut,
    link,
    units,
    utc_time,
)


def test_text_that_fits_is_kept_whole() -> None:
    assert cut("hello", 5) == "hello"


def test_a_cut_ends_in_an_ellipsis_within_the_limit() -> None:
    assert cut("hello world", 8) == "hello w" + ELLIPSIS


SCOTLAND = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize("cluster", ["👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "e\u0301", SCOTLAND, "❤️"])
def test_a_cut_never_splits_a_character_a_person_sees_as_one(cluster: str) -> None:
    text = "ab" + cluster * 20
    for limit in range(units(cluster) + 1, units(text)):  # a room smaller than one cluster has to cut inside it
        kept = cut(text, limit).removesuffix(ELLIPSIS)
        assert units(kept) + 1 <= limit
        assert kept.removeprefix("ab").replace(cluster, "") == "", (limit, kept)


def test_lengths_are_counted_in_utf16_units_so_an_emoji_counts_two() -> None:
    assert units("😀") == 2
    assert cut("😀😀😀", 5) == "😀😀" + ELLIPSIS


def test_one_huge_cluster_is_cut_inside_rather_than_lost() -> None:
    zalgo = "a" + "\u0336" * 2000
    kept = cut(zalgo, 100)
    assert units(kept) <= 100
    assert len(kept) > 50  # not just the ellipsis


def test_an_escape_is_never_cut_in_half() -> None:
    text = "<" * 50
    for limit in range(2, 40):
        kept = cut(text, limit, SLACK_ESCAPES).removesuffix(ELLIPSIS)
        assert kept == "&lt;" * (len(kept) // 4)
    buried = "a" + "\u0301*" * 100  # a cluster cut inside, every other character escaped
    for limit in range(10, 60):
        kept = cut(buried, limit, DISCORD_ESCAPES).removesuffix(ELLIPSIS)
        assert not kept.endswith("\\") or kept.endswith("\\\\")


def test_cleaning_drops_controls_and_direction_overrides_and_mends_lone_surrogates() -> None:
    assert clean("a\x00b\x1bc\u202edef\u202c\tg\r\nh") == "abcdef g\nh"
    assert clean("x\ud83dy") == "x\ufffdy"


def test_clusters_keep_flags_in_pairs() -> None:
    assert list(clusters("🇫🇷🇩🇪")) == ["🇫🇷", "🇩🇪"]


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://www.tiktok.com/@brand/video/1", True),
        ("http://example.com/x?y=1", True),
        ("javascript:alert(1)", False),
        ("ftp://example.com/x", False),
        ("https:///no-host", False),
        ("https://example.com/a b", False),
        ("https://example.com/<x>", False),
        ("https://example.com/a|b", False),
        ("https://exämple.com/", False),
        ("https://example.com/" + "x" * 2000, False),
        (None, False),
    ],
)
def test_only_a_web_address_becomes_a_link(url: str | None, linked: bool) -> None:
    assert link(url) == (url if linked else None)


def test_times_are_shown_in_utc() -> None:
    assert utc_time("2025-02-01T16:00:00+01:00") == "2025-02-01 15:00 UTC"
    assert utc_time("not a time") is None
    assert utc_time(None) is None


@pytest.mark.parametrize(
    ("url", "detected"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXX", "slack"),
        ("https://HOOKS.SLACK.COM./services/T000/B000/XXXX", "slack"),
        ("https://hooks.slack.com/triggers/T0/123/abc", None),  # Workflow Builder: its own variables, not Block Kit
        ("https://hooks.slack.com/workflows/T0/A0/123/abc", None),
        ("https://discord.com/api/webhooks/123/token", "discord"),
        ("https://discordapp.com/api/webhooks/123/token", "discord"),
        ("https://discord.com/api/v10/webhooks/123/token", "discord"),
        ("https://discord.com/channels/123", None),
        ("https://hooks.slack.com.evil.example/services/x", None),
        ("http://hooks.slack.com/services/x", None),
        ("https://prod-00.westus.logic.azure.com/workflows/x", None),
        ("https://example.com/hooks", None),
        ("not a url", None),
        ("https://[::1/", None),
    ],
)
def test_a_slack_or_discord_url_gets_its_format_and_anything_else_is_standard(url: str, detected: str | None) -> None:
    assert detect_format(url) == detected


def test_each_chat_format_has_a_default_pace_within_its_service_and_standard_has_none() -> None:
    assert default_rate_limit("standard") is None
    assert default_rate_limit("slack") == 1.0  # Slack: about one message a second per webhook
    assert default_rate_limit("discord") == 0.5  # Discord: 5 per 2 s per webhook, 30 a minute per channel
    assert default_rate_limit("teams") == 1.0
    assert all(default_rate_limit(chat_format) for chat_format in CHAT_FORMATS)


@pytest.mark.parametrize(
    ("chat_format", "status", "body"),
    [("slack", 200, "ok"), ("discord", 204, ""), ("discord", 200, "{}"), ("teams", 202, "")],
)
def test_the_services_acceptances(chat_format: str, status: int, body: str) -> None:
    assert read_answer(chat_format, status, body, None).verdict == "accepted"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (400, "invalid_payload", "malformed"),
        (403, "action_prohibited", "restricted"),
        (404, "channel_not_found", "deleted"),
        (410, "channel_is_archived", "archived"),
    ],
)
def test_slacks_refusals_are_permanent_and_say_why(status: int, code: str, words: str) -> None:
    answer = read_answer("slack", status, code, None)
    assert answer.verdict == "refused"
    assert answer.reason is not None
    assert code in answer.reason
    assert words in answer.reason


def test_discords_unknown_webhook_is_a_permanent_refusal() -> None:
    answer = read_answer("discord", 404, json.dumps({"message": "Unknown Webhook", "code": 10015}), None)
    assert answer.verdict == "refused"
    assert answer.reason == "the Discord webhook was deleted (Unknown Webhook)"


def test_discords_429_waits_as_long_as_its_body_asks_when_that_is_longer_than_the_header() -> None:
    body = json.dumps({"message": "You are being rate limited.", "retry_after": 2.5, "global": False})
    assert read_answer("discord", 429, body, "1") == read_answer("discord", 429, body, None)
    answer = read_answer("discord", 429, body, "1")
    assert (answer.verdict, answer.retry_after) == ("retry", 2.5)
    assert read_answer("discord", 429, json.dumps({"retry_after": 0.5}), "3").retry_after == 3.0
    assert read_answer("discord", 429, "not json", None).retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_a_services_not_now_is_retried(status: int) -> None:
    for chat_format in CHAT_FORMATS:
        assert read_answer(chat_format, status, "busy", "7").verdict == "retry"


def test_a_teams_refusal_carries_its_error_code_and_message() -> None:
    body = json.dumps({"error": {"code": "WorkflowNotFound", "message": "The workflow was not found."}})
    answer = read_answer("teams", 404, body, None)
    assert answer.verdict == "refused"
    assert answer.reason == "Teams answered 404: WorkflowNotFound The workflow was not found."


def test_a_services_answer_is_cut_and_cleaned_before_it_reaches_the_health() -> None:
    answer = read_answer("slack", 400, "x\x1b[31m" * 1000, None)
    assert answer.reason is not None
    assert len(answer.reason) <= 250
    assert "\x1b" not in answer.reason
