"""What a chat service's answer means for the delivery: taken, try again (when), or refused for good (and why, in
words that reach the endpoint's health).

Slack answers `200 ok`, or a code in plain text (`400 invalid_payload`, `403 action_prohibited`, `404
channel_not_found`, `410 channel_is_archived`, ...); Discord `204` (`200` with `?wait=true`), `429` with
`retry_after` (seconds) in its JSON body as well as `Retry-After`, `404 {"message": "Unknown Webhook"}` once the
webhook is deleted; Teams Workflows `202`. A refusal is permanent: the same message would be refused again until
someone acts (un-archives the channel, PATCHes a new URL), so it is not retried; it is a failure of the endpoint all
the same, and its failing clock runs toward disabling it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from genviral_relay.errors import echoed
from genviral_relay.models.chat import ChatFormat
from genviral_relay.rules.chat.text import clean
from genviral_relay.rules.retry_after import RetryAfter, read_retry_after

REASON_LIMIT = 200
"""The most of a service's answer repeated in a reason (it is someone else's text)."""
RETRIED_STATUSES = frozenset({408, 425, 429})
"""Besides 5xx: the answers that say "not now" rather than "no"."""

SLACK_REASONS = {
    "invalid_payload": "Slack refused the message as malformed",
    "action_prohibited": "a Slack admin restricted posting to the channel",
    "channel_not_found": "the Slack channel was deleted, or the webhook's app removed from it",
    "channel_is_archived": "the Slack channel is archived",
    "no_service": "the Slack webhook was removed or disabled",
    "no_service_id": "the Slack webhook URL is incomplete",
    "no_team": "the Slack workspace is gone",
    "team_disabled": "the Slack workspace is disabled",
    "invalid_token": "the Slack webhook was revoked",
    "posting_to_general_channel_denied": "only admins may post to the Slack channel",
}
DISCORD_REASONS = {
    10003: "the Discord channel was deleted",
    10015: "the Discord webhook was deleted",
    50027: "the Discord webhook's token is invalid",
}


@dataclass(frozen=True)
class ChatAnswer:
    verdict: Literal["accepted", "retry", "refused"]
    reason: str | None = None
    """Why it was not taken, for the endpoint's health and the attempt log (never the URL)."""
    retry_after: RetryAfter | None = None
    """When a retry is asked for: the `Retry-After` header, or Discord's body `retry_after` when larger."""


def _json(body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _said(text: str) -> str:
    return echoed(" ".join(clean(text).split()), REASON_LIMIT)


def _refusal(chat_format: ChatFormat, status: int, body: str) -> str:
    """The reason for a refusal, in words: the service's own code and what it means when known."""
    if chat_format == "slack":
        code = _said(body)
        slack = SLACK_REASONS.get(code)
        return f"{slack} ({code})" if slack else f"Slack answered {status}: {code or 'no reason given'}"
    document = _json(body)
    if chat_format == "discord":
        number, message = document.get("code"), document.get("message")
        said = _said(message) if isinstance(message, str) else _said(body)
        known = DISCORD_REASONS.get(number) if isinstance(number, int) else None
        return f"{known} ({said})" if known else f"Discord answered {status}: {said or 'no reason given'}"
    error = document.get("error")
    if isinstance(error, dict):
        said = _said(" ".join(str(error.get(key, "")) for key in ("code", "message")))
    else:
        said = _said(body)
    return f"Teams answered {status}: {said or 'no reason given'}"


def _discord_retry_after(body: str) -> float | None:
    value = _json(body).get("retry_after")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else None


def read_answer(chat_format: ChatFormat, status: int, body: str, retry_after: str | RetryAfter | None) -> ChatAnswer:
    """What the service's answer (`status`, its body as text, its `Retry-After` header, as sent or as read) means
    for the delivery."""
    if 200 <= status < 300:
        return ChatAnswer("accepted")
    if status >= 500 or status in RETRIED_STATUSES:
        asked = read_retry_after(retry_after) if isinstance(retry_after, str) else retry_after
        in_body = _discord_retry_after(body) if chat_format == "discord" else None
        if in_body is not None and (asked is None or (not isinstance(asked, datetime) and in_body > asked)):
            asked = in_body
        said = "rate limited" if status == 429 else _said(body) or "no reason given"
        return ChatAnswer("retry", said, asked)  # the attempt path prefixes "HTTP <status>: "
    return ChatAnswer("refused", _refusal(chat_format, status, body))
