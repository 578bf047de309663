"""The boundaries the use cases talk to. Adapters in `aws/` and `genviral/` implement them; the
in-memory doubles in `local/doubles.py` implement them for the specs and the benchmark.

The store is split by who uses it (the checks, operators, the relay's own state) so a use case
depends on the few methods it calls; one DynamoDB class implements all three."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from genviral_relay.clock import parse_ts
from genviral_relay.models.domain import AccountDirectory, DiscoverState, PendingDelivery, Target, WatchRecord
from genviral_relay.models.events import RelayEvent
from genviral_relay.models.messages import WorkRequest
from genviral_relay.models.upstream import Account, Post

if TYPE_CHECKING:  # only in annotations: the functions without webhooks do not import them
    from genviral_relay.logic.webhook_urls import Destination
    from genviral_relay.models.webhooks import SigningSecret, WebhookDelivery, WebhookEndpoint


class PostSource(ABC):
    """Where post states come from (Genviral)."""

    @abstractmethod
    def get_post(self, post_id: str) -> Post:
        """The post's current state; raises a `GenviralError` subclass on failure."""

    @abstractmethod
    def posts_in_status(self, status: str, *, limit: int) -> PostPage:
        """The newest posts (at most `limit`) whose overall status is `status`."""

    @abstractmethod
    def posts_created(self, since: datetime, until: datetime, *, limit: int) -> PostPage:
        """At most `limit` posts created in [since, until]; raises a `GenviralError` subclass on failure."""


class AccountSource(ABC):
    """Who the accounts are (Genviral's `GET /accounts`): a port of its own, since only the account
    lookup asks it and the post sources (discover, the retry sweep, the benchmark's) need not."""

    @abstractmethod
    def list_accounts(self) -> list[Account]:
        """The accounts Genviral lists (active ones only); raises a `GenviralError` subclass on failure."""


@dataclass(frozen=True)
class PostPage:
    """One answer of the post list. `size` counts every item, readable or not (a full page is cut off)."""

    posts: tuple[Post, ...]
    unreadable_ids: tuple[str, ...]
    """Items that do not match the documented shape but carry an id: their own check will tell more."""
    size: int


@dataclass(frozen=True)
class EventSelection:
    """Which stored events an operator asks for: every given criterion must hold.

    `since` is inclusive and `until` exclusive, both compared with the event's `detected_at`.
    """

    post_id: str | None = None
    event_ids: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, event: RelayEvent) -> bool:
        detected_at = parse_ts(event.detected_at)
        return (
            (self.post_id is None or event.post_id == self.post_id)
            and (not self.event_ids or event.event_id in self.event_ids)
            and (self.since is None or (detected_at is not None and detected_at >= self.since))
            and (self.until is None or (detected_at is not None and detected_at < self.until))
        )


@dataclass(frozen=True)
class DueWatch:
    """A watch the due index lists: its post, and the moment its next check was due."""

    post_id: str
    next_check_at: datetime


class WatchStore(ABC):
    """What the checks read and write: watches, their last-seen states, the outbox and its events."""

    @abstractmethod
    def get(self, post_id: str) -> WatchRecord | None: ...

    @abstractmethod
    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]:
        """The stored watches of these posts (absent ones left out), in as few reads as possible."""

    @abstractmethod
    def save(self, record: WatchRecord, *, expected_version: int, new_events: Sequence[RelayEvent]) -> None:
        """Atomically store `record` (its version must be `expected_version + 1`) and `new_events`.

        Raises `StateConflictError` when the stored version is not `expected_version`.
        """

    @abstractmethod
    def load_events(self, post_id: str, event_ids: Iterable[str]) -> list[RelayEvent]:
        """Stored events of a post, in detection order; ids with no stored event are left out."""

    @abstractmethod
    def acknowledge(
        self,
        post_id: str,
        delivered: Iterable[PendingDelivery],
        *,
        settle_version: int | None = None,
        settled_next_check_at: datetime | None = None,
    ) -> None:
        """Remove delivered entries from the outbox.

        With `settle_version`, and only if the watch is still at that version (no check committed
        since), also restore its schedule to `settled_next_check_at` (None: out of the due index).
        """

    @abstractmethod
    def delete(self, post_id: str, *, expected_version: int) -> None:
        """Forget a watch. Raises `StateConflictError` if it changed since it was read."""

    @abstractmethod
    def due_watches(self, now: datetime) -> Iterator[DueWatch]:
        """Watches whose next check is at or before `now`, soonest due first."""

    def due_post_ids(self, now: datetime) -> Iterator[str]:
        """Posts whose next check is at or before `now`."""
        return (due.post_id for due in self.due_watches(now))

    @abstractmethod
    def claim_check(self, post_id: str, *, queued_at: datetime, now: datetime) -> bool:
        """Record that a check of the post starts at `now` (the watch's `claimed_at`), unless a check
        already claimed it at or after `queued_at` or the watch is gone: then False, and this check,
        queued before that one started, is a duplicate. One conditional write; the version is left
        alone (a claim changes nothing a check decides on)."""

    @abstractmethod
    def awaiting_retry(self, now: datetime, *, limit: int | None = None) -> Iterator[str]:
        """Watches the retry sweep covers (finished with a failure, retry window still open)."""

    @abstractmethod
    def creation_moments(self, since: datetime, until: datetime, *, limit: int) -> list[datetime]:
        """When the posts the store holds a watch of (watching or ended) were created, for those created
        in [since, until] (milliseconds, both inclusive), oldest first, at most `limit` of them.

        What the relay knows of the workspace's `created_at` windows: every post of it in discover mode,
        the registered ones otherwise. A watch stored by an earlier release counts from its next save."""


