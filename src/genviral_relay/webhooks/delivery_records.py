"""What one delivery attempt leaves behind: the endpoint's health (the registry shows it), the endpoint's attempt
log and the delivery's state (`GET /webhooks/{id}/attempts`, `GET /events/{id}`). Each is for people: a write that
fails is logged and the delivery's own outcome stands (never failed, never made twice for it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genviral_relay.models.event_log import AttemptEntry, DeliveryState, DeliveryStateName
from genviral_relay.models.webhooks import WebhookDelivery
from genviral_relay.observability import logger
from genviral_relay.webhooks.ports import AttemptRecord, DeliveryLog, WebhookStore


def log_keys(delivery: WebhookDelivery) -> dict[str, object]:
    """What a log line says of a delivery: ids only."""
    return {
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "attempt": delivery.attempt,
        "post_id": delivery.post_id,
    }


@dataclass(frozen=True)
class Made:
    """One attempt made: when, how long the send took, and what came of it for the delivery."""

    record: AttemptRecord
    duration_ms: int
    state: DeliveryStateName
    next_attempt_at: datetime | None = None


class DeliveryRecords:
    def __init__(self, store: WebhookStore, log: DeliveryLog) -> None:
        self._store = store
        self._log = log

    def attempted(self, delivery: WebhookDelivery, made: Made) -> None:
        """An attempt, delivered or failed: the endpoint's health, the attempt log and the delivery's state."""
        record = made.record
        self._guarded("the endpoint's health", delivery, self._store.record_attempt, delivery.webhook_id, record)
        entry = AttemptEntry(
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            attempt=delivery.attempt,
            at=record.at,
            status=record.status,
            duration_ms=max(0, made.duration_ms),
            outcome="delivered" if record.succeeded else "failed",
            reason=None if record.succeeded else record.reason,
        )
        state = DeliveryState(
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            state=made.state,
            attempts=delivery.attempt,
            last_attempt_at=record.at,
            next_attempt_at=made.next_attempt_at,
            last_status=record.status,
        )
        self._guarded("the attempt log", delivery, self._log.record_attempt, entry, state)

    def skipped(self, delivery: WebhookDelivery, state: DeliveryStateName, at: datetime) -> None:
        """A delivery dropped unsent (`filtered`, `disabled`): its state, the attempts it had made kept; a retry is
        no longer pending."""
        if delivery.is_retry:
            record = AttemptRecord(at=at, succeeded=False, pending_change=-1, made=False)
            self._guarded("the endpoint's health", delivery, self._store.record_attempt, delivery.webhook_id, record)
        made = delivery.attempt - 1
        dropped = DeliveryState(webhook_id=delivery.webhook_id, event_id=delivery.event_id, state=state, attempts=made)
        self._guarded("the delivery's state", delivery, self._log.record_states, [dropped])

    @staticmethod
    def _guarded(what: str, delivery: WebhookDelivery, write: Any, *args: Any) -> None:
        try:
            write(*args)
        except Exception:  # for people: the delivery's outcome stands
            logger.exception(f"Could not record {what} of a webhook delivery", extra=log_keys(delivery))
