"""The event routes' bodies: a page of the feed (`GET /events`) and one event's story (`GET /events/{event_id}`)."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from genviral_relay.clock import format_ts_or_none
from genviral_relay.models.domain import canonical_uuid
from genviral_relay.models.event_log import DeliveryState, DeliveryStateName, FeedEntry

EVENT_ID_HINT = "an event id is a UUID such as 2f1c6e0e-8c9a-5d2b-9a51-0c7f3e1d4b6a"


def event_not_found(event_id: str) -> str:
    """The API's and the CLI's answer for an event the feed keeps none of."""
    return f"no event {event_id} in the feed (past its retention, or published before 0.5); {EVENT_ID_HINT}"


EventId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=64),
    AfterValidator(partial(canonical_uuid, hint=EVENT_ID_HINT)),
]
"""An event id as the routes accept it: a hyphenated UUID (any case), answered in lower case."""


def documents(entries: list[FeedEntry]) -> list[dict[str, Any]]:
    """The entries' documents as published (JSON objects)."""
    return [json.loads(entry.document) for entry in entries]


class FeedResponse(BaseModel):
    """A page of the event feed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: list[dict[str, Any]] = Field(
        description="Event documents (docs/events.md), in the order the relay committed them. An event may appear "
        "twice (a slow commit): dedupe on `event_id`."
    )
    next: str = Field(
        description="Pass it back as `after` for what follows. Always given: an empty page's `next` moves past "
        "everything served so far."
    )


class DeliveryView(BaseModel):
    """One event at one endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_id: str
    state: DeliveryStateName = Field(
        description="`queued` (taken, not attempted yet), `delivered`, `retrying`, `parked` (retries ran out: in the "
        "webhook dead-letter queue), `filtered` (the endpoint's filter left it out), `disabled` (the endpoint was "
        "off)."
    )
    attempts: int
    last_attempt_at: str | None
    next_attempt_at: str | None
    last_status: int | None = Field(description="The HTTP status of the last attempt; null: no answer (or none).")

    @classmethod
    def of(cls, state: DeliveryState) -> DeliveryView:
        return cls(
            webhook_id=state.webhook_id,
            state=state.state,
            attempts=state.attempts,
            last_attempt_at=format_ts_or_none(state.last_attempt_at),
            next_attempt_at=format_ts_or_none(state.next_attempt_at),
            last_status=state.last_status,
        )


class EventStoryResponse(BaseModel):
    """One event and what became of it at each webhook endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: dict[str, Any] = Field(description="The event document, as published.")
    deliveries: list[DeliveryView] = Field(description="One per endpoint that was given the event, by webhook id.")
