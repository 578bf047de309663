"""The published event document (the public contract) and its transport envelopes."""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

# Re-exported: what every published document has is imported from here, with the documents.
from genviral_relay.models.published import PublishedEvent as PublishedEvent
from genviral_relay.models.published import WorkspaceEvent as WorkspaceEvent

EVENT_SOURCE = "genviral.relay"

EventType = Literal[
    "post.account.posted", "post.account.failed", "post.account.delayed", "post.account.url_resolved", "post.completed"
]
OutcomeEventType = Literal["post.account.posted", "post.account.failed"]
FinalStatus = Literal["posted", "failed"]
CompletionOutcome = Literal["posted", "failed", "partial"]
ErrorCategory = Literal[
    "account_disconnected", "media_rejected", "content_rejected", "rate_limited", "platform_unavailable", "unknown"
]
"""Why posting to an account failed, in a form to route on (`rules/failure_categories.py` derives it from
`error_message`)."""

EVENT_TYPE_BY_STATUS: dict[str, OutcomeEventType] = {
    "posted": "post.account.posted",
    "failed": "post.account.failed",
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
        description="The post's `external_id` (the key it was created with) when Genviral gives one, else null. ",
    )


class RelayEvent(WorkspaceEvent):
    """What every event document about a post has; the concrete documents are the subclasses (`EventDocument`)."""

    event_type: EventType
    post_id: str = Field(description="The Genviral post.")

    DETAIL_TYPES: ClassVar[dict[str, str]] = {}
    """EventBridge's detail-type of each `event_type` the model carries (and the registry schema's name)."""

    @property
    def detail_type(self) -> str:
        return self.DETAIL_TYPES[self.event_type]

    @property
    def account_ids(self) -> tuple[str, ...]:
        """The accounts the document names (whose `account` blocks the directory fills in)."""
        return ()

    def sns_attributes(self) -> dict[str, str]:
        return {**super().sns_attributes(), "post_id": self.post_id}

    def log_keys(self) -> dict[str, str]:
        """What a log line says of the event: ids only, never its text."""
        return {"post_id": self.post_id, "event_id": self.event_id, "event_type": self.event_type}

    @property
    def subject(self) -> str:
        """What the event is about, for an operator's line: `account <id>`, `post <outcome>`."""
        return f"post {self.post_id}"


class AccountEvent(RelayEvent):
    """What an event about one account of a post has (`AccountOutcomeEvent`, `AccountDelayedEvent`)."""

    account_id: str = Field(description="The Genviral account the post was posted to, or failed for.")
    account: AccountRef = Field(
        description="The account as `GET /accounts` lists it (cached by the relay, refreshed on an unknown id and "
        "hourly). Genviral lists only active accounts: for a revoked or removed one, or when the listing failed, "
        "only `id` is set and the other fields are null."
    )
    status: str = Field(description="The account's posting status.")
    previous_status: str | None = Field(description="Last status seen before; null when first seen.")
    published_url: str | None = Field(description="As Genviral gave it.")
    published_at: str | None = Field(description="As Genviral gave it.")
    error_message: str | None = Field(description="As Genviral gave it: why posting failed.")
    error_category: ErrorCategory | None = Field(
        default=None,
        description="On `failed` events, why posting failed in a form to route on, derived from `error_message` "
        "(`unknown` when no rule matches or there is no message); null on every other event.",
    )
    last_attempted_at: str | None = Field(
        description="As Genviral gave it; tells a failure after a retry apart from the first one."
    )
    sequence: int | None = Field(
        default=None,
        ge=1,
        description="1, 2, 3, ... per (post, account), in the order the relay saw them: order a post's account "
        "documents by it. The same event always carries the same number. Null only on documents stored by a release "
        "that did not number them.",
    )

    # shim: event-without-account (docs/compatibility.md)
    @model_validator(mode="before")
    @classmethod
    def _read_0_3_events(cls, stored: Any) -> Any:
        """Events stored by 0.3 (still in an outbox, or replayed) have no `account`: name it by its id."""
        if isinstance(stored, dict) and "account" not in stored and isinstance(stored.get("account_id"), str):
            return {**stored, "account": {"id": stored["account_id"]}}
        return stored

    @property
    def account_ids(self) -> tuple[str, ...]:
        return (self.account_id,)

    def sns_attributes(self) -> dict[str, str]:
        attributes = {**super().sns_attributes(), "status": self.status, "account_id": self.account_id}
        if self.account.platform is not None:
            attributes["platform"] = self.account.platform
        if self.error_category is not None:
            attributes["error_category"] = self.error_category
        return attributes

    def log_keys(self) -> dict[str, str]:
        return {**super().log_keys(), "account_id": self.account_id}

    @property
    def subject(self) -> str:
        return f"account {self.account_id}"