class OperatorQueries(ABC):
    """Whole-table reads for operators (the CLI): never on a function's path."""

    @abstractmethod
    def find_events(self, selection: EventSelection) -> list[RelayEvent]:
        """Stored events that match, in detection order (without a post id, the whole table is read)."""

    @abstractmethod
    def watches(self) -> Iterator[WatchRecord]:
        """Every stored watch, in no particular order (reads the whole table)."""


class RelayState(ABC):
    """The relay's own state beside the watches: the pause after a refused key, discover mode's progress,
    the directory of accounts."""

    @abstractmethod
    def genviral_pause(self, now: datetime) -> str | None:
        """Why calls to Genviral are paused (a configuration error), or None when they are not."""

    @abstractmethod
    def pause_genviral(self, *, until: datetime, reason: str) -> None: ...

    @abstractmethod
    def discover_state(self) -> DiscoverState | None:
        """How far discover mode has listed the workspace; None before its first run."""

    @abstractmethod
    def save_discover_state(self, state: DiscoverState, *, expected_version: int) -> None:
        """Store `state` (version `expected_version + 1`); `StateConflictError` if another walk saved first."""

    @abstractmethod
    def account_directory(self) -> AccountDirectory | None:
        """The directory of accounts as last saved; None before the first save."""

    @abstractmethod
    def save_account_directory(self, directory: AccountDirectory) -> None:
        """Replace the directory (unconditionally: concurrent refreshes list the same accounts)."""


class TokenSource(ABC):
    """Where the Genviral token comes from (Secrets Manager in a deployment)."""

    @abstractmethod
    def token(self, *, refresh: bool = False) -> str:
        """The current token; `refresh` bypasses any cache (after a 401, the secret may have rotated)."""


class WorkQueue(ABC):
    """Where the poller leaves work for the workers (SQS in a deployment)."""

    @abstractmethod
    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        """Queue every request, tagged with `correlation_id`; answer how many were queued.

        Raises `EnqueueError` if some never were.
        """

    @abstractmethod
    def backlog(self) -> int | None:
        """About how many messages wait or are being worked on (SQS's approximate counts); None when
        the queue cannot say."""


@dataclass(frozen=True)
class PublishFailure:
    reason: str
    retryable: bool


@dataclass
class PublishResult:
    delivered: set[str] = field(default_factory=set)
    failed: dict[str, PublishFailure] = field(default_factory=dict)


class DeadLetters(ABC):
    """Where events a target refused for good are parked, for an operator to inspect and redrive."""

    @abstractmethod
    def park(self, event: RelayEvent, target: Target, reason: str) -> None:
        """Store the event durably; raise if that failed (the event then stays in the outbox)."""


class EventPublisher(ABC):
    """One delivery target for events."""

    target: Target

    @abstractmethod
    def publish(self, events: Sequence[RelayEvent]) -> PublishResult:
        """Publish every event; never raises for per-event failures, reports them instead."""


# ---------------------------------------------------------------------- webhooks
class HostResolver(ABC):
    """Names to addresses (the system's DNS in a deployment): a port so the URL rules are tested on any answer."""

    @abstractmethod
    def addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to now; raises OSError when it does not resolve."""


class WebhookStore(ABC):
    """The registered webhook endpoints, their signing secrets and their delivery health."""

    @abstractmethod
    def create(self, endpoint: WebhookEndpoint) -> None: ...

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
    def replace_secrets(self, webhook_id: str, secrets: Sequence[SigningSecret]) -> bool:
        """Store the endpoint's new keys (a rotation); False when there is no such endpoint."""

    @abstractmethod
    def record_attempt(self, webhook_id: str, outcome: AttemptRecord) -> None:
        """Add one attempt's outcome to the endpoint's health; nothing when the endpoint is gone."""


@dataclass(frozen=True)
class AttemptRecord:
    """What one delivery attempt did to its endpoint's health."""

    at: datetime
    succeeded: bool
    status: int | None = None
    reason: str | None = None
    pending_change: int = 0
    """Retries scheduled by this attempt, less the one this attempt was (a retry that was made)."""


class DeliveryQueue(ABC):
    """Where webhook deliveries wait for their attempts (SQS), and where they are parked when retries run out."""

    @abstractmethod
    def send(self, deliveries: Sequence[WebhookDelivery]) -> list[str]:
        """Queue each delivery to be attempted at its `due_at` (SQS hides it until then, or part of the way: see
        `logic/webhooks.py`); answer the event ids of those that could not be queued."""

    @abstractmethod
    def park(self, delivery: WebhookDelivery, reason: str) -> None:
        """Move a delivery whose retries ran out to the dead-letter queue; raises `DeadLetterError` if that failed."""


@dataclass(frozen=True)
class WebhookAnswer:
    """What an endpoint answered one attempt: a status, or no answer at all (`status` None) and why."""

    status: int | None
    reason: str

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender(ABC):
    """POSTs one delivery (the HTTP client of a deployment; a recorder in the specs)."""

    @abstractmethod
    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        """One attempt, connecting to `destination.address`; never raises for what the endpoint does."""
