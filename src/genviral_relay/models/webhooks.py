"""Webhook endpoints, their deliveries, and the HTTP API bodies that manage them (Standard Webhooks)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from genviral_relay.models.chat import ChatFormat
from genviral_relay.models.events import ErrorCategory
from genviral_relay.models.webhook_documents import SUBSCRIBABLE_TYPES
from genviral_relay.models.workspaces import WorkspaceName

TEST_EVENT_TYPE = "webhook.test"
"""Sent by `POST /webhooks/{id}/test` only, to that endpoint, whatever its `event_types`."""
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (*SUBSCRIBABLE_TYPES, TEST_EVENT_TYPE)
"""What an endpoint may subscribe to: the events about posts, the notices about accounts and the relay (a new type
there is one here), and the test; not an endpoint's disabling."""
TEST_MESSAGE = "A test delivery from genviral-relay (POST /webhooks/{id}/test)."


def test_event_document(webhook_id: str, event_id: str, detected_at: str) -> str:
    """The `webhook.test` document, as stored and as signed: nothing in it but its ids and its moment, so a stored
    test item, whoever wrote it, can make the delivery function sign no other text (`WebhookAttempts`)."""
    document = {
        "schema_version": "1",
        "event_id": event_id,
        "event_type": TEST_EVENT_TYPE,
        "detected_at": detected_at,
        "webhook_id": webhook_id,
        "message": TEST_MESSAGE,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret

WEBHOOK_ID_HINT = "a webhook id looks like wh_ followed by 32 hex digits"


def webhook_not_found(webhook_id: str) -> str:
    """The API's and the CLI's answer for an id no endpoint has (its shape shown: a mistyped id is the usual cause)."""
    return f"no webhook endpoint {webhook_id}; {WEBHOOK_ID_HINT}"


_WEBHOOK_ID = re.compile(r"^wh_[0-9a-f]{32}$")


def _webhook_id(value: str) -> str:
    if not _WEBHOOK_ID.fullmatch(value):
        raise ValueError(WEBHOOK_ID_HINT)
    return value


WebhookId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_webhook_id)]


class SigningSecret(BaseModel):
    """One key deliveries are signed with; one that was rotated out keeps signing until `expires_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(repr=False, description="`whsec_` + base64 of the key bytes.")
    expires_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        """Still signing at `now`."""
        return self.expires_at is None or self.expires_at > now


def is_plaintext_secret(value: str) -> bool:
    """A key as 0.4 stored it, in the clear (`whsec_...`): every key 0.5 writes is sealed (webhooks/ports.py)."""
    # shim: plaintext-webhook-secrets (docs/compatibility.md)
    return value.startswith(SECRET_PREFIX)


_DEFAULT_PORTS = {"https": 443, "http": 80}


def same_endpoint_url(url: str) -> str:
    """`url` as the request it makes: the scheme and host lower-cased, a default or empty port dropped, no path
    written `/` (RFC 3986, 6.2.3). The path and query stay as stored (percent-encoded: `encoded_url`): the
    receiver's to read, they may tell endpoints apart by case."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url  # not a URL a registration accepts
    if not parts.hostname or "//" not in url:
        return url
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # lower-cased by urlsplit
    authority = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    rest = url[url.index("//") + 2 + len(parts.netloc) :]
    return f"{scheme}://{authority}{rest if rest.startswith('/') else '/' + rest}"


class DeliveryHealth(BaseModel):
    """How deliveries to one endpoint have gone lately."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure_status: int | None = Field(default=None, description="The HTTP status; null for no answer.")
    last_failure_reason: str | None = None
    attempts_pending: int = Field(default=0, description="Retries scheduled and not yet made.")
    failing_since: datetime | None = Field(
        default=None, description="The first failure since the last success; null while deliveries succeed."
    )


WebhookFormat = Literal["standard"] | ChatFormat
"""How a delivery is written: `standard` is a Standard Webhooks body, signed; a chat format (`models/chat.py`) is
the event written for people in that service's shape, unsigned."""
WEBHOOK_FORMATS: tuple[str, ...] = ("standard", *get_args(ChatFormat))
DEFAULT_FORMAT: WebhookFormat = "standard"
"""An endpoint's format when none is given, and a 0.4 endpoint's (the table holds none)."""
KNOWN_PLATFORMS: tuple[str, ...] = ("tiktok", "instagram", "youtube", "pinterest", "linkedin", "facebook", "x",
                                    "twitter", "bluesky")  # fmt: skip
"""The platforms Genviral names (`reference/genviral-api.md`: X's exact string is unconfirmed, so both)."""
ERROR_CATEGORIES: tuple[str, ...] = get_args(ErrorCategory)
MAX_FILTER_VALUES = 100
MIN_RATE_LIMIT = 1 / 60
"""One delivery a minute: slower, a resend's last slots would fall past the events' retention (their document gone)."""
MAX_RATE_LIMIT = 100.0
RateLimit = Annotated[float, Field(ge=MIN_RATE_LIMIT, le=MAX_RATE_LIMIT)]
"""Deliveries per second an endpoint is paced at, as a request gives it."""
RATE_LIMIT_TEXT = (
    f"At most this many deliveries per second (from one a minute, {MIN_RATE_LIMIT:.4f}, up to {MAX_RATE_LIMIT:g}); "
    "over it they wait, none dropped."
)
"""Deliveries per second an endpoint may ask to be paced at, at most (more is no pacing: leave it null)."""


