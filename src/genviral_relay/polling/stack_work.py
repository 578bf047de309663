"""The stack's own work, asked for by the poller at every tick whatever its workspaces do: a flush of the notices
still owed (every workspace's: notice documents are global) and a sync of the workspaces from the secret. Neither
calls Genviral, so both are asked while paused too, and they go in a send of their own (`WorkspaceTicks`), so no
workspace's failing tick can keep a `relay.paused` from going out or a new workspace from being picked up."""

from __future__ import annotations

from datetime import datetime, timedelta

from genviral_relay.clock import Clock, to_milliseconds
from genviral_relay.models.messages import NoticesRequest, WorkRequest, WorkspacesRequest
from genviral_relay.notices.outbox import FLUSH_AFTER
from genviral_relay.notices.ports import NoticeStore
from genviral_relay.polling.ports import WorkQueue


class StackTick:
    def __init__(
        self, *, notices: NoticeStore | None, sync_every: timedelta | None, queue: WorkQueue, clock: Clock
    ) -> None:
        """`notices`: whose pending notices a flush publishes (None: none). `sync_every`: how often to ask for a sync
        of the workspaces, and at this object's first tick (None: never). Kept for the execution environment."""
        self._notices = notices
        self._sync_every = sync_every
        self._queue = queue
        self._clock = clock
        self._sync_asked: datetime | None = None

    def run(self, *, correlation_id: str | None = None) -> int:
        """How many messages it queued (one Query for the notices; the sync is remembered, not read)."""
        now = to_milliseconds(self._clock())
        owed: list[WorkRequest] = []
        if self._notices is not None and self._notices.any_owed(now - FLUSH_AFTER):
            owed.append(NoticesRequest(notices="flush"))  # owed past the time its own process had to publish it
        sync = self._sync_every is not None and (self._sync_asked is None or now >= self._sync_asked + self._sync_every)
        if sync:
            owed.append(WorkspacesRequest(workspaces="sync"))
        queued = self._queue.send(owed, correlation_id=correlation_id) if owed else 0
        if sync:  # once queued: a failed send asks again at the next tick
            self._sync_asked = now
        return queued
