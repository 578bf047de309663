"""The documents about no post that consumers can subscribe to (webhook types, SNS, EventBridge, the feed): an account
that leaves `active` or comes back (`account.*`), and the relay's own calls to Genviral stopping and starting again
(`relay.*`). Each is committed with the state that produced it and published through the notice outbox
(`notices/`), so none is lost or sent under two ids."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from genviral_relay.models.events import AccountRef
from genviral_relay.models.published import WorkspaceEvent

AccountStatusType = Literal["account.disconnected", "account.reconnected"]
RelayStateType = Literal["relay.paused", "relay.resumed"]
NoticeType = Literal[AccountStatusType, RelayStateType]
MAX_NOTICES_PER_COMMIT = 40
"""The most notices one commit takes: the record and each notice's two items go in one DynamoDB transaction (at most
100 items), with room to spare. A use case that may produce more announces the rest in its next commits."""
POSTS_AT_RISK_LISTED = 100
"""A disconnect names at most this many of the posts at risk (the soonest); `count` says how many there are."""


class PostsAtRisk(BaseModel):
    """The watched posts an account's change puts at risk: those that target it whose delivery to it is not final."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    count: int = Field(ge=0, description="How many watched posts target the account and are not final for it.")
    post_ids: tuple[str, ...] = Field(
        max_length=POSTS_AT_RISK_LISTED,
        description=f"At most {POSTS_AT_RISK_LISTED} of them, soonest scheduled first (unscheduled ones last).",
    )


class AccountStatusEvent(WorkspaceEvent):
    """An account that watched posts target left `active` in `GET /accounts` (or vanished from two listings in a row),
    or came back. One id per change."""

    event_type: AccountStatusType = Field(description="`account.disconnected` or `account.reconnected`.")
    account_id: str = Field(description="The Genviral account (equal to `account.id`).")
    account: AccountRef = Field(description="The account as `GET /accounts` last listed it.")
    status: str | None = Field(
        description="Its status in `GET /accounts` now (`active`, `paused`, `revoked`, ...); null when Genviral no "
        "longer lists it."
    )
    previous_status: str | None = Field(description="Its status before the change; null when it was not listed.")
    posts_at_risk: PostsAtRisk

    @property
    def detail_type(self) -> str:
        return NOTICE_DETAIL_TYPES[self.event_type]

    @property
    def account_ids(self) -> tuple[str, ...]:
        return (self.account_id,)

    def sns_attributes(self) -> dict[str, str]:
        attributes = {**super().sns_attributes(), "account_id": self.account_id}
        if self.status is not None:
            attributes["status"] = self.status
        if self.account.platform is not None:
            attributes["platform"] = self.account.platform
        return attributes

    def log_keys(self) -> dict[str, str]:
        return {"event_id": self.event_id, "event_type": self.event_type, "account_id": self.account_id}


class RelayStateEvent(WorkspaceEvent):
    """Genviral refused the relay's key (401 after a fresh read of the secret, 402, 403), so the relay stopped calling
    it, or calls work again. Once per pause."""

    event_type: RelayStateType = Field(description="`relay.paused` or `relay.resumed`.")
    reason: str = Field(
        description="Why calls stopped (on `relay.resumed`: why they had stopped), in the relay's words with "
        "Genviral's status, error code and message (cut); for an unreadable secret, the AWS error code only. "
        "Never the key."
    )
    http_status: int | None = Field(
        description="Genviral's HTTP status for the refusal (401, 402, 403); null when the secret could not be read."
    )
    until: str | None = Field(
        description="On `relay.paused`: when the relay next tries a call (ISO-8601 UTC); null on `relay.resumed`.",
        json_schema_extra={"format": "date-time"},
    )
    paused_at: str = Field(
        description="When the pause began (ISO-8601 UTC): the same on a pause and the resume that ends it.",
        json_schema_extra={"format": "date-time"},
    )

    @property
    def detail_type(self) -> str:
        return NOTICE_DETAIL_TYPES[self.event_type]

    @property
    def account_ids(self) -> tuple[str, ...]:
        return ()

    def sns_attributes(self) -> dict[str, str]:
        attributes = super().sns_attributes()
        if self.http_status is not None:
            attributes["http_status"] = str(self.http_status)
        return attributes

    def log_keys(self) -> dict[str, str]:
        return {"event_id": self.event_id, "event_type": self.event_type}


NOTICE_DETAIL_TYPES: dict[NoticeType, str] = {
    "account.disconnected": "Account Disconnected",
    "account.reconnected": "Account Reconnected",
    "relay.paused": "Relay Paused",
    "relay.resumed": "Relay Resumed",
}
"""EventBridge's detail-type of each notice type (and its registry schema's name), in the contract's order."""

Notice = Annotated[AccountStatusEvent | RelayStateEvent, Field(discriminator="event_type")]
"""A notice document, told apart by `event_type`."""
_NOTICES: TypeAdapter[Notice] = TypeAdapter(Notice)


def parse_notice(document: str | bytes | dict[str, Any]) -> AccountStatusEvent | RelayStateEvent:
    """A notice document (JSON text or parsed) as its model; raises pydantic's ValidationError."""
    if isinstance(document, dict):
        return _NOTICES.validate_python(document)
    return _NOTICES.validate_json(document)


def notice_documents_schema(*, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The JSON Schema of any notice document (serialization mode), discriminated on `event_type`."""
    return _NOTICES.json_schema(mode="serialization", ref_template=ref_template)