def _known(field: str, values: tuple[str, ...] | None, known: tuple[str, ...]) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not values:
        raise ValueError(f"filter.{field} must name at least one value; leave it out to match any")
    unknown = sorted({value for value in values if value not in known})
    if unknown:
        raise ValueError(f"unknown filter.{field} value(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(dict.fromkeys(values))


class EndpointFilter(BaseModel):
    """Which events an endpoint takes beyond their types: an event goes to it when every given field matches (an
    event about several accounts, a completion, when any of them does); one that does not is recorded `filtered`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platforms: tuple[str, ...] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description=f"Any of {', '.join(KNOWN_PLATFORMS)}."
    )
    account_ids: tuple[Annotated[str, StringConstraints(min_length=1, max_length=128)], ...] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Genviral account ids."
    )
    error_categories: tuple[str, ...] | None = Field(
        default=None,
        max_length=MAX_FILTER_VALUES,
        description=f"Any of {', '.join(ERROR_CATEGORIES)}: only failures of these categories match.",
    )
    workspaces: tuple[WorkspaceName, ...] | None = Field(
        default=None,
        max_length=MAX_FILTER_VALUES,
        description="Workspaces as the relay's secret names them (`default` when it holds one key): only their "
        "documents match, `relay.*` notices included.",
    )

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _known("platforms", value, KNOWN_PLATFORMS)

    @field_validator("error_categories")
    @classmethod
    def _categories(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _known("error_categories", value, ERROR_CATEGORIES)

    @field_validator("account_ids", "workspaces")
    @classmethod
    def _some(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError(f"filter.{info.field_name} must name at least one; leave it out to match any")
        return tuple(dict.fromkeys(value)) if value is not None else None


def given_filter(value: EndpointFilter | None) -> EndpointFilter | None:
    """A filter that names no field matches every event: it is no filter (None), so it is stored as none, and an
    edit's as-read condition finds it absent."""
    return value if value is not None and value.model_dump(exclude_none=True) else None


class WebhookEndpoint(BaseModel):
    """A registered endpoint. `secrets` is the one field no answer, log line or message ever carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    url: str
    event_types: tuple[str, ...] | None = Field(default=None, description="None: every type (not the test).")
    description: str | None = None
    created_at: datetime
    secrets: tuple[SigningSecret, ...] = Field(default=(), repr=False, description="Newest first.")
    health: DeliveryHealth = Field(default_factory=DeliveryHealth)
    filter: EndpointFilter | None = None
    rate_limit: float | None = Field(
        default=None, ge=MIN_RATE_LIMIT, le=MAX_RATE_LIMIT, description="Deliveries per second."
    )
    format: WebhookFormat = DEFAULT_FORMAT
    enabled: bool = True
    disabled_at: datetime | None = None
    disabled_reason: str | None = None

    @property
    def subscription_key(self) -> str:
        """What no two endpoints share: the URL (`same_endpoint_url`) with the event types, in any order (None: every
        type). Hashed, as a URL may be a credential itself."""
        types = sorted(self.event_types) if self.event_types is not None else None
        return hashlib.sha256(json.dumps([same_endpoint_url(self.url), types]).encode()).hexdigest()

    @property
    def keyed_in_clear(self) -> bool:
        """A key of this endpoint is still in the clear, as 0.4 stored it (`plaintext-webhook-secrets`)."""
        return any(is_plaintext_secret(secret.value) for secret in self.secrets)

    def registration_order(self) -> tuple[datetime, str]:
        """Oldest first, the id breaking ties: how endpoints are listed, and which of two owns a shared URL."""
        return (self.created_at, self.id)

    def accepts(self, event_type: str) -> bool:
        if event_type == TEST_EVENT_TYPE:
            return False  # only the test route sends it, to one endpoint
        return self.event_types is None or event_type in self.event_types

    def signing_secrets(self, now: datetime) -> list[str]:
        """The keys a delivery at `now` is signed with: the current one, and each one replaced less than
        `ROTATION_OVERLAP` (24 h) ago."""
        return [secret.value for secret in self.secrets if secret.live(now)]


class WebhookDelivery(BaseModel):
    """One attempt still to make: an event for one endpoint, named, not carried. The body an attempt signs is the
    event document the relay stored (a message that could carry it could make the relay sign anything); it
    travels as SQS message attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_id: str
    event_id: str
    event_type: str
    attempt: int = Field(ge=1, description="1 for the first attempt.")
    due_at: datetime
    post_id: str | None = Field(
        default=None,
        description="The post whose partition holds the stored event; None for a notice (stored under its id), for "
        "a test event (stored under its endpoint), and for a message that names no post (then, of any other type, no "
        "stored event: it is rejected).",
    )
    pace_interval_ms: int | None = Field(
        default=None,
        ge=1,
        description="Due at a slot the endpoint's pacer reserved for it, at this interval (`rules/pacing.py`): sent "
        "then without reserving another, unless the endpoint's `rate_limit` changed meanwhile.",
    )
    # shim: delivery-body-04 (docs/compatibility.md)
    document: str | None = Field(
        default=None,
        description="The event document as a 0.4 delivery function reads it from the message's body, written so that "
        "one still running during the stack's update sends what 0.4 sent; never read (what is signed is the stored "
        "document).",
    )

    @property
    def is_test(self) -> bool:
        return self.event_type == TEST_EVENT_TYPE

    @property
    def paced(self) -> bool:
        """Holds a slot the pacer reserved."""
        return self.pace_interval_ms is not None

    @property
    def is_retry(self) -> bool:
        """A later attempt: the endpoint's health counts it among the pending retries."""
        return self.attempt > 1
