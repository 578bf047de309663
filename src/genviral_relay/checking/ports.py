"""The boundaries the use cases talk to. Adapters in `aws/` and `genviral/` implement them; the
in-memory doubles in `tests/support/doubles.py` implement them for the specs and the benchmark.

The store is split by who uses it (the checks, operators, the relay's own state, and polling's
`polling.ports.WatchIndex`) so a use case depends on the few methods it calls; one DynamoDB class
implements all four."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from genviral_relay.clock import parse_ts
from genviral_relay.models.domain import AccountDirectory, DiscoverState, OutboxEntry, Target, WatchRecord
from genviral_relay.models.events import RelayEvent
from genviral_relay.models.pause import PauseStatus
from genviral_relay.models.upstream import AccountListing, Post
from genviral_relay.notices.ports import NoticeStore


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
    def list_accounts(self) -> AccountListing:
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


class WatchStore(ABC):
    """What the checks read and write: watches, their last-seen states, the outbox and its events."""

    @abstractmethod
    def get(self, post_id: str) -> WatchRecord | None: ...

    @abstractmethod
    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]:
        """The stored watches of these posts (absent ones left out), in as few reads as possible."""

    @abstractmethod
    def save(self, record: WatchRecord, *, expected_version: int, new_events: Sequence[RelayEvent]) -> bool:
        """Atomically store `record` (its version must be `expected_version + 1`) and `new_events`, with their feed
        entries; True when the feed holds them in time, False when a late commit's second append failed (committed
        all the same: the outbox's feed entry then appends them).

        Raises `StateConflictError` when the stored version is not `expected_version`.
        """

    @abstractmethod
    def load_events(self, post_id: str, event_ids: Iterable[str]) -> list[RelayEvent]:
        """Stored events of a post, in detection order; ids with no stored event are left out."""

    @abstractmethod
    def acknowledge(
        self,
        post_id: str,
        published: Iterable[OutboxEntry],
        *,
        settle_version: int | None = None,
        settled_next_check_at: datetime | None = None,
    ) -> None:
        """Remove the entries published from the outbox.

        With `settle_version`, and only if the watch is still at that version (no check committed
        since), also restore its schedule to `settled_next_check_at` (None: out of the due index).
        """

    @abstractmethod
    def delete(self, post_id: str, *, expected_version: int) -> None:
        """Forget a watch. Raises `StateConflictError` if it changed since it was read."""


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
    def genviral_pause(self, now: datetime) -> PauseStatus:
        """The pause after a refused key (one read): why calls stop now, if they do, and whether a pause is open."""

    @property
    @abstractmethod
    def notices(self) -> NoticeStore:
        """The notice outbox's store in the same table: the pause is written as one of its records."""

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


class WorkspaceKeys(ABC):
    """The Genviral keys of the stack's workspaces: the secret's `{"workspaces": {...}}` map, or its one key as the
    workspace `default` (`models/workspaces.py`)."""

    @abstractmethod
    def names(self, *, refresh: bool = False) -> tuple[str, ...]:
        """The workspaces the secret names now, sorted. `TokenUnavailableError` when it cannot be read or is not a
        usable configuration (its message says why and never holds a token)."""

    @abstractmethod
    def token_source(self, workspace: str) -> TokenSource:
        """`workspace`'s key, read when a call needs it: `TokenUnavailableError` once the secret no longer names it."""


@dataclass(frozen=True)
class PublishFailure:
    reason: str
    retryable: bool


@dataclass
class PublishResult:
    published: set[str] = field(default_factory=set)
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
