"""Reading what subscribers received, in the shapes SNS and EventBridge deliver."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from local.stack import MotoStack


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

    def event_ids(self) -> tuple[list[str], list[str]]:
        return (
            sorted(document["event_id"] for document in self.sns_documents()),
            sorted(document["event_id"] for document in self.eventbridge_documents()),
        )


def drain(stack: MotoStack) -> Received:
    return Received(
        sns=stack.received("sns") if "sns" in stack.subscribers else [],
        eventbridge=stack.received("eventbridge") if "eventbridge" in stack.subscribers else [],
    )
