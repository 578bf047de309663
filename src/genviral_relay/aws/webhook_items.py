"""A webhook endpoint as the state table holds it (aws/webhook_store.py writes and reads it)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from genviral_relay.aws.webhook_counts import WEBHOOKS_PK
from genviral_relay.clock import format_ts, format_ts_or_none, parse_ts
from genviral_relay.models.webhooks import (
    DEFAULT_FORMAT,
    DeliveryHealth,
    EndpointFilter,
    SigningSecret,
    WebhookEndpoint,
    given_filter,
)

PUBLIC = (
    "sk",
    "url",
    "event_types",
    "description",
    "created_at",
    "filter",
    "rate_limit",
    "format",
    "enabled",
    "disabled_at",
    "disabled_reason",
)
HEALTH = (
    "last_success_at",
    "last_failure_at",
    "last_failure_status",
    "last_failure_reason",
    "attempts_pending",
    "failing_since",
)
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def endpoint_to_item(endpoint: WebhookEndpoint) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pk": WEBHOOKS_PK,
        "sk": endpoint.id,
        "created_at": format_ts(endpoint.created_at),
        "secrets": secrets_value(endpoint.secrets),
        "attempts_pending": 0,
        "subscription_key": endpoint.subscription_key,  # its subscription item, deleted with it
        **editable_values(endpoint),
        "enabled": endpoint.enabled,
        "disabled_at": format_ts_or_none(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
    }
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


EDITABLE = ("url", "event_types", "description", "filter", "rate_limit", "format")
"""What `PATCH /webhooks/{id}` changes; null (None) removes the attribute."""


def editable_values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "event_types": list(endpoint.event_types) if endpoint.event_types is not None else None,
        "description": endpoint.description,
        "filter": filtered.model_dump(exclude_none=True, mode="json")
        if (filtered := given_filter(endpoint.filter))
        else None,
        "rate_limit": Decimal(str(endpoint.rate_limit)) if endpoint.rate_limit is not None else None,  # no floats
        "format": endpoint.format,
    }


def secrets_value(secrets: Sequence[SigningSecret]) -> list[dict[str, str]]:
    return [
        {"value": secret.value, **({"expires_at": format_ts(secret.expires_at)} if secret.expires_at else {})}
        for secret in secrets
    ]


def endpoint_from_item(item: dict[str, Any]) -> WebhookEndpoint:
    values = {name: _deserializer.deserialize(value) for name, value in item.items()}
    pending = values.get("attempts_pending")
    status = values.get("last_failure_status")
    return WebhookEndpoint(
        id=values["sk"],
        url=values["url"],
        event_types=tuple(values["event_types"]) if values.get("event_types") is not None else None,
        description=values.get("description"),
        created_at=parse_ts(values["created_at"]),  # type: ignore[arg-type]  # always written
        secrets=tuple(
            SigningSecret(value=secret["value"], expires_at=parse_ts(secret.get("expires_at")))
            for secret in values.get("secrets", ())
        ),
        health=DeliveryHealth(
            last_success_at=parse_ts(values.get("last_success_at")),
            last_failure_at=parse_ts(values.get("last_failure_at")),
            last_failure_status=int(status) if status is not None else None,
            last_failure_reason=values.get("last_failure_reason"),
            attempts_pending=int(pending) if pending is not None else 0,
            failing_since=parse_ts(values.get("failing_since")),
        ),
        filter=EndpointFilter.model_validate(values["filter"]) if values.get("filter") else None,
        rate_limit=float(values["rate_limit"]) if values.get("rate_limit") is not None else None,
        format=values.get("format", DEFAULT_FORMAT),
        enabled=values.get("enabled", True),  # 0.4 wrote none: every endpoint was on
        disabled_at=parse_ts(values.get("disabled_at")),
        disabled_reason=values.get("disabled_reason"),
    )


def serialized(value: Any) -> dict[str, Any]:
    """One attribute value as DynamoDB takes it."""
    return dict(_serializer.serialize(value))
