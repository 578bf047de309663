"""The answer of `GET /webhooks/{id}/attempts`: one endpoint's attempts, newest first."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from genviral_relay.models.event_log import AttemptEntry, AttemptOutcome


class AttemptView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    event_type: str
    attempt: int = Field(description="1 for the first attempt of the event's delivery to the endpoint.")
    at: datetime = Field(description="When it was made (ISO-8601 UTC).")
    status: int | None = Field(description="The HTTP status the endpoint answered; null: no answer.")
    duration_ms: int = Field(description="How long the request took.")
    outcome: AttemptOutcome
    reason: str | None = Field(description="Why it failed (cut to 200 characters); null when delivered.")

    @classmethod
    def of(cls, entry: AttemptEntry) -> AttemptView:
        return cls.model_validate(entry.model_dump(exclude={"webhook_id"}))


class AttemptsResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data: list[AttemptView]
    next: str | None = Field(
        description="Pass it back as `after` for the older attempts; null when there are none (a page of one "
        "outcome may be short, even empty, and still have a `next`: it read as far as it says)."
    )
