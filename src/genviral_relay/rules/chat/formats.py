"""Which format a URL gets when its registration names none, and how fast each format is delivered by default."""

from __future__ import annotations

import re
from typing import assert_never
from urllib.parse import urlsplit

from genviral_relay.models.chat import ChatFormat, is_chat_format

_DISCORD_HOSTS = ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com")
_DISCORD_PATH = re.compile(r"^/api/(v\d+/)?webhooks/")


def detect_format(url: str) -> ChatFormat | None:
    """The chat format a URL's service takes (`https://hooks.slack.com/...`; `https://discord.com/api/webhooks/...`,
    `discordapp.com`, a versioned `/api/v10/webhooks/`), or None: `standard`. Teams Workflows URLs (Power Automate's
    hosts, shared with every other flow) are not told apart: `teams` is asked for."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return None
    if parts.scheme.lower() != "https":
        return None
    if host == "hooks.slack.com":
        return "slack"
    if host in _DISCORD_HOSTS and _DISCORD_PATH.match(parts.path):
        return "discord"
    return None


def chat_rate_limit(chat_format: ChatFormat) -> float:
    """Deliveries per second inside the service's published limit, so a resend of 500 failures reaches the channel
    whole instead of bouncing off 429s."""
    match chat_format:
        case "slack":
            return 1.0  # one message a second per incoming webhook (short bursts tolerated)
        case "discord":
            return 0.5  # 5 requests per 2 s per webhook, and, tighter, 30 messages a minute per channel
        case "teams":
            return 1.0  # the Teams connector of Workflows: 100 calls a minute per connection
        case _:
            assert_never(chat_format)


def default_rate_limit(format: str) -> float | None:
    """The `rate_limit` an endpoint of `format` gets when it names none: None (no pacing) for `standard`."""
    return chat_rate_limit(format) if is_chat_format(format) else None
