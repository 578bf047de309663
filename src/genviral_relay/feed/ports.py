"""The boundary of the event feed: where every published document is kept in the order it was committed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime

from genviral_relay.models.event_log import FeedEntry, FeedPage


class EventLog(ABC):
    """The feed (the state table in a deployment; kept EventRetentionDays). The check writes a post's entries in the
    transaction that commits its events (`WatchStore.save`); `append` writes the others (a document about no post,
    an entry written again after a slow or interrupted commit)."""

    @abstractmethod
    def append(self, entries: Sequence[FeedEntry]) -> None:
        """Keep each entry at its position (an entry already there is written again, unchanged)."""

    @abstractmethod
    def page(
        self,
        *,
        after: str | None,
        until: datetime,
        limit: int,
        event_type: str | None = None,
        post_id: str | None = None,
        workspace: str | None = None,
    ) -> FeedPage:
        """Up to `limit` entries after position `after` (None: the oldest kept), committed no later than `until`,
        oldest first, of this type, post and workspace (an entry naming none is `default`'s) when given; how far
        the read went."""

    @abstractmethod
    def entry(self, event_id: str) -> FeedEntry | None:
        """The event's entry (its first, when a slow commit gave it two); None when none is kept."""

    @abstractmethod
    def between(self, since: datetime, until: datetime) -> Iterator[FeedEntry]:
        """The entries committed from `since` (inclusive) to `until` (exclusive), oldest first."""
