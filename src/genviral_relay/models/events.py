"""The published event document (the public contract) and its transport envelopes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_SOURCE = "genviral.relay"

EventType = Literal["post.account.posted", "post.account.failed"]
FinalStatus = Literal["posted", "failed"]

EVENT_TYPE_BY_STATUS: dict[str, EventType] = {
    "posted": "post.account.posted",
    "failed": "post.account.failed",
}
DETAIL_TYPE_BY_EVENT_TYPE: dict[str, str] = {
    "post.account.posted": "Post Account Posted",
    "post.account.failed": "Post Account Failed",
}


class PostSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    caption: str | None
    status: str
    scheduled_at: str | None
    created_at: str | None
    media: dict[str, Any] | None
    music_url: str | None


class RelayEvent(BaseModel):
    """One account's transition into `posted` or `failed`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal["1"] = "1"
    event_id: str = Field(description="Deterministic: the same transition always carries the same id.")
    event_type: EventType
    detected_at: str = Field(description="When the relay observed the transition (ISO-8601 UTC).")
    post_id: str
    account_id: str
    status: FinalStatus
    previous_status: str | None = Field(description="Last status seen before; null when first seen.")
    published_url: str | None
    published_at: str | None
    error_message: str | None
    last_attempted_at: str | None
    post: PostSummary

    @property
    def detail_type(self) -> str:
        return DETAIL_TYPE_BY_EVENT_TYPE[self.event_type]

    def sns_attributes(self) -> dict[str, str]:
        """The SNS message attributes subscribers filter on."""
        return {
            "event_type": self.event_type,
            "status": self.status,
            "post_id": self.post_id,
            "account_id": self.account_id,
        }
