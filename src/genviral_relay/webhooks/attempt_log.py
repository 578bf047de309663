"""An endpoint's attempt log as `GET /webhooks/{id}/attempts` and `genviral-relay webhooks attempts` read it: newest
first, a page at a time, behind a cursor only this endpoint's listing accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from genviral_relay.errors import WebhookNotFoundError
from genviral_relay.models.event_log import AttemptEntry, AttemptOutcome
from genviral_relay.rules.cursors import decode_cursor, encode_cursor
from genviral_relay.rules.event_feed import PAGE_LIMIT
from genviral_relay.webhooks.ports import DeliveryLog, WebhookStore

ATTEMPT_POSITION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z#[^#]{1,200}#\d{2}")
"""`AttemptEntry.position`: a cursor holding anything else is refused before it reaches the table."""


@dataclass(frozen=True)
class AttemptsPage:
    entries: list[AttemptEntry]
    next: str | None
    """The cursor of the page after this one; None when the log has nothing older."""


class AttemptLog:
    def __init__(self, *, store: WebhookStore, log: DeliveryLog) -> None:
        self._store = store
        self._log = log

    def page(
        self, webhook_id: str, *, after: str | None, limit: int = PAGE_LIMIT, outcome: AttemptOutcome | None = None
    ) -> AttemptsPage:
        """Up to `limit` attempts older than the cursor `after` (None: the newest). WebhookNotFoundError for an
        unknown endpoint; CursorError for a cursor another listing (or no listing) wrote."""
        scope = f"attempts:{webhook_id}"
        before = decode_cursor(scope, after, ATTEMPT_POSITION) if after is not None else None
        if self._store.endpoint(webhook_id) is None:
            raise WebhookNotFoundError(webhook_id)
        found = self._log.attempts(webhook_id, before=before, limit=limit, outcome=outcome)
        following = encode_cursor(scope, found.reached) if found.reached is not None else None
        return AttemptsPage(entries=found.entries, next=following)
