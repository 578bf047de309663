"""What the relay keeps of its published events and their webhook deliveries, for operators and consumers: the
event feed (every document in the order it was committed), each delivery's state per endpoint, and each endpoint's
attempt log. Kept as long as the events (`EventRetentionDays`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from genviral_relay.clock import format_ts

DeliveryStateName = Literal["queued", "delivered", "retrying", "parked", "filtered", "disabled"]
"""Where one event stands at one endpoint: `queued` (taken, not attempted yet), `delivered`, `retrying` (the last
attempt failed, the next is scheduled), `parked` (retries ran out: in the webhook dead-letter queue), `filtered`
(the endpoint's filter left it out: never sent), `disabled` (the endpoint was disabled: not sent)."""
AttemptOutcome = Literal["delivered", "failed"]
ATTEMPTS_READ_AT_MOST = 1000
"""Entries one read of an attempt log goes through at most: a page of a rare outcome may end there short, its
`reached` (the listing's `next`) going on from the last entry read."""


class FeedEntry(BaseModel):
    """One published document in the feed. Its position orders the feed: the moment its commit was stamped, the
    event id breaking ties (one event may sit at two positions after a slow commit: the feed is at least once)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    committed_at: datetime
    event_id: str
    event_type: str
    post_id: str | None = Field(description="None for a document about no post (`webhook.endpoint.disabled`).")
    # shim: workspace-absent-is-default
    workspace: str | None = Field(
        default=None,
        description="The document's workspace as stored (`stored_workspace`): None for `default`'s and for a "
        "document about no workspace (`webhook.endpoint.disabled`), which the feed lists as `default`'s.",
    )
    document: str = Field(description="The document as published, JSON.")

    @property
    def position(self) -> str:
        """Where it sits in the feed: string order is feed order (`format_ts` is fixed-width)."""
        return f"{format_ts(self.committed_at)}#{self.event_id}"


@dataclass(frozen=True)
class FeedPage:
    """Up to a page of entries after a position, and how far the read went: the next page starts after `reached`
    (beyond the last entry when entries were skipped by a filter, or when nothing more is committed yet)."""

    entries: list[FeedEntry]
    reached: str | None


class DeliveryState(BaseModel):
    """One event at one endpoint, as its last attempt (or the fan-out) left it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_id: str
    event_id: str
    state: DeliveryStateName
    attempts: int = Field(default=0, ge=0, description="Attempts made.")
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    last_status: int | None = Field(default=None, description="The HTTP status of the last attempt; None: no answer.")


class AttemptEntry(BaseModel):
    """One attempt in an endpoint's attempt log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_id: str
    event_id: str
    event_type: str
    attempt: int = Field(ge=1)
    at: datetime
    status: int | None = Field(description="The HTTP status answered; None: no answer.")
    duration_ms: int = Field(ge=0)
    outcome: AttemptOutcome
    reason: str | None = Field(description="Why it failed (cut, as the endpoint's health has it); None when delivered.")

    @property
    def position(self) -> str:
        """Where it sits in the log: newest first is descending string order."""
        return f"{format_ts(self.at)}#{self.event_id}#{self.attempt:02d}"


@dataclass(frozen=True)
class AttemptPage:
    entries: list[AttemptEntry]
    reached: str | None
    """The position of the last entry read (matched or not); None when the log has nothing older."""
