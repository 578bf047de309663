"""Someone else's text is inert and the limits hold, for any caption, handle, platform and error: the issue's
hostile strings by name, then hypothesis over arbitrary text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genviral_relay.models.chat import CHAT_FORMATS
from genviral_relay.models.webhook_documents import SUBSCRIBABLE_TYPES
from genviral_relay.rules.chat.render import chat_payload
from tests.unit.chat_checks import discord_problems, links, slack_problems, strings, teams_problems
from tests.unit.chat_samples import HOSTILE, with_text

CHECKS = {"slack": slack_problems, "discord": discord_problems, "teams": teams_problems}
SAFE_URL = "https://www.tiktok.com/@brand/video/1"
SCOTLAND = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
EMOJI_AND_MARKS = [
    "😀",
    "👍🏽",
    "👨‍👩‍👧‍👦",
    "🇫🇷",
    SCOTLAND,
    "é",
    "\u0301",
    "\u0336",
    "\u20dd",
    "a",
    " ",
    "\n",
    "*",
    "<",
    "@",
]


def problems(chat_format: str, payload: dict[str, Any]) -> list[str]:
    found = CHECKS[chat_format](payload)
    if links(payload) - {SAFE_URL}:
        found.append(f"links {links(payload) - {SAFE_URL}}")
    for path, text in strings(payload):
        if any(0xD800 <= ord(char) <= 0xDFFF for char in text):
            found.append(f"a lone surrogate at {path}")
    return found


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
@pytest.mark.parametrize("event_type", list(SUBSCRIBABLE_TYPES))
@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_issues_hostile_strings_neither_notify_link_nor_format(
    event_type: str, chat_format: Any, hostile: str
) -> None:
    event = with_text(event_type, caption=hostile, username=hostile, platform=hostile, error=hostile, url=SAFE_URL)
    assert problems(chat_format, chat_payload(chat_format, event)) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_the_issues_worst_case_holds_the_limits(chat_format: str) -> None:
    """A 2,200-character caption of emoji and combining marks, a 1,000-character error, ten accounts."""
    caption = ("👍🏽e\u0301\u0336🇫🇷" * 400)[:2200]
    event = with_text("post.completed", caption=caption, username="ü" * 100, platform="x", error="<!channel>" * 100,
                      url=SAFE_URL, accounts=10)  # fmt: skip
    payload = chat_payload(chat_format, event)  # type: ignore[arg-type]
    assert problems(chat_format, payload) == []


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
def test_a_completion_of_many_accounts_counts_the_ones_not_shown(chat_format: str) -> None:
    event = with_text("post.completed", caption="c" * 2200, username="u" * 200, platform="tiktok", error="e" * 1000,
                      url=SAFE_URL + "?" + "q" * 1900, accounts=60)  # fmt: skip
    payload = chat_payload(chat_format, event)  # type: ignore[arg-type]
    assert CHECKS[chat_format](payload) == []
    assert any(" more" in text for _, text in strings(payload))


hostile_text = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.lists(st.sampled_from(EMOJI_AND_MARKS), max_size=1000).map(lambda pieces: "".join(pieces)[:2200]),
    st.lists(st.sampled_from(HOSTILE), max_size=20).map("".join),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=900, max_size=1000),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    event_type=st.sampled_from(list(SUBSCRIBABLE_TYPES)),
    caption=hostile_text,
    username=hostile_text,
    platform=hostile_text,
    error=hostile_text,
    url=st.one_of(st.just(SAFE_URL), hostile_text),
    accounts=st.integers(min_value=1, max_value=12),
)
def test_any_text_holds_every_services_limits_and_forms_nothing(
    event_type: str, caption: str | None, username: str | None, platform: str | None, error: str | None,
    url: str | None, accounts: int,
) -> None:  # fmt: skip
    event = with_text(event_type, caption=caption, username=username, platform=platform, error=error, url=url,
                      accounts=accounts)  # fmt: skip
    for chat_format in CHAT_FORMATS:
        payload = chat_payload(chat_format, event)
        found = CHECKS[chat_format](payload)
        assert found == [], (chat_format, found)
        assert links(payload) <= ({SAFE_URL} | ({url} if url and url.startswith("http") else set()))
