"""The boundaries of webhook delivery: the endpoint registry, the delivery queue and the HTTP sender."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from genviral_relay.checking.ports import PublishResult
from genviral_relay.models.domain import Target
from genviral_relay.models.event_log import AttemptEntry, AttemptOutcome, AttemptPage, DeliveryState
from genviral_relay.models.events import PublishedEvent, RelayEvent
from genviral_relay.models.relay_notices import AccountStatusEvent, RelayStateEvent
from genviral_relay.models.webhooks import SigningSecret, WebhookDelivery, WebhookEndpoint
from genviral_relay.rules.retry_after import RetryAfter
from genviral_relay.rules.webhook_urls import Destination


class WebhookStore(ABC):
    """The registered webhook endpoints, their signing secrets and their delivery health."""

    @abstractmethod
    def create(self, endpoint: WebhookEndpoint, *, limit: int) -> None:
        """Store a new endpoint, atomically with the checks that hold under concurrent registrations:
        TooManyWebhooksError when `limit` endpoints are stored, WebhookExistsError (naming it) when one has the same
        `subscription_key` (URL and event types)."""

    @abstractmethod
    def endpoint(self, webhook_id: str) -> WebhookEndpoint | None:
        """The endpoint with its secrets and health; None when there is none (never made, or deleted)."""

    @abstractmethod
    def endpoints(self) -> list[WebhookEndpoint]:
        """Every endpoint, without secrets (the fan-out and the listing need none), oldest first."""

    @abstractmethod
    def delete(self, webhook_id: str) -> bool:
        """Forget the endpoint; False when there was none."""

    @abstractmethod
    def plaintext_keyed(self) -> list[WebhookEndpoint]:
        """The endpoints that still hold a key 0.4 stored in the clear, with their keys, oldest first (shim:
        plaintext-webhook-secrets)."""

    @abstractmethod
    def replace_secrets(
        self, webhook_id: str, secrets: Sequence[SigningSecret], *, replacing: Sequence[SigningSecret] | None = None
    ) -> bool:
        """Store the endpoint's new keys (a rotation); False when there is no such endpoint, or, given `replacing`,
        when its keys are no longer those values (another write came first: it is kept)."""

    @abstractmethod
    def record_attempt(self, webhook_id: str, outcome: AttemptRecord) -> None:
        """Add one attempt's outcome to the endpoint's health; nothing when the endpoint is gone."""

    @abstractmethod
    def update(self, endpoint: WebhookEndpoint, *, previous: WebhookEndpoint) -> bool:
        """Store the endpoint's editable fields (url, event types, filter, description, rate limit, format) as
        `endpoint` has them, only while the stored ones are `previous`'s (False otherwise: gone, or another edit came
        first); WebhookExistsError (naming it) when another endpoint has the new `subscription_key`."""

    @abstractmethod
    def set_enabled(
        self,
        webhook_id: str,
        enabled: bool,
        *,
        at: datetime,
        reason: str | None = None,
        failing_since: datetime | None = None,
    ) -> bool:
        """Turn the endpoint off (`disabled_at` = `at`, `disabled_reason`) or on again (its failing clock restarts);
        True only for the call that changed it, so one disabling is announced once. `failing_since` (a disabling for
        failing too long): only while the endpoint's failing clock is still the one read, so a success or an enable
        since then wins."""


class DeliveryLog(ABC):
    """Each delivery's state per endpoint and each endpoint's attempt log, kept as long as the events."""

    @abstractmethod
    def record_attempt(self, attempt: AttemptEntry, state: DeliveryState) -> None:
        """Log one attempt and the delivery's state after it."""

    @abstractmethod
    def record_states(self, states: Sequence[DeliveryState]) -> None:
        """The states the fan-out decides without an attempt (`filtered`, `disabled`)."""

    @abstractmethod
    def deliveries(self, event_id: str) -> list[DeliveryState]:
        """The event's recorded deliveries, one per endpoint."""

    @abstractmethod
    def attempts(
        self, webhook_id: str, *, before: str | None, limit: int, outcome: AttemptOutcome | None = None
    ) -> AttemptPage:
        """Up to `limit` of the endpoint's attempts older than position `before` (None: the newest), newest first,
        of this outcome when given; how far the read went."""


