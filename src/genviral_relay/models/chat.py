"""The chat formats of a webhook endpoint (issue 23): a delivery written for people in a chat service's own shape.

Kept apart from `models/webhooks.py` (whose `WebhookFormat` is `Literal["standard"] | ChatFormat`) so the pure chat
rules name them without the endpoint model."""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

ChatFormat = Literal["slack", "discord", "teams"]
CHAT_FORMATS: tuple[ChatFormat, ...] = get_args(ChatFormat)


def is_chat_format(format: str) -> TypeGuard[ChatFormat]:
    return format in CHAT_FORMATS
