"""The work queue as one workspace's poller tick sends to it: every message it queues names the workspace, so the
worker runs it with that workspace's key. The default workspace's messages name none (0.4's, byte for byte)."""

from __future__ import annotations

from collections.abc import Iterable

from genviral_relay.models.messages import WorkRequest
from genviral_relay.models.workspaces import stored_workspace
from genviral_relay.polling.ports import WorkQueue


class WorkspaceQueue(WorkQueue):
    def __init__(self, queue: WorkQueue, workspace: str) -> None:
        self._queue = queue
        self._workspace = stored_workspace(workspace)

    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        return self._queue.send(
            (self._stamped(request) for request in requests) if self._workspace else requests,
            correlation_id=correlation_id,
        )

    def backlog(self) -> int | None:
        return self._queue.backlog()  # the queue is the stack's: every workspace's work waits in it

    def _stamped(self, request: WorkRequest) -> WorkRequest:
        # Stack-wide work (the notices flush) has no workspace to name.
        if "workspace" not in type(request).model_fields:
            return request
        return request.model_copy(update={"workspace": self._workspace})
