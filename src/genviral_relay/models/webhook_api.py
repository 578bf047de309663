"""The webhook routes' bodies: what `POST /webhooks` takes and what the routes answer (`models/api.py` holds the
watch routes')."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from genviral_relay.clock import format_ts, format_ts_or_none
from genviral_relay.models.feed_api import EventId
from genviral_relay.models.webhooks import (
    RATE_LIMIT_TEXT,
    WEBHOOK_EVENT_TYPES,
    WEBHOOK_FORMATS,
    EndpointFilter,
    RateLimit,
    WebhookEndpoint,
    WebhookFormat,
    given_filter,
)

MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 256


def _event_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("event_types must name at least one type; leave it out to receive every type")
    unknown = sorted({name for name in value if name not in WEBHOOK_EVENT_TYPES})
    if unknown:
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENT_TYPES)}")
    return list(dict.fromkeys(value))


def _url_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("url must be a string such as https://example.com/hooks/genviral")
    return value


Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_CHARS)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_DESCRIPTION_CHARS)]
FORMAT_TEXT = (
    f"How deliveries are written: {', '.join(WEBHOOK_FORMATS)}. `standard`: a Standard Webhooks body, signed; a chat "
    "format: the event written for people in that service's message shape, not signed (the URL is the secret)."
)
FORMAT_OMITTED = (
    " Omitted: a Slack (`hooks.slack.com/services/`) or Discord (`discord.com/api/webhooks`) URL gets its service's "
    "format, any other `standard`; the answer says which."
)
CHAT_RATE_TEXT = (
    " Omitted: the format's default (none for `standard`; within the service's published limit for a chat format, "
    "which refuses more: 400); null: not paced."
)


class CreateWebhookRequest(BaseModel):
    """The body of `POST /webhooks`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Url = Field(description="Where deliveries are POSTed: an https:// URL of a public address.")
    event_types: Annotated[list[str] | None, AfterValidator(_event_types)] = Field(
        default=None,
        description=f"Which event types to deliver (any of {', '.join(WEBHOOK_EVENT_TYPES)}); omitted: every type.",
    )
    description: Description | None = Field(default=None, description="For people: what the endpoint is.")

    filter: Annotated[EndpointFilter | None, AfterValidator(given_filter)] = Field(
        default=None, description="Which events of those types; omitted (or `{}`): all."
    )
    rate_limit: RateLimit | None = Field(default=None, description=RATE_LIMIT_TEXT + CHAT_RATE_TEXT)
    format: WebhookFormat | None = Field(default=None, description=FORMAT_TEXT + FORMAT_OMITTED)

    @field_validator("url", mode="before")
    @classmethod
    def _url_is_text(cls, value: object) -> object:
        return _url_text(value)


EDITS = ("url", "event_types", "filter", "description", "rate_limit", "format")
"""What `PATCH /webhooks/{id}` edits, in the order its messages name them."""
_NOT_NULLABLE = ("url", "format")


class EditWebhookRequest(BaseModel):
    """The body of `PATCH /webhooks/{id}`: the fields given are changed, null clears a nullable one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Url | None = Field(default=None, description="A new URL, validated as at registration.")
    event_types: Annotated[list[str] | None, AfterValidator(_event_types)] = Field(
        default=None, description="null: every type."
    )
    filter: Annotated[EndpointFilter | None, AfterValidator(given_filter)] = Field(
        default=None, description="null (or `{}`): no filter."
    )
    description: Description | None = Field(default=None, description="null: none.")
    rate_limit: RateLimit | None = Field(default=None, description=f"{RATE_LIMIT_TEXT} null: no pacing.")
    format: WebhookFormat | None = Field(
        default=None,
        description=FORMAT_TEXT + " Left out with a new `url`: the new URL's format when the endpoint had its old "
        "URL's (a format chosen otherwise stays); a new format brings its default `rate_limit` likewise.",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _url_is_text(cls, value: object) -> object:
        return value if value is None else _url_text(value)

    @model_validator(mode="after")
    def _some_change(self) -> EditWebhookRequest:
        if not self.model_fields_set:
            raise ValueError(f"the body names no field to change; give any of {', '.join(EDITS)}")
        cleared = [name for name in _NOT_NULLABLE if name in self.model_fields_set and getattr(self, name) is None]
        if cleared:
            raise ValueError(f"{', '.join(cleared)} cannot be null; leave it out to keep it")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, as the endpoint holds them."""
        changed = {name: getattr(self, name) for name in EDITS if name in self.model_fields_set}
        if changed.get("event_types") is not None:
            changed["event_types"] = tuple(changed["event_types"])
        if "description" in changed:
            changed["description"] = changed["description"] or None
        return changed