class AccountOutcomeEvent(AccountEvent):
    """One account's transition into `posted` or `failed`."""

    DETAIL_TYPES: ClassVar[dict[str, str]] = {
        "post.account.posted": "Post Account Posted",
        "post.account.failed": "Post Account Failed",
    }

    event_type: OutcomeEventType = Field(description="`post.account.<status>`.")
    status: FinalStatus = Field(description="The account's new posting status.")
    post: PostSummary


class AccountDelayedEvent(AccountEvent):
    """An account still neither `posted` nor `failed` `DelayedAfterMinutes` after its post's time."""

    event_type: Literal["post.account.delayed"]
    DETAIL_TYPES: ClassVar[dict[str, str]] = {"post.account.delayed": "Post Account Delayed"}
    status: str = Field(description="The account's current status (`pending`, `scheduled`, `retry`, ...).")
    delayed_since: str = Field(
        description="The moment the delay is counted from: the post's `scheduled_at` (its `created_at` when it has "
        "none), or, after a retry the relay saw, when it saw it (ISO-8601 UTC).",
        json_schema_extra={"format": "date-time"},
    )
    post: PostSummary


class AccountUrlResolvedEvent(AccountEvent):
    """An account that went `posted` without a `published_url` has one now: the relay checks such an account again,
    backing off, for up to 24 hours after it saw it posted."""

    event_type: Literal["post.account.url_resolved"]
    DETAIL_TYPES: ClassVar[dict[str, str]] = {"post.account.url_resolved": "Post Account Url Resolved"}
    status: Literal["posted"] = Field(description="The account's posting status (`posted`).")
    posted_event_id: str | None = Field(
        description="The `post.account.posted` event that reported the posting without a URL (null if an earlier "
        "release reported it)."
    )
    post: PostSummary


class CompletedAccount(BaseModel):
    """One account of a completed post, as its outcome event described it."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    account_id: str
    account: AccountRef
    status: FinalStatus
    published_url: str | None
    published_at: str | None
    error_message: str | None
    error_category: ErrorCategory | None = Field(description="As on `post.account.failed`; null when posted.")
    last_attempted_at: str | None


class PostCompletedEvent(RelayEvent):
    """Every account of a post is `posted` or `failed`. Once per completion: when a retry changes an outcome and
    the post completes again, a new completion under a new id."""

    event_type: Literal["post.completed"]
    DETAIL_TYPES: ClassVar[dict[str, str]] = {"post.completed": "Post Completed"}
    outcome: CompletionOutcome = Field(description="`posted`: all posted; `failed`: all failed; else `partial`.")
    posted_count: int = Field(ge=0)
    failed_count: int = Field(ge=0)
    accounts: tuple[CompletedAccount, ...] = Field(description="Every account of the post, in Genviral's order.")
    post: PostSummary

    @property
    def account_ids(self) -> tuple[str, ...]:
        return tuple(account.account_id for account in self.accounts)

    def sns_attributes(self) -> dict[str, str]:
        return {**super().sns_attributes(), "outcome": self.outcome}

    @property
    def subject(self) -> str:
        return f"post {self.outcome} ({self.posted_count} posted, {self.failed_count} failed)"


EventDocument = Annotated[
    AccountOutcomeEvent | AccountDelayedEvent | AccountUrlResolvedEvent | PostCompletedEvent,
    Field(discriminator="event_type"),
]
"""Any document the relay publishes, told apart by `event_type`."""
_DOCUMENTS: TypeAdapter[EventDocument] = TypeAdapter(EventDocument)


def parse_event(document: str | bytes | dict[str, Any]) -> RelayEvent:
    """An event document (JSON text or parsed) as its model; raises pydantic's ValidationError."""
    if isinstance(document, dict):
        return _DOCUMENTS.validate_python(document)
    return _DOCUMENTS.validate_json(document)


def parse_event_or_none(document: str | bytes | None) -> RelayEvent | None:
    """The document as its model; None when there is none, or it is not one this release reads."""
    try:
        return parse_event(document) if document is not None else None
    except ValidationError:
        return None


def published_document(event: PublishedEvent) -> bytes:
    """The document as every target receives it (SNS, EventBridge, a webhook's signed body): compact JSON, keys
    sorted, so the same event is the same bytes wherever it is rendered from."""
    return json.dumps(event.model_dump(mode="json"), separators=(",", ":"), sort_keys=True).encode()


def event_documents_schema(*, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The JSON Schema of any event document (serialization mode), discriminated on `event_type`."""
    return _DOCUMENTS.json_schema(mode="serialization", ref_template=ref_template)
