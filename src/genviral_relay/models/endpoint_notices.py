"""The notices the relay publishes about its own webhook endpoints, to SNS and EventBridge and into the feed (not a
webhook event type: no endpoint can subscribe to it, least of all the one it is about)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field

from genviral_relay.models.events import PublishedEvent

ENDPOINT_DISABLED: Literal["webhook.endpoint.disabled"] = "webhook.endpoint.disabled"
ENDPOINT_DISABLED_DETAIL_TYPE = "Webhook Endpoint Disabled"


class EndpointDisabledEvent(PublishedEvent):
    """A webhook endpoint was disabled: every delivery to it failed for `WebhookDisableAfterHours`. Nothing more is
    queued for it until `POST /webhooks/{id}/enable`."""

    event_type: Literal["webhook.endpoint.disabled"] = ENDPOINT_DISABLED
    webhook_id: str = Field(description="The endpoint (`wh_` and 32 hex digits).")
    host: str = Field(description="The host of the endpoint's URL, and nothing else of it: a URL may be a credential.")
    description: str | None = Field(description="The endpoint's description, as registered.")
    disabled_reason: str = Field(description="Why it was disabled.")
    failing_since: str = Field(
        description="The first failed delivery since its last success (ISO-8601 UTC).",
        json_schema_extra={"format": "date-time"},
    )
    last_failure_status: int | None = Field(description="The HTTP status of the last failed attempt; null: no answer.")
    last_failure_reason: str | None = Field(description="Why the last attempt failed.")

    @property
    def detail_type(self) -> str:
        return ENDPOINT_DISABLED_DETAIL_TYPE

    def sns_attributes(self) -> dict[str, str]:
        return {**super().sns_attributes(), "webhook_id": self.webhook_id}


def url_host(url: str) -> str:
    """The host of an endpoint's URL (its path and query may carry a token)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
