"""Which format a URL gets when its registration (or an edit of its URL) names none, and how fast each format is
delivered by default and at most."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, assert_never
from urllib.parse import urlsplit

from genviral_relay.models.chat import ChatFormat, is_chat_format
from genviral_relay.models.webhooks import DEFAULT_FORMAT, WebhookEndpoint, WebhookFormat

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
    if host == "hooks.slack.com" and parts.path.startswith("/services/"):
        return "slack"  # an incoming webhook; Workflow Builder's triggers (same host) take their own variables
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


def published_rate_limit(chat_format: ChatFormat) -> float:
    """The most deliveries per second the service publishes for one webhook: an endpoint asking for more would only
    collect 429s (and, on Discord, a ban of the webhook), so a registration asking for more is refused."""
    match chat_format:
        case "slack":
            return 1.0
        case "discord":
            return 0.5  # 5 requests per 2 s per webhook, but 30 messages a minute per channel, and a webhook has one
        case "teams":
            return 100 / 60  # 100 calls a minute
        case _:
            assert_never(chat_format)


def rate_limit_refusal(format: str, rate_limit: float | None) -> str | None:
    """Why `rate_limit` cannot be an endpoint of `format`'s (above its service's published limit); None when it
    can."""
    if rate_limit is None or not is_chat_format(format) or rate_limit <= published_rate_limit(format):
        return None
    most = published_rate_limit(format)
    return (
        f"rate_limit {rate_limit:g} is above what {format} takes from one webhook ({most:.3g} per second); give at "
        f"most {most:.3g}, or leave it out for the default {chat_rate_limit(format):g}"
    )


def default_rate_limit(format: str) -> float | None:
    """The `rate_limit` an endpoint of `format` gets when it names none: None (no pacing) for `standard`."""
    return chat_rate_limit(format) if is_chat_format(format) else None


def url_format(url: str) -> WebhookFormat:
    """The format a registration of `url` that names none gets."""
    return detect_format(url) or DEFAULT_FORMAT


def settled_format(endpoint: WebhookEndpoint, changes: Mapping[str, Any]) -> dict[str, Any]:
    """An edit's `changes` with the format and `rate_limit` it leaves the endpoint with when it names them not.
    A new URL brings its own format when the endpoint's was its old URL's own (detected, or `standard` for a URL of
    no known service): a format that differs from what the old URL gets was chosen, and stays. Likewise a new format
    brings its default `rate_limit` when the endpoint's was the old format's default; a chosen one stays (and is
    checked against the new service's limit)."""
    settled = dict(changes)
    if "url" in changes and "format" not in changes and endpoint.format == url_format(endpoint.url):
        settled["format"] = url_format(changes["url"])
    chosen = settled.get("format", endpoint.format)
    if (
        chosen != endpoint.format
        and "rate_limit" not in changes
        and endpoint.rate_limit == default_rate_limit(endpoint.format)
    ):
        settled["rate_limit"] = default_rate_limit(chosen)
    return settled
