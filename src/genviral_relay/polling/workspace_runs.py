"""Several workspaces in one stack: the poller ticks each workspace the registry names, the worker runs each
workspace's messages with that workspace's batch. Each workspace's tick and batch are the single-workspace use cases
composed on its own view of the table and its own key (`workspace_factories.py`), so its pause, discover walk, retry
sweep, account checks, backpressure (on its share of the shared queue, `rules/backlog_shares.py`) and concurrency cap
are its own; what this module adds is that one workspace's failure never stops another's work, nor the stack's own
(the notices flush and the sync, queued apart: `polling/stack_work.py`).

A stack of one workspace runs as 0.4 did: one tick, one batch, in the handler's own thread, and no second series of
metrics and no `workspace` in its log lines (`workspace_scope.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field

from genviral_relay.clock import TimeLeft
from genviral_relay.errors import TokenUnavailableError
from genviral_relay.models.messages import for_workspace, workspace_of_request
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.polling.stack_work import StackTick
from genviral_relay.polling.tick import PollTick, TickReport
from genviral_relay.polling.work_batch import WorkBatch, WorkItem
from genviral_relay.polling.workspace_queue import HeldSends, SharedBacklog
from genviral_relay.workspace_scope import working_for


@dataclass(frozen=True)
class TicksReport:
    """What every workspace's tick queued, and which ones paused."""

    ticked: tuple[str, ...]
    queued: int = 0
    paused: dict[str, str] = field(default_factory=dict)
    """Workspace: why its Genviral calls are paused."""


class WorkspaceTicks:
    def __init__(
        self,
        *,
        workspaces: Callable[[], Sequence[str]],
        tick_of: Callable[[str], PollTick],
        stack: StackTick | None = None,
        backlog: SharedBacklog | None = None,
        held: HeldSends | None = None,
    ) -> None:
        """`workspaces`: the workspaces to tick now (the registry's; a removed one is not ticked, so its watches stop
        where they are). `tick_of`: a workspace's tick, kept for the execution environment (its backpressure learns
        a pace). `stack`: the stack's own work (the notices flush, the sync), queued first and on its own, so no
        workspace's failure loses it. `backlog`: the queue's backlog, shared among the workspaces' ticks (None: each
        reads the whole queue's). `held`: the queue the workspaces' ticks send to, released interleaved once all have
        ticked (None: they send straight to the queue)."""
        self._workspaces = workspaces
        self._tick_of = tick_of
        self._stack = stack
        self._backlog = backlog
        self._held = held

    def run(self, *, correlation_id: str | None = None) -> TicksReport:
        workspaces = list(self._workspaces()) or [DEFAULT_WORKSPACE]
        queued, paused, failures = 0, dict[str, str](), list[Exception]()
        if self._backlog is not None:
            self._backlog.measure(workspaces)  # before anything is queued: what the fleet left of the last tick
        if self._stack is not None:
            try:
                queued += self._stack.run(correlation_id=correlation_id)
            except Exception as error:  # the workspaces still tick
                logger.exception("The stack's own work could not be queued")
                failures.append(error)
        for workspace in workspaces:
            with working_for(workspace, among=workspaces):
                try:
                    report: TickReport = self._tick_of(workspace).run(correlation_id=correlation_id)
                except Exception as error:  # the next workspaces still tick
                    logger.exception("A workspace's tick failed", extra={"workspace": workspace})
                    emit(Metric.WORKSPACE_TICK_FAILURES)
                    failures.append(error)
                    continue
            queued += report.queued
            if report.paused is not None:
                paused[workspace] = report.paused
        if self._held is not None:
            try:  # what the other workspaces queued goes out whatever one of them did
                self._held.release()
            except Exception as error:
                logger.exception("The workspaces' checks could not be queued")
                failures.append(error)
        if failures:
            # Then the invocation fails as a tick always failed: the function's errors alarm and PollerDLQ see it.
            raise failures[0]
        return TicksReport(ticked=tuple(workspaces), queued=queued, paused=paused)


class WorkspaceBatches:
    def __init__(self, *, known: Callable[[], Sequence[str]], batch_of: Callable[[str], WorkBatch]) -> None:
        """`known`: the workspaces the secret names now (`WorkspaceKeys.names`, cached); `batch_of`: a workspace's
        batch, kept for the execution environment. The default workspace's batch also runs the stack's own work
        (the notices flush and whatever else names no workspace): it calls Genviral with no key."""
        self._known = known
        self._batch_of = batch_of

    def run(self, items: Sequence[WorkItem], *, time_left: TimeLeft | None = None) -> list[str]:
        """Every item's work, by workspace; the message ids whose work failed (to be received again)."""
        groups: dict[str, list[WorkItem]] = {}
        for item in items:
            groups.setdefault(workspace_of_request(item.request), []).append(item)
        # Only default's work (a stack of one, as 0.4's): run as it always ran, with no read of the secret of its
        # own; were `default` gone from the secret, its calls would meet that as a refused key and pause it.
        known = None if set(groups) <= {DEFAULT_WORKSPACE} else self._named()
        among = tuple(known if known is not None else groups)  # lines name their workspace by the secret's names
        if known is not None:
            for workspace in [workspace for workspace in groups if workspace not in known]:
                self._drop(workspace, groups, stack_wide=workspace == DEFAULT_WORKSPACE, among=among)
        batches = {workspace: self._batch_of(workspace) for workspace in groups}  # built here: once, not per thread
        if not groups:
            return []
        if len(groups) == 1:  # as a stack of one workspace always ran: what escapes fails the invocation
            ((workspace, group),) = groups.items()
            with working_for(workspace, among=among):
                return batches[workspace].run(group, time_left=time_left)
        # Groups in parallel: each batch holds its workspace to its own cap (its own threads).
        with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="workspace") as pool:
            futures = [
                pool.submit(copy_context().run, self._run, workspace, batches[workspace], group, time_left, among)
                for workspace, group in groups.items()
            ]
        return [message_id for future in futures for message_id in future.result()]

    def _named(self) -> frozenset[str] | None:
        """The workspaces the secret names; None when it cannot tell (each batch then meets that as its calls do,
        and pauses its workspace)."""
        try:
            return frozenset(self._known())
        except TokenUnavailableError:
            return None

    @staticmethod
    def _drop(workspace: str, groups: dict[str, list[WorkItem]], *, stack_wide: bool, among: Sequence[str]) -> None:
        """Acknowledge a removed workspace's work without calling Genviral: its watches stay in the table, and a
        workspace added back is ticked again. Stack-wide work (it names no workspace) still runs."""
        group = groups[workspace]
        dropped = [item for item in group if for_workspace(item.request)]
        kept = [item for item in group if item not in dropped] if stack_wide else []
        if kept:
            groups[workspace] = kept
        else:
            del groups[workspace]
        if dropped:
            with working_for(workspace, among=among):  # the line below names it whatever the stack has
                emit(Metric.UNKNOWN_WORKSPACE_MESSAGES, len(dropped))
            logger.warning(
                "Work for a workspace the Genviral secret no longer names: acknowledged, its watches kept",
                extra={"workspace": workspace, "messages": len(dropped)},
            )

    @staticmethod
    def _run(
        workspace: str, batch: WorkBatch, group: list[WorkItem], time_left: TimeLeft | None, among: Sequence[str]
    ) -> list[str]:
        with working_for(workspace, among=among):
            try:
                return batch.run(group, time_left=time_left)
            except Exception:  # this workspace's messages come back; the other workspaces' work stands
                logger.exception("A workspace's batch failed", extra={"workspace": workspace})
                return [item.message_id for item in group]
