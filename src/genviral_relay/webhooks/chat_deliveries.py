"""A delivery to a chat endpoint (`format` slack, discord or teams): what is sent, and what the service's answer
means for it.

The body is the stored event written for people (`rules/chat/render.py`), never the message's: the same trust as a
signed delivery (`signed_documents.py`). It is not signed (those services verify nothing; the URL is the secret, and
is logged by host only), so no signing key is opened for it. The service's answer is read with `read_answer`: taken,
try again (its `Retry-After`, Discord's body `retry_after` too), or refused for good, which parks the delivery at
once with the service's reason in the endpoint's health (the same message would be refused again until someone
acts) and, as any failure, runs the endpoint's failing clock toward disabling it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from genviral_relay.models.chat import ChatFormat
from genviral_relay.rules.chat.answers import read_answer
from genviral_relay.rules.chat.render import chat_body, chat_test_body
from genviral_relay.webhooks.ports import WebhookAnswer
from genviral_relay.webhooks.signed_documents import SignedDocument

CHAT_HEADERS: Mapping[str, str] = MappingProxyType({"content-type": "application/json"})
"""No `webhook-*` header: nothing is signed."""


def chat_request(chat_format: ChatFormat, document: SignedDocument) -> bytes:
    """The message for the stored event (a test event: the test message, at its stored moment)."""
    if document.event is not None:
        return chat_body(chat_format, document.event)
    return chat_test_body(chat_format, json.loads(document.body)["detected_at"])  # vetted by SignedDocuments


def chat_answer(chat_format: ChatFormat, answer: WebhookAnswer) -> WebhookAnswer:
    """The sender's answer as the service meant it: its reason in words, its wait, whether it refused for good."""
    if answer.status is None:
        return answer  # no answer at all: retried as any delivery
    read = read_answer(chat_format, answer.status, answer.text, answer.retry_after)
    if read.verdict == "accepted":
        return answer
    reason = read.reason or answer.reason
    return replace(answer, reason=reason, retry_after=read.retry_after, final=read.verdict == "refused")
