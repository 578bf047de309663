"""The boundaries of polling throughput: the due index of the store, and the queue to the workers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from datetime import datetime

from genviral_relay.models.domain import DueWatch
from genviral_relay.models.messages import WorkRequest


class WatchIndex(ABC):
    """What polling asks of the store beside the watches themselves: which are due, which await a retry, which
    check runs now, and when the known posts were created (the store's indexes and claims)."""

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
    def watched_post_ids(self, *, limit: int | None = None, awaiting_retry: bool = True) -> Iterator[str]:
        """Every post in the due index (checks to come, the retry sweep's too), in no particular order: what the
        account health check reads (rarely, `get_many` then), and whether anything is watched (`limit=1`).
        `awaiting_retry` False leaves out the posts the retry sweep covers (whose accounts are mostly final)."""

    @abstractmethod
    def creation_moments(self, since: datetime, until: datetime, *, limit: int) -> list[datetime]:
        """When the posts the store holds a watch of (watching or ended) were created, for those created
        in [since, until] (milliseconds, both inclusive), oldest first, at most `limit` of them.

        What the relay knows of the workspace's `created_at` windows: every post of it in discover mode,
        the registered ones otherwise. A watch stored by an earlier release counts from its next save."""


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
