"""One webhook delivery attempt at a time (the delivery function), and its place on an event's path (docs/design.md):

1. The outbox's `webhooks` target puts the event document on the fan-out queue; it is then acknowledged like the topic
   and the bus (nothing lost: until the queue took it, the outbox keeps it).
2. `WebhookFanout` (the dispatcher function) turns each one into one delivery per endpoint that takes its type, on the
   delivery queue.
3. `WebhookAttempts` (the delivery function) makes each attempt it has the time to finish (the sender's timeout and
   RECORD_MARGIN; the others go back to the queue unchanged): a 2xx within the timeout is a success; anything else
   schedules the next attempt on the Standard Webhooks schedule (`RETRY_DELAYS`, after the previous attempt; later
   when a 429 or 503 asks with `Retry-After`, up to an hour: `next_attempt_due`) as a new message, and after the
   last one parks the delivery in WebhookDLQ. Each delivery is a message and each attempt a thread of its own: one
   endpoint never holds up another's deliveries. Every attempt is logged with its state (`delivery_records.py`); a
   failure that finds the endpoint failing for `WebhookDisableAfterHours` disables it (`endpoint_health.py`) and is
   not retried. A delivery for a disabled endpoint, or one its filter (perhaps edited since the fan-out) leaves out,
   is dropped unsent, its state recorded. An endpoint with a `rate_limit` is paced: a delivery whose reserved slot
   is later goes back on the queue due then, holding it (`paced`) while the rate stays, neither an attempt nor a
   failure. A chat endpoint gets the event written for people, unsigned, and a refusal for good from its service is
   parked at once (`chat_deliveries.py`).

A delivery message names its event and the attempt signs the document the relay stored (`StoredEvents`), never a body
from the message: anyone allowed to send to the queue could otherwise have any body signed. A message that names no
stored event, or one of another type, is rejected: dropped with one line and `WebhookMessagesRejected`, never signed
nor retried.

SQS hides a message for at most 15 minutes (DelaySeconds): a longer wait is made of hops. A message that arrives
before its `due_at` is queued again for the rest of the wait (at most 15 minutes more), which is also when a failing
endpoint's age is measured again, so its alarm fires within 15 minutes of the hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from genviral_relay.clock import Clock, TimeLeft, format_ts
from genviral_relay.errors import DeadLetterError, echoed
from genviral_relay.models.chat import is_chat_format
from genviral_relay.models.webhooks import WebhookDelivery, WebhookEndpoint
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.rules.pacing import holds_slot, pace_interval_ms
from genviral_relay.rules.webhook_filters import passes
from genviral_relay.rules.webhook_retries import DUE_TOLERANCE, MAX_ATTEMPTS, next_attempt_due
from genviral_relay.rules.webhook_signing import signed_headers
from genviral_relay.rules.webhook_urls import HostResolver, UrlRefusedError, destination
from genviral_relay.webhooks.chat_deliveries import CHAT_HEADERS, chat_answer, chat_request
from genviral_relay.webhooks.delivery_records import DeliveryRecords, Made
from genviral_relay.webhooks.delivery_records import log_keys as _log_keys
from genviral_relay.webhooks.endpoint_health import EndpointDisabler
from genviral_relay.webhooks.ports import (
    AttemptRecord,
    DeliveryLog,
    DeliveryPacer,
    DeliveryQueue,
    SecretBox,
    StoredEvents,
    WebhookAnswer,
    WebhookSender,
    WebhookStore,
)
from genviral_relay.webhooks.signed_documents import SignedDocument, SignedDocuments

MAX_REASON_CHARS = 200
RECORD_MARGIN = timedelta(seconds=5)
"""Beyond the sender's timeout, what an attempt needs to record its outcome and queue its retry (the store and
the queue, with their own retries): an attempt starts only when the function has both left."""


Outcome = Literal[
    "delivered", "retrying", "parked", "disabled", "waiting", "paced", "deferred", "dropped", "rejected", "failed"
]


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
        events: StoredEvents,
        secrets: SecretBox,
        queue: DeliveryQueue,
        sender: WebhookSender,
        resolver: HostResolver,
        clock: Clock,
        allow_private: bool,
        log: DeliveryLog,
        pacer: DeliveryPacer,
        disabler: EndpointDisabler,
        threads: int = 10,
    ) -> None:
        self._store = store
        self._documents = SignedDocuments(events)
        self._records = DeliveryRecords(store, log)
        self._pacer = pacer
        self._disabler = disabler
        self._secrets = secrets
        self._queue = queue
        self._sender = sender
        self._resolver = resolver
        self._clock = clock
        self._allow_private = allow_private
        self._threads = max(1, threads)

    def run(self, items: Sequence[DeliveryItem], *, time_left: TimeLeft | None = None) -> list[str]:
        """Attempt each; answer the message ids to receive again (an outcome that could not be recorded).
        `time_left`: what remains of the invocation; an attempt that could not finish in it is not started."""

        def one(item: DeliveryItem) -> Outcome:
            return self._attempt_alone(item.delivery, time_left)

        if len(items) <= 1 or self._threads == 1:
            outcomes = [one(item) for item in items]
        else:
            with ThreadPoolExecutor(max_workers=min(self._threads, len(items)), thread_name_prefix="webhook") as pool:
                outcomes = list(pool.map(one, items))
        return [item.message_id for item, outcome in zip(items, outcomes, strict=True) if outcome == "failed"]

    def _attempt_alone(self, delivery: WebhookDelivery, time_left: TimeLeft | None) -> Outcome:
        """One attempt whose unexpected failure (the table or the queue down) fails its own message only: the
        batch's other deliveries, made already, are not made again."""
        try:
            left = self._short_of_time(time_left)
            if left is not None:
                return self._defer(delivery, left)
            return self.attempt(delivery, time_left)
        except Exception:
            logger.exception("Webhook attempt failed unexpectedly; it will be made again", extra=_log_keys(delivery))
            return "failed"

    def _defer(self, delivery: WebhookDelivery, left: timedelta) -> Outcome:
        """Back on the queue as it was, due at once, for an invocation with the time: a new message, so SQS
        neither waits for the visibility timeout nor counts a receive towards the dead-letter queue, and the
        attempt it was not is not counted either."""
        keys = {**_log_keys(delivery), "seconds_left": round(left.total_seconds(), 3)}
        if self._queue.send([delivery]):
            logger.warning("No time left for a webhook attempt; its message comes back from SQS", extra=keys)
            return "failed"
        logger.info("No time left for a webhook attempt; queued again unchanged", extra=keys)
        return "deferred"

    def _short_of_time(self, time_left: TimeLeft | None) -> timedelta | None:
        """What is left of the invocation when it is less than an attempt needs (the sender's whole bound and the
        time to record it); None when there is enough, or no limit."""
        left = time_left() if time_left is not None else None
        return left if left is not None and left < timedelta(seconds=self._sender.timeout) + RECORD_MARGIN else None

    def attempt(self, delivery: WebhookDelivery, time_left: TimeLeft | None = None) -> Outcome:
        now = self._clock()
        endpoint = self._store.endpoint(delivery.webhook_id)
        if endpoint is None:
            logger.info("Webhook endpoint deleted; its delivery is dropped", extra=_log_keys(delivery))
            return "dropped"
        # Before waiting too: a forged message must not hop on the queue until its made-up due_at.
        document = self._documents.of(delivery, endpoint)
        if document is None:
            return "rejected"
        # What every message this attempt queues carries as its body, for a 0.4 function (`delivery-body-04`).
        delivery = delivery.model_copy(update={"document": document.body.decode()})
        filtered = document.event is not None and not passes(endpoint.filter, document.event)
        dropped = self._dropped(endpoint, delivery, filtered, now)
        if dropped is not None:
            return dropped
        if delivery.paced and not holds_slot(delivery.pace_interval_ms, endpoint.rate_limit):  # its rate changed
            delivery = delivery.model_copy(update={"pace_interval_ms": None, "due_at": now})
        if delivery.due_at > now + DUE_TOLERANCE:
            return self._wait(endpoint, delivery, now)
        if endpoint.rate_limit is not None and not delivery.paced:
            slot = self._pacer.reserve(endpoint.id, endpoint.rate_limit, now)
            if slot > now + DUE_TOLERANCE:
                return self._pace(delivery, slot, endpoint.rate_limit)
        started = self._clock()
        try:
            answer = self._send(endpoint, delivery, document, now, time_left)
        except _OutOfTime as short:  # the reads, the lookup and the keys took what the send needed
            return self._defer(delivery, short.left)
        except Exception as error:  # a failed attempt like any other, recorded and retried; its type says why
            answer = WebhookAnswer(status=None, reason=f"not delivered: the attempt raised {type(error).__name__}")
        took = round((self._clock() - started).total_seconds() * 1000)
        if answer.accepted:
            record = AttemptRecord(at=now, succeeded=True, status=answer.status, pending_change=-delivery.is_retry)
            self._records.attempted(delivery, Made(record, took, "delivered"))
            emit(Metric.WEBHOOK_DELIVERIES)
            emit(Metric.WEBHOOK_FAILING_AGE, 0)
            logger.info("Webhook delivered", extra={**_log_keys(delivery), "status": answer.status})
            return "delivered"
        return self._failed(endpoint, delivery, answer, now, took)

    def _dropped(
        self, endpoint: WebhookEndpoint, delivery: WebhookDelivery, filtered: bool, now: datetime
    ) -> Outcome | None:
        """Not to be sent, its state recorded: the endpoint is off, or its filter (perhaps edited since the fan-out)
        leaves the event out. Dropped, not rejected: the relay made it."""
        if not endpoint.enabled or filtered:
            self._records.skipped(delivery, "filtered" if endpoint.enabled else "disabled", now)
            why = "its filter leaves the event out" if endpoint.enabled else "it is disabled"
            logger.info("Webhook delivery dropped unsent", extra={**_log_keys(delivery), "why": why})
            return "dropped"
        return None

    def _pace(self, delivery: WebhookDelivery, slot: datetime, rate_limit: float) -> Outcome:
        """Over the endpoint's rate: queued again due at its reserved slot, held at this rate; not an attempt."""
        held = delivery.model_copy(update={"due_at": slot, "pace_interval_ms": pace_interval_ms(rate_limit)})
        if self._queue.send([held]):
            return "failed"
        logger.info("Webhook delivery paced", extra={**_log_keys(delivery), "slot": format_ts(slot)})
        return "paced"

    def _send(
        self,
        endpoint: WebhookEndpoint,
        delivery: WebhookDelivery,
        document: SignedDocument,
        now: datetime,
        time_left: TimeLeft | None,
    ) -> WebhookAnswer:
        try:
            where = destination(endpoint.url, self._resolver, allow_private=self._allow_private)
        except UrlRefusedError as refusal:
            return WebhookAnswer(status=None, reason=f"not sent: {refusal}")
        chat = endpoint.format if is_chat_format(endpoint.format) else None
        headers: Mapping[str, str]
        if chat is not None:  # written for people, unsigned: `chat_deliveries.py`
            headers, body = CHAT_HEADERS, chat_request(chat, document)
        else:
            keys = [self._secrets.open(endpoint.id, sealed) for sealed in endpoint.signing_secrets(now)]
            if not keys:
                return WebhookAnswer(status=None, reason="not sent: the endpoint has no signing key")
            body = document.body
            headers = signed_headers(keys, delivery.event_id, int(now.timestamp()), body)
        left = self._short_of_time(time_left)  # checked again: the send alone is bounded by the sender
        if left is not None:
            raise _OutOfTime(left)
        answer = self._sender.post(where, headers, body)
        return chat_answer(chat, answer) if chat is not None else answer

    def _failed(
        self, endpoint: WebhookEndpoint, delivery: WebhookDelivery, answer: WebhookAnswer, now: datetime, took: int
    ) -> Outcome:
        emit(Metric.WEBHOOK_DELIVERY_FAILURES)
        reason = (f"HTTP {answer.status}: " if answer.status is not None else "") + answer.reason
        reason = echoed(reason, MAX_REASON_CHARS)
        keys = {**_log_keys(delivery), "status": answer.status, "reason": reason}
        retried = -delivery.is_retry
        emit(Metric.WEBHOOK_FAILING_AGE, (now - (endpoint.health.failing_since or now)).total_seconds())
        if self._disabler.disables(endpoint, now, answer, reason):
            record = AttemptRecord(now, False, answer.status, reason, retried)
            self._records.attempted(delivery, Made(record, took, "disabled"))
            logger.warning("Webhook attempt failed; its endpoint is disabled, no retry", extra=keys)
            return "disabled"
        if delivery.attempt < MAX_ATTEMPTS and not answer.final:
            due_at = next_attempt_due(delivery.attempt, now, answer.status, answer.retry_after)
            following = delivery.model_copy(update={"attempt": delivery.attempt + 1, "due_at": due_at,
                                                    "pace_interval_ms": None})  # fmt: skip
            if self._queue.send([following]):
                logger.error("Could not queue a webhook retry; the attempt will be made again", extra=keys)
                return "failed"
            record = AttemptRecord(now, False, answer.status, reason, 1 + retried)
            self._records.attempted(delivery, Made(record, took, "retrying", due_at))
            logger.warning("Webhook attempt failed; retrying later", extra={**keys, "retry_at": format_ts(due_at)})
            return "retrying"
        try:
            self._queue.park(delivery, reason)
        except DeadLetterError:
            logger.exception("Could not park a webhook delivery; the attempt will be made again", extra=keys)
            return "failed"
        self._records.attempted(
            delivery, Made(AttemptRecord(now, False, answer.status, reason, retried), took, "parked")
        )
        emit(Metric.WEBHOOK_DELIVERIES_DEAD_LETTERED)
        ended = "refused for good" if answer.final else "retries ran out"
        logger.error(f"Webhook {ended}; parked in the webhook dead-letter queue", extra=keys)
        return "parked"

    def _wait(self, endpoint: WebhookEndpoint, delivery: WebhookDelivery, now: datetime) -> Outcome:
        """Not due yet: back on the queue for the rest of its wait (SQS hides a message 15 minutes at most)."""
        if self._queue.send([delivery]):
            return "failed"
        if endpoint.health.failing_since is not None:
            emit(Metric.WEBHOOK_FAILING_AGE, (now - endpoint.health.failing_since).total_seconds())
        return "waiting"


class _OutOfTime(Exception):
    """What was left of the invocation once an attempt was ready to send, too little to send it."""

    def __init__(self, left: timedelta) -> None:
        super().__init__(f"{left.total_seconds():.3f} s left")
        self.left = left
