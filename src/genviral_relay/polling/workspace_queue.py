"""The work queue as one workspace's poller tick sends to it: every message it queues names the workspace, so the
worker runs it with that workspace's key. The default workspace's messages name none (0.4's, byte for byte).

The queue is the stack's, but each workspace's backpressure paces on its own share of its backlog
(`rules/backlog_shares.py`): `SharedBacklog` reads the backlog once per tick of the stack and counts what each
workspace queues."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from genviral_relay.models.messages import WorkRequest, for_workspace
from genviral_relay.models.workspaces import stored_workspace
from genviral_relay.polling.ports import WorkQueue
from genviral_relay.rules.backlog_shares import BacklogShares


class SharedBacklog:
    """The stack's queue backlog, attributed to its workspaces; kept for the execution environment (what each
    workspace has waiting is learnt tick after tick, as the backpressure's pace is)."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue
        self._shares = BacklogShares()

    def measure(self, workspaces: Sequence[str]) -> None:
        """At the start of the stack's tick, before any workspace queues (one read of the queue's counts)."""
        self._shares.measured(self._queue.backlog(), workspaces)

    def of(self, workspace: str) -> int | None:
        return self._shares.of(workspace)

    def queued(self, workspace: str, count: int) -> None:
        self._shares.queued(workspace, count)


class WorkspaceQueue(WorkQueue):
    def __init__(self, queue: WorkQueue, workspace: str, backlog: SharedBacklog | None = None) -> None:
        """`backlog`: the workspace's share of the stack's backlog (None: the whole queue's, as a stack of one)."""
        self._queue = queue
        self._name = workspace
        self._workspace = stored_workspace(workspace)
        self._backlog = backlog

    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        sent = self._queue.send(
            (self._stamped(request) for request in requests) if self._workspace else requests,
            correlation_id=correlation_id,
        )
        if self._backlog is not None:
            self._backlog.queued(self._name, sent)
        return sent

    def backlog(self) -> int | None:
        return self._queue.backlog() if self._backlog is None else self._backlog.of(self._name)

    def _stamped(self, request: WorkRequest) -> WorkRequest:
        if not for_workspace(request):
            return request
        return request.model_copy(update={"workspace": self._workspace})
