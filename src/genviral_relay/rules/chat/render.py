"""An event as a chat service's request body: the one entry point of the delivery path (issue 23's wiring)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, assert_never

from genviral_relay.models.chat import ChatFormat
from genviral_relay.models.events import RelayEvent
from genviral_relay.models.webhook_documents import WebhookDocument
from genviral_relay.models.workspaces import stored_workspace
from genviral_relay.rules.chat.discord import discord_message
from genviral_relay.rules.chat.message import ChatMessage, encoded, post_message, test_message
from genviral_relay.rules.chat.notice_messages import notice_message
from genviral_relay.rules.chat.slack import slack_message
from genviral_relay.rules.chat.teams import teams_message


def describe(document: WebhookDocument) -> ChatMessage:
    """The message a person reads about any document an endpoint may be sent, naming its workspace unless it is
    `default`."""
    message = post_message(document) if isinstance(document, RelayEvent) else notice_message(document)
    return replace(message, workspace=stored_workspace(document.workspace) or "")


def chat_payload(chat_format: ChatFormat, event: WebhookDocument) -> dict[str, Any]:
    return message_payload(chat_format, describe(event))


def message_payload(chat_format: ChatFormat, message: ChatMessage) -> dict[str, Any]:
    match chat_format:
        case "slack":
            return slack_message(message)
        case "discord":
            return discord_message(message)
        case "teams":
            return teams_message(message)
        case _:
            assert_never(chat_format)


def chat_body(chat_format: ChatFormat, event: WebhookDocument) -> bytes:
    """What is POSTed (Content-Type: application/json), unsigned: the services verify nothing, the URL is the
    secret."""
    return encoded(chat_payload(chat_format, event))


def chat_test_body(chat_format: ChatFormat, detected_at: str) -> bytes:
    """The `webhook.test` message, sent at `detected_at` (the stored test event's moment)."""
    return encoded(message_payload(chat_format, test_message(detected_at)))
