"""The work queue as one workspace's poller tick sends to it: every message it queues names the workspace, so the
worker runs it with that workspace's key. The default workspace's messages name none (0.4's, byte for byte).

The queue is the stack's, but each workspace's backpressure paces on its own share of its backlog
(`rules/backlog_shares.py`): `SharedBacklog` reads the backlog once per tick of the stack and counts what each
workspace queues.

The workers take the queue ten messages at a time, and run each workspace's messages of a batch on threads of their
own (its cap is per workspace): a batch of one workspace's messages runs on two threads, a batch of ten workspaces'
on ten. So `HeldSends` holds what the workspaces' ticks queue until all have ticked and sends it interleaved, one
message of each busy workspace in turn: when several workspaces are busy, each batch holds several of them and the
fleet works them at once, as their own stacks would."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, zip_longest

from genviral_relay.errors import EnqueueError
from genviral_relay.models.messages import WorkRequest, for_workspace, workspace_of_request
from genviral_relay.models.workspaces import stored_workspace
from genviral_relay.polling.ports import WorkQueue
from genviral_relay.rules.backlog_shares import BacklogShares

WORKER_BATCH = 10
"""Messages a worker takes at once (the template's `BatchSize`), and as many as one SQS send takes."""


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


class HeldSends(WorkQueue):
    """The stack's queue during its tick: what the workspaces' ticks send is held, then `release` sends it interleaved
    by workspace (each workspace's messages in the order it queued them)."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue
        self._held: dict[str | None, dict[str, list[WorkRequest]]] = {}
        """Correlation id: workspace: its messages, in the order it queued them."""

    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        batch = list(requests)
        by_workspace = self._held.setdefault(correlation_id, {})
        for request in batch:
            by_workspace.setdefault(workspace_of_request(request), []).append(request)
        return len(batch)

    def backlog(self) -> int | None:
        return self._queue.backlog()

    def release(self) -> int:
        """Send what is held, one message of each workspace in turn (per correlation id), a worker's batch to a send;
        a send the queue refuses stops no other, and the first refusal is raised once all were tried. What is held
        is let go either way: a check not queued is still due at the next tick. (The ticks counted it as queued:
        after a refusal each workspace's backpressure takes the fleet for faster than it is for one tick, until its
        next measure of the queue.)"""
        held, self._held = self._held, {}
        sent, refusals = 0, list[EnqueueError]()
        for correlation_id, by_workspace in held.items():
            turns = [r for r in chain.from_iterable(zip_longest(*by_workspace.values())) if r is not None]
            for first in range(0, len(turns), WORKER_BATCH):
                try:
                    sent += self._queue.send(turns[first : first + WORKER_BATCH], correlation_id=correlation_id)
                except EnqueueError as error:
                    refusals.append(error)
        if refusals:
            raise refusals[0]
        return sent
