"""What a webhook endpoint can be sent: the events about posts and the notices about an account or the relay itself
(`relay_notices.py`), read as one union. `webhook.endpoint.disabled` is none of them: no endpoint subscribes to it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from genviral_relay.models.event_kinds import DETAIL_TYPE_BY_EVENT_TYPE
from genviral_relay.models.events import (
    AccountDelayedEvent,
    AccountOutcomeEvent,
    AccountUrlResolvedEvent,
    PostCompletedEvent,
    RelayEvent,
)
from genviral_relay.models.relay_notices import NOTICE_DETAIL_TYPES, AccountStatusEvent, RelayStateEvent

WebhookDocument = RelayEvent | AccountStatusEvent | RelayStateEvent
"""A document an endpoint may subscribe to."""
SUBSCRIBABLE_TYPES: tuple[str, ...] = (*DETAIL_TYPE_BY_EVENT_TYPE, *NOTICE_DETAIL_TYPES)
"""Every published type an endpoint may subscribe to, in the contract's order (the test event aside)."""
NOTICE_TYPES: frozenset[str] = frozenset(NOTICE_DETAIL_TYPES)
"""The subscribable types about no post: stored under their id alone (`StoredEvents.notice`)."""

_ANY = Annotated[
    AccountOutcomeEvent
    | AccountDelayedEvent
    | AccountUrlResolvedEvent
    | PostCompletedEvent
    | AccountStatusEvent
    | RelayStateEvent,
    Field(discriminator="event_type"),
]
_DOCUMENTS: TypeAdapter[WebhookDocument] = TypeAdapter(_ANY)


def parse_webhook_document(document: str | bytes | dict[str, Any]) -> WebhookDocument:
    """A subscribable document (JSON text or parsed) as its model; raises pydantic's ValidationError."""
    if isinstance(document, dict):
        return _DOCUMENTS.validate_python(document)
    return _DOCUMENTS.validate_json(document)


def parse_webhook_document_or_none(document: str | bytes | None) -> WebhookDocument | None:
    """The document as its model; None when there is none, or it is not one an endpoint may be sent (a disabling, a
    document this release does not read)."""
    try:
        return parse_webhook_document(document) if document is not None else None
    except ValidationError:
        return None
