"""The watches a workspace's worker batch reads: only its own.

Watches are keyed by post id (Genviral's ids are global), so a post deleted in one workspace and registered again in
another while a check of it was queued belongs to the other workspace by the time the first one's message runs.
Checked there, it would call Genviral with the wrong key (a 404), then fail to end a watch that view may not save, and
come back until the work DLQ. Left out of the batch's read, its check finds no watch: acknowledged, no Genviral call,
counted with the work of workspaces the secret no longer names (`UnknownWorkspaceMessages`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.workspaces import workspace_of
from genviral_relay.observability import Metric, emit, logger


class WatchReader(Protocol):
    """What a worker batch reads of the store (`WatchStore.get_many`)."""

    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]: ...


class OwnWatches:
    def __init__(self, store: WatchReader, workspace: str) -> None:
        self._store = store
        self._workspace = workspace

    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]:
        watches = self._store.get_many(post_ids)
        own = {post_id: watch for post_id, watch in watches.items() if workspace_of(watch.workspace) == self._workspace}
        others = [post_id for post_id in watches if post_id not in own]
        if others:
            emit(Metric.UNKNOWN_WORKSPACE_MESSAGES, len(others))
            logger.warning(
                "Work for posts now watched in another workspace: acknowledged without calling Genviral",
                extra={"workspace": self._workspace, "posts": len(others), "post_ids": others[:10]},
            )
        return own
