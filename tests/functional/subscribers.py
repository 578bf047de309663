"""Reading what subscribers received, in the shapes SNS and EventBridge deliver."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from genviral_relay.models.events import EVENT_TYPE_BY_STATUS
from local.stack import MotoStack

TRANSITION_TYPES = frozenset(EVENT_TYPE_BY_STATUS.values())
"""The account outcome events: a post's completion and an account's delay are the other documents."""


@dataclass(frozen=True)
class Received:
    sns: list[dict[str, Any]]
    """SNS notifications: the envelope, with `Message` and `MessageAttributes`."""
    eventbridge: list[dict[str, Any]]
    """EventBridge events: `source`, `detail-type`, `detail`."""

    def sns_documents(self) -> list[dict[str, Any]]:
        return [json.loads(message["Message"]) for message in self.sns]

    def eventbridge_documents(self) -> list[dict[str, Any]]:
        return [event["detail"] for event in self.eventbridge]

    def sns_transitions(self) -> list[dict[str, Any]]:
        """The SNS documents that are account outcomes (`post.account.posted` / `failed`), in order."""
        return transitions(self.sns_documents())

    def sns_transition_messages(self) -> list[dict[str, Any]]:
        """The SNS notifications (envelopes) of the account outcomes, in order."""
        return [message for message in self.sns if is_transition(json.loads(message["Message"]))]

    def eventbridge_transitions(self) -> list[dict[str, Any]]:
        """The EventBridge details that are account outcomes (`post.account.posted` / `failed`), in order."""
        return transitions(self.eventbridge_documents())

    def sns_event_types(self) -> list[str]:
        return [document["event_type"] for document in self.sns_documents()]

    def eventbridge_event_types(self) -> list[str]:
        return [document["event_type"] for document in self.eventbridge_documents()]

    def event_ids(self) -> tuple[list[str], list[str]]:
        return (
            sorted(document["event_id"] for document in self.sns_documents()),
            sorted(document["event_id"] for document in self.eventbridge_documents()),
        )


def documents(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event documents of SNS notifications or EventBridge events, as a subscriber queue received them."""
    return [json.loads(message["Message"]) if "Message" in message else message["detail"] for message in messages]


def is_transition(document: dict[str, Any]) -> bool:
    return document["event_type"] in TRANSITION_TYPES


def transitions(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The account outcome documents among `documents` (received, or an API answer's `transitions`), in order."""
    return [document for document in documents if is_transition(document)]


def drain(stack: MotoStack) -> Received:
    return Received(
        sns=stack.received("sns") if "sns" in stack.subscribers else [],
        eventbridge=stack.received("eventbridge") if "eventbridge" in stack.subscribers else [],
    )
