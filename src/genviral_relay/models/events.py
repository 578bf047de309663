"""The published event document (the public contract) and its transport envelopes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EVENT_SOURCE = "genviral.relay"

EventType = Literal["post.account.posted", "post.account.failed"]
FinalStatus = Literal["posted", "failed"]
ErrorCategory = Literal[
    "account_disconnected", "media_rejected", "content_rejected", "rate_limited", "platform_unavailable", "unknown"
]
"""Why a delivery failed, in a form to route on (`logic/failure_categories.py` derives it from `error_message`)."""

EVENT_TYPE_BY_STATUS: dict[str, EventType] = {
    "posted": "post.account.posted",
    "failed": "post.account.failed",
}
DETAIL_TYPE_BY_EVENT_TYPE: dict[str, str] = {
    "post.account.posted": "Post Account Posted",
    "post.account.failed": "Post Account Failed",
}


class AccountRef(BaseModel):
    """The account an event is about, as `GET /accounts` last listed it."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    id: str = Field(description="The Genviral account (equal to `account_id`).")
    platform: str | None = Field(
        default=None, description="As Genviral gives it (`tiktok`, `instagram`, ...); null when not listed."
    )
    username: str | None = Field(default=None, description="As Genviral gives it; null when not listed.")
    display_name: str | None = Field(default=None, description="As Genviral gives it; null when not listed.")
    type: str | None = Field(default=None, description="`byo` or `hosted`, as Genviral gives it; null when not listed.")


class PostSummary(BaseModel):
    """The post as Genviral described it when the transition was detected."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    caption: str | None
    status: str = Field(description="The post's overall status in Genviral, e.g. `partial` when some accounts failed.")
    scheduled_at: str | None
    created_at: str | None
    media: dict[str, Any] | None = Field(description="Genviral's media object, passed through unchanged.")
    music_url: str | None
    external_id: str | None = Field(
        default=None,
        description="The post's `external_id` (the key it was created with) when Genviral gives one, else null. "
        "Added in 0.4.",
    )


class RelayEvent(BaseModel):
    """One account's transition into `posted` or `failed`."""

    # Serialization mode marks defaulted fields required: every published document carries them.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    schema_version: Literal["1"] = Field(default="1", description="Format version of this document.")
    event_id: str = Field(
        description="Deterministic: the same transition always carries the same id. Delivery is at least once: "
        "dedupe on it.",
        json_schema_extra={"format": "uuid"},
    )
    event_type: EventType = Field(description="`post.account.<status>`.")
    detected_at: str = Field(
        description="When the relay observed the transition (ISO-8601 UTC).", json_schema_extra={"format": "date-time"}
    )
    post_id: str = Field(description="The Genviral post.")
    account_id: str = Field(description="The Genviral account the post was delivered to, or failed for.")
    account: AccountRef = Field(
        description="The account as `GET /accounts` lists it (cached by the relay, refreshed on an unknown id and "
        "hourly). Genviral lists only active accounts: for a revoked or removed one, or when the listing failed, "
        "only `id` is set and the other fields are null. Added in 0.4."
    )
    status: FinalStatus = Field(description="The account's new delivery status.")
    previous_status: str | None = Field(description="Last status seen before; null when first seen.")
    published_url: str | None = Field(description="As Genviral gave it.")
    published_at: str | None = Field(description="As Genviral gave it.")
    error_message: str | None = Field(description="As Genviral gave it: why delivery failed.")
    error_category: ErrorCategory | None = Field(
        default=None,
        description="On `failed` events, why delivery failed in a form to route on, derived from `error_message` "
        "(`unknown` when no rule matches or there is no message); null on every other event. Added in 0.4.",
    )
    last_attempted_at: str | None = Field(
        description="As Genviral gave it; tells a failure after a retry apart from the first one."
    )
    post: PostSummary

    @model_validator(mode="before")
    @classmethod
    def _read_0_3_events(cls, stored: Any) -> Any:
        """Events stored by 0.3 (still in an outbox, or replayed) have no `account`: name it by its id."""
        if isinstance(stored, dict) and "account" not in stored and isinstance(stored.get("account_id"), str):
            return {**stored, "account": {"id": stored["account_id"]}}
        return stored

    @property
    def detail_type(self) -> str:
        return DETAIL_TYPE_BY_EVENT_TYPE[self.event_type]

    def sns_attributes(self) -> dict[str, str]:
        """The SNS message attributes subscribers filter on."""
        attributes = {
            "event_type": self.event_type,
            "status": self.status,
            "post_id": self.post_id,
            "account_id": self.account_id,
        }
        if self.account.platform is not None:
            attributes["platform"] = self.account.platform
        if self.error_category is not None:
            attributes["error_category"] = self.error_category
        return attributes