class EnableWebhookRequest(BaseModel):
    """The body of `POST /webhooks/{id}/enable`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resend_missed: bool = Field(
        default=False,
        description="Also resend what the endpoint missed: every event it takes committed since it began failing "
        "or the retry schedule's span before it was disabled (whichever is earlier), as `resend` does.",
    )


class DisableWebhookRequest(BaseModel):
    """The body of `POST /webhooks/{id}/disable`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Description | None = Field(default=None, description="Why, for people; shown as `disabled_reason`.")


class ResendRequest(BaseModel):
    """The body of `POST /webhooks/{id}/resend`: one event (`event_id`) or every event of a time range (`since`,
    `until`), exactly one of the two forms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: EventId | None = Field(default=None, description="The event to resend.")
    since: AwareDatetime | None = Field(default=None, description="ISO-8601 with a zone: resend from this moment.")
    until: AwareDatetime | None = Field(default=None, description="ISO-8601 with a zone; omitted: now.")

    @model_validator(mode="after")
    def _one_form(self) -> ResendRequest:
        if (self.event_id is None) == (self.since is None):
            raise ValueError('give either {"event_id"} or {"since", "until"?}, not both and not neither')
        if self.event_id is not None and self.until is not None:
            raise ValueError("until goes with since, not with event_id")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError(f"since ({format_ts(self.since)}) is later than until ({format_ts(self.until)})")
        return self


class ResendQueued(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    queued: int = Field(description="Deliveries queued, one per event (attempt 1, the whole retry schedule).")


class WebhookView(BaseModel):
    """A registered endpoint, without its secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    url: str
    event_types: list[str] | None = Field(description="null: every event type.")
    filter: EndpointFilter | None = Field(description="null: every event of those types.")
    description: str | None
    rate_limit: float | None = Field(description="Deliveries per second at most; null: not paced.")
    format: WebhookFormat
    enabled: bool = Field(description="false: nothing is delivered to it (`POST /webhooks/{id}/enable`).")
    disabled_at: str | None
    disabled_reason: str | None
    created_at: str

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookView:
        return cls(**_view_fields(endpoint))


class HealthView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    last_success_at: str | None
    last_failure_at: str | None
    last_failure_status: int | None = Field(description="The HTTP status of the last failure; null for no answer.")
    last_failure_reason: str | None
    attempts_pending: int = Field(description="Retries scheduled and not yet made.")
    failing_since: str | None = Field(description="The first failure since the last success; null when healthy.")


class WebhookDetail(WebhookView):
    """A registered endpoint and how its deliveries go."""

    delivery: HealthView

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookDetail:
        health = endpoint.health
        return cls(
            **_view_fields(endpoint),
            delivery=HealthView(
                last_success_at=format_ts_or_none(health.last_success_at),
                last_failure_at=format_ts_or_none(health.last_failure_at),
                last_failure_status=health.last_failure_status,
                last_failure_reason=health.last_failure_reason,
                attempts_pending=max(0, health.attempts_pending),
                failing_since=format_ts_or_none(health.failing_since),
            ),
        )


class WebhookCreated(WebhookView):
    """The answer of a registration or a rotation: the only two that show the secret."""

    secret: str = Field(
        description="`whsec_...`: verify each delivery's `webhook-signature` with it. Shown once. Unused while the "
        "format is a chat one (those deliveries are not signed); kept, so a switch to `standard` signs at once."
    )

    @classmethod
    def with_secret(cls, endpoint: WebhookEndpoint) -> WebhookCreated:
        return cls(**_view_fields(endpoint), secret=endpoint.secrets[0].value)


class WebhookEnabled(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: WebhookDetail
    queued: int = Field(description="Missed deliveries queued again (`resend_missed`); 0 otherwise.")


class WebhookList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: list[WebhookView]


class WebhookDeleted(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    message: str


class WebhookTestSent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    event_id: str = Field(description="The test event's id: the `webhook-id` header of its delivery.")
    message: str


def _view_fields(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types) if endpoint.event_types is not None else None,
        "filter": endpoint.filter,
        "description": endpoint.description,
        "rate_limit": endpoint.rate_limit,
        "format": endpoint.format,
        "enabled": endpoint.enabled,
        "disabled_at": format_ts_or_none(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
        "created_at": format_ts(endpoint.created_at),
    }
