"""The chat formats of a webhook endpoint (issue 23): a delivery written for people in a chat service's own shape.

Kept apart from `models/webhooks.py` so the pure chat rules can name them before the endpoint model takes them:
`WebhookFormat` there becomes `Literal["standard"] | ChatFormat` when the delivery path learns to render."""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

ChatFormat = Literal["slack", "discord", "teams"]
CHAT_FORMATS: tuple[ChatFormat, ...] = get_args(ChatFormat)


def is_chat_format(format: str) -> TypeGuard[ChatFormat]:
    return format in CHAT_FORMATS
