"""The webhook routes' bodies: what `POST /webhooks` takes and what the routes answer (`models/api.py` holds the
watch routes')."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from genviral_relay.clock import format_ts, format_ts_or_none
from genviral_relay.models.webhooks import (
    WEBHOOK_EVENT_TYPES,
    WebhookEndpoint,
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


class CreateWebhookRequest(BaseModel):
    """The body of `POST /webhooks`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_CHARS)] = Field(
        description="Where deliveries are POSTed: an https:// URL of a public address."
    )
    event_types: Annotated[list[str] | None, AfterValidator(_event_types)] = Field(
        default=None,
        description=f"Which event types to deliver (any of {', '.join(WEBHOOK_EVENT_TYPES)}); omitted: every type.",
    )
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_DESCRIPTION_CHARS)] | None = (
        Field(default=None, description="For people: what the endpoint is.")
    )

    @field_validator("url", mode="before")
    @classmethod
    def _url_is_text(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError("url must be a string such as https://example.com/hooks/genviral")
        return value


class WebhookView(BaseModel):
    """A registered endpoint, without its secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    url: str
    event_types: list[str] | None = Field(description="null: every event type.")
    description: str | None
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

    secret: str = Field(description="`whsec_...`: verify each delivery's `webhook-signature` with it. Shown once.")

    @classmethod
    def with_secret(cls, endpoint: WebhookEndpoint) -> WebhookCreated:
        return cls(**_view_fields(endpoint), secret=endpoint.secrets[0].value)


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
        "description": endpoint.description,
        "created_at": format_ts(endpoint.created_at),
    }