class DeliveryPacer(ABC):
    """Spaces deliveries to an endpoint with a `rate_limit`, across every concurrent delivery function."""

    @abstractmethod
    def reserve(self, webhook_id: str, rate_limit: float, now: datetime) -> datetime:
        """The moment this delivery may be sent: `now` when the endpoint's next slot has come, else that slot
        (reserved: the next caller gets the one after)."""


class NoticePublisher(ABC):
    """Where the notices about the relay's own endpoints go (the stack's topic and bus: the event publishers)."""

    target: Target

    @abstractmethod
    def publish(self, events: Sequence[PublishedEvent]) -> PublishResult:
        """Publish every notice; never raises for per-notice failures, reports them instead."""


class SecretBox(ABC):
    """Seals signing keys for the table and opens them to sign (KMS in a deployment). The API seals (create, rotate),
    the delivery function opens: no other function can turn what the table holds into a key."""

    @abstractmethod
    def seal(self, webhook_id: str, secret: str) -> str:
        """`secret` (`whsec_...`) as the table keeps it, bound to this endpoint: it opens for no other."""

    @abstractmethod
    def open(self, webhook_id: str, sealed: str) -> str:
        """The key `seal` sealed for this endpoint (a 0.4 key stored in the clear is answered as it is)."""


@dataclass(frozen=True)
class AttemptRecord:
    """What one delivery attempt did to its endpoint's health."""

    at: datetime
    succeeded: bool
    status: int | None = None
    reason: str | None = None
    pending_change: int = 0
    """Retries scheduled by this attempt, less the one this attempt was (a retry that was made)."""
    made: bool = True
    """False for a retry dropped unsent (its endpoint off, or its filter now leaving the event out): it gives back
    its pending count (`pending_change`) and is no success or failure."""


class DeliveryQueue(ABC):
    """Where webhook deliveries wait for their attempts (SQS), and where they are parked when retries run out."""

    @abstractmethod
    def send(self, deliveries: Sequence[WebhookDelivery]) -> list[int]:
        """Queue each delivery to be attempted at its `due_at` (SQS hides it until then, or part of the way: see
        `webhooks/`); answer the positions in `deliveries` of those that could not be queued (not their event
        ids: an event has one delivery per endpoint)."""

    @abstractmethod
    def park(self, delivery: WebhookDelivery, reason: str) -> None:
        """Move a delivery whose retries ran out to the dead-letter queue; raises `DeadLetterError` if that failed."""


class StoredEvents(ABC):
    """The documents a delivery may sign: the relay's events, stored by the check with the outbox (kept
    EventRetentionDays), the notices, stored by the notice outbox under their id, and the test events, stored by the
    test route under their endpoint. A delivery message only names one of them."""

    @abstractmethod
    def relay_event(self, post_id: str, event_id: str) -> RelayEvent | None:
        """The stored event; None when there is none (never stored, or past its retention)."""

    @abstractmethod
    def notice(self, event_id: str) -> AccountStatusEvent | RelayStateEvent | None:
        """The stored notice (`account.*`, `relay.*`); None when there is none or it is no notice this release
        reads."""

    @abstractmethod
    def test_event(self, webhook_id: str, event_id: str) -> str | None:
        """The document of the endpoint's stored test event, as it is signed; None when there is none."""

    @abstractmethod
    def store_test_event(self, webhook_id: str, event_id: str, document: str, *, expires_at: datetime) -> None:
        """Keep a test event's document (until `expires_at`) for its deliveries to find."""


@dataclass(frozen=True)
class WebhookAnswer:
    """What an endpoint answered one attempt: a status, or no answer at all (`status` None) and why."""

    status: int | None
    reason: str
    retry_after: RetryAfter | None = None
    """The answer's `Retry-After`, as read (`rules/retry_after.py`); the retry rule says when it counts."""
    text: str = field(default="", repr=False)
    """The start of the answer's body: a chat service says why in it (`webhooks/chat_deliveries.py`). Someone else's
    text: never logged as it is."""
    final: bool = False
    """Refused for good (a chat service's permanent refusal): parked at once, not retried."""

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender(ABC):
    """POSTs one delivery (the HTTP client of a deployment; a recorder in the specs)."""

    @property
    @abstractmethod
    def timeout(self) -> float:
        """Seconds one `post` takes at most, all of it (the delivery function starts none it cannot finish)."""

    @abstractmethod
    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        """One attempt, connecting to `destination.address`; never raises for what the endpoint does."""
