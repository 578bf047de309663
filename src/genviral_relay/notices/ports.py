"""What the notice outbox keeps: versioned records of the relay's own state (an account's health, the pause), each
committed with the notices it produced, and what every notice is still owed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from genviral_relay.models.domain import OutboxTarget
from genviral_relay.models.relay_notices import AccountStatusEvent, RelayStateEvent

NoticeDocument = AccountStatusEvent | RelayStateEvent


@dataclass(frozen=True)
class RelayRecord:
    """One versioned record of the relay's own state, as the use case that owns it serialized it (JSON)."""

    version: int
    """Optimistic lock: 0 means never stored."""
    state: str


@dataclass(frozen=True)
class PendingNotice:
    notice: NoticeDocument
    owed: frozenset[OutboxTarget]
    """The targets (and the feed) that have not taken it yet."""
    committed_at: datetime


class NoticeStore(ABC):
    @abstractmethod
    def record(self, name: str) -> RelayRecord | None:
        """The record stored under `name` (strongly consistent); None before its first commit."""

    @abstractmethod
    def commit(
        self,
        name: str,
        state: str,
        *,
        expected_version: int,
        notices: Sequence[NoticeDocument],
        owed: Collection[OutboxTarget],
        committed_at: datetime,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """Atomically: the record `name` at `expected_version + 1`, each notice's document (kept for the events'
        retention) and its pending entry, owed to `owed`. `attributes`: plain string attributes written beside the
        record, for readers that read them directly (the pause's `until` and `reason`).

        Raises `StateConflictError` when the stored version is not `expected_version` (a record a release before
        0.5 wrote without a version counts as version 0), `ValueError` for more than `MAX_NOTICES_PER_COMMIT` notices
        (`notices/outbox.py`: a programming error), and any other refusal as it is (nothing stored)."""

    @abstractmethod
    def pending(self) -> list[PendingNotice]:
        """Every notice still owed to some target, oldest commit first (strongly consistent)."""

    @abstractmethod
    def any_owed(self, committed_by: datetime) -> bool:
        """Whether some notice committed at or before `committed_by` is still owed to some target: the poller's
        look every tick, so it reads the least it can (eventually consistent: a stale answer costs one flush)."""

    @abstractmethod
    def acknowledge(self, event_id: str, done: Collection[OutboxTarget]) -> None:
        """`done` took the notice; its pending entry goes once nothing is owed (a notice no longer pending: no-op).
        A pending entry left with nothing owed (a crash mid-way) is pending no more: `pending` and `any_owed` skip
        it."""

    @abstractmethod
    def notice(self, event_id: str) -> NoticeDocument | None:
        """The stored document of a notice (a delivery signs it); None when there is none or it is not readable."""
