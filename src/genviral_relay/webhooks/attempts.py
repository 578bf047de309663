"""Webhooks: registering endpoints, fanning each event out to them, and one delivery attempt at a time.

The path of an event (docs/design.md, "Webhooks"):

1. The outbox's `webhooks` target puts the event document on the fan-out queue; it is then acknowledged like
   the topic and the bus (nothing lost: until the queue took it, the outbox keeps it).
2. `WebhookFanout` (the dispatcher function) turns each one into one delivery per endpoint that takes its
   type, on the delivery queue.
3. `WebhookAttempts` (the delivery function) makes each attempt: a 2xx within the timeout is a success;
   anything else schedules the next attempt on the Standard Webhooks schedule (`RETRY_DELAYS`, after the
   previous attempt) as a new message, and after the last one parks the delivery in WebhookDLQ. Each delivery
   is a message of its own and each attempt runs on a thread of its own, so one endpoint's failures or
   slowness never hold up another's deliveries.

SQS hides a message for at most 15 minutes (DelaySeconds): a longer wait is made of hops. A message that
arrives before its `due_at` is queued again for the rest of the wait (at most 15 minutes more), which is also
when a failing endpoint's age is measured again, so its alarm fires within 15 minutes of the hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from genviral_relay.clock import Clock, format_ts
from genviral_relay.errors import DeadLetterError
from genviral_relay.models.webhooks import (
    WebhookDelivery,
    WebhookEndpoint,
)
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.rules.webhook_retries import DUE_TOLERANCE, MAX_ATTEMPTS, RETRY_DELAYS
from genviral_relay.rules.webhook_signing import signed_headers
from genviral_relay.rules.webhook_urls import HostResolver, UrlRefusedError, destination
from genviral_relay.webhooks.ports import (
    AttemptRecord,
    DeliveryQueue,
    SecretBox,
    WebhookAnswer,
    WebhookSender,
    WebhookStore,
)

MAX_REASON_CHARS = 200


def _log_keys(delivery: WebhookDelivery) -> dict[str, object]:
    return {
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "attempt": delivery.attempt,
    }


# ---------------------------------------------------------------------- registration

Outcome = Literal["delivered", "retrying", "parked", "waiting", "dropped", "failed"]


@dataclass(frozen=True)
class DeliveryItem:
    """One delivery from the delivery queue."""

    message_id: str
    delivery: WebhookDelivery


class WebhookAttempts:
    """Make the attempts of a batch of deliveries, each on its own thread."""

    def __init__(
        self,
        *,
        store: WebhookStore,
        secrets: SecretBox,
        queue: DeliveryQueue,
        sender: WebhookSender,
        resolver: HostResolver,
        clock: Clock,
        allow_private: bool,
        threads: int = 10,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._queue = queue
        self._sender = sender
        self._resolver = resolver
        self._clock = clock
        self._allow_private = allow_private
        self._threads = max(1, threads)

    def run(self, items: Sequence[DeliveryItem]) -> list[str]:
        """Attempt each; answer the message ids to receive again (an outcome that could not be recorded)."""
        if len(items) <= 1 or self._threads == 1:
            outcomes = [self._attempt_alone(item.delivery) for item in items]
        else:
            with ThreadPoolExecutor(max_workers=min(self._threads, len(items)), thread_name_prefix="webhook") as pool:
                outcomes = list(pool.map(lambda item: self._attempt_alone(item.delivery), items))
        return [item.message_id for item, outcome in zip(items, outcomes, strict=True) if outcome == "failed"]

    def _attempt_alone(self, delivery: WebhookDelivery) -> Outcome:
        """One attempt whose unexpected failure (the table or the queue down) fails its own message only: the
        batch's other deliveries, made already, are not made again."""
        try:
            return self.attempt(delivery)
        except Exception:
            logger.exception("Webhook attempt failed unexpectedly; it will be made again", extra=_log_keys(delivery))
            return "failed"

    def attempt(self, delivery: WebhookDelivery) -> Outcome:
        now = self._clock()
        endpoint = self._store.endpoint(delivery.webhook_id)
        if endpoint is None:
            logger.info("Webhook endpoint deleted; its delivery is dropped", extra=_log_keys(delivery))
            return "dropped"
        if delivery.due_at > now + DUE_TOLERANCE:
            return self._wait(endpoint, delivery, now)
        answer = self._send(endpoint, delivery, now)
        if answer.accepted:
            self._record(endpoint, delivery, AttemptRecord(at=now, succeeded=True, status=answer.status,
                         pending_change=-delivery.is_retry))  # fmt: skip
            emit(Metric.WEBHOOK_DELIVERIES)
            emit(Metric.WEBHOOK_FAILING_AGE, 0)
            logger.info("Webhook delivered", extra={**_log_keys(delivery), "status": answer.status})
            return "delivered"
        return self._failed(endpoint, delivery, answer, now)

    def _send(self, endpoint: WebhookEndpoint, delivery: WebhookDelivery, now: datetime) -> WebhookAnswer:
        try:
            where = destination(endpoint.url, self._resolver, allow_private=self._allow_private)
        except UrlRefusedError as refusal:
            return WebhookAnswer(status=None, reason=f"not sent: {refusal}")
        keys = [self._secrets.open(endpoint.id, sealed) for sealed in endpoint.signing_secrets(now)]
        if not keys:
            return WebhookAnswer(status=None, reason="not sent: the endpoint has no signing key")
        body = delivery.body.encode()
        headers = signed_headers(keys, delivery.event_id, int(now.timestamp()), body)
        return self._sender.post(where, headers, body)

    def _failed(
        self, endpoint: WebhookEndpoint, delivery: WebhookDelivery, answer: WebhookAnswer, now: datetime
    ) -> Outcome:
        emit(Metric.WEBHOOK_DELIVERY_FAILURES)
        reason = (f"HTTP {answer.status}: " if answer.status is not None else "") + answer.reason
        reason = reason[:MAX_REASON_CHARS]
        keys = {**_log_keys(delivery), "status": answer.status, "reason": reason}
        retried = -delivery.is_retry
        if delivery.attempt < MAX_ATTEMPTS:
            wait = RETRY_DELAYS[delivery.attempt - 1]
            following = delivery.model_copy(update={"attempt": delivery.attempt + 1, "due_at": now + wait})
            if self._queue.send([following]):
                logger.error("Could not queue a webhook retry; the attempt will be made again", extra=keys)
                return "failed"
            self._record(endpoint, delivery, AttemptRecord(now, False, answer.status, reason, 1 + retried))
            logger.warning("Webhook attempt failed; retrying later", extra={**keys, "retry_at": format_ts(now + wait)})
            outcome: Outcome = "retrying"
        else:
            try:
                self._queue.park(delivery, reason)
            except DeadLetterError:
                logger.exception("Could not park a webhook delivery; the attempt will be made again", extra=keys)
                return "failed"
            self._record(endpoint, delivery, AttemptRecord(now, False, answer.status, reason, retried))
            emit(Metric.WEBHOOK_DELIVERIES_DEAD_LETTERED)
            logger.error("Webhook retries ran out; parked in the webhook dead-letter queue", extra=keys)
            outcome = "parked"
        failing_since = endpoint.health.failing_since or now
        emit(Metric.WEBHOOK_FAILING_AGE, (now - failing_since).total_seconds())
        return outcome

    def _wait(self, endpoint: WebhookEndpoint, delivery: WebhookDelivery, now: datetime) -> Outcome:
        """Not due yet: back on the queue for the rest of its wait (SQS hides a message 15 minutes at most)."""
        if self._queue.send([delivery]):
            return "failed"
        if endpoint.health.failing_since is not None:
            emit(Metric.WEBHOOK_FAILING_AGE, (now - endpoint.health.failing_since).total_seconds())
        return "waiting"

    def _record(self, endpoint: WebhookEndpoint, delivery: WebhookDelivery, record: AttemptRecord) -> None:
        try:
            self._store.record_attempt(endpoint.id, record)
        except Exception:  # health is for people; the delivery's own outcome stands
            logger.exception("Could not record a webhook attempt's outcome", extra=_log_keys(delivery))
