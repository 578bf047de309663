"""A worker's batch of work messages, dispatched by type: post checks, bulk refreshes, the retry sweep,
a discover run, a flush of the notices still owed.

Each post is checked once however many messages asked for it, and not at all when a check that started after its
messages were queued covers it (`polling/in_flight.py`); watches are read in one call; Genviral requests run on a
few threads within the deployment's concurrency cap, slow down when Genviral answers 429, and stop for the rest of
the batch once it refuses the key. The answer is the ids of the messages whose work failed unexpectedly: only those
go back to the queue. The stack's own work (the flush, the sync) names no workspace (`workspace_scope.py`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import BaseModel

from genviral_relay.checking.account_health import AccountHealthCheck
from genviral_relay.checking.check import PostCheck
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.clock import TimeLeft
from genviral_relay.errors import GenviralRateLimitedError
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.messages import (
    AccountsRequest,
    CheckRequest,
    DiscoverRequest,
    NoticesRequest,
    RefreshRequest,
    SweepRequest,
    WorkRequest,
    WorkspacesRequest,
)
from genviral_relay.notices.outbox import NoticeOutbox
from genviral_relay.observability import Metric, correlated, emit, logger
from genviral_relay.polling.adaptive_limit import AdaptiveLimit
from genviral_relay.polling.bulk_refresh import BulkRefresh
from genviral_relay.polling.discover import Discovery
from genviral_relay.polling.in_flight import CheckClaims
from genviral_relay.polling.own_watches import WatchReader
from genviral_relay.polling.retry_sweep import RetrySweep
from genviral_relay.polling.workspaces import WorkspaceSync
from genviral_relay.workspace_scope import working_for


@dataclass(frozen=True)
class WorkItem:
    """One message of the batch: its request and the correlation id of whatever queued it."""

    message_id: str
    request: WorkRequest
    correlation_id: str | None = None


class WorkBatch:
    def __init__(
        self,
        *,
        check: PostCheck,
        store: WatchReader,
        pause: GenviralPause,
        notices: NoticeOutbox | None = None,
        sweep: RetrySweep | None = None,
        discovery: Discovery | None = None,
        claims: CheckClaims | None = None,
        refresh: BulkRefresh | None = None,
        accounts: AccountHealthCheck | None = None,
        workspaces: WorkspaceSync | None = None,
        threads: int = 1,
    ) -> None:
        """`claims`: skips duplicate messages (None: every message's post is checked). `refresh`: lists
        the posts of a refresh message (None: each of them is checked on its own). `accounts`: the account
        health check, `workspaces` the sync of the workspaces (None: this worker has none; its messages fail)."""
        self._check = check
        self._claims = claims
        self._refresh = refresh
        self._store = store
        self._pause = pause
        self._notices = notices
        self._sweep = sweep
        self._discovery = discovery
        self._accounts = accounts
        self._workspaces = workspaces
        self._threads = max(1, threads)

    def run(self, items: Sequence[WorkItem], *, time_left: TimeLeft | None = None) -> list[str]:
        """Do every item's work; answer the message ids whose work failed (to be received again). While Genviral
        calls are paused nothing that calls it is done and nothing fails: the posts stay due and the poller queues
        them again after the pause. Notices are flushed and the workspaces synced all the same (no Genviral call); a
        batch that ran while a pause was open and got an answer closes it."""
        pause = self._pause.status()  # the batch's one read of the pause
        run = _Run(AdaptiveLimit(self._threads))
        flush = [item for item in items if isinstance(item.request, NoticesRequest)]
        if flush:
            run.guarded(flush, "Notice flush failed", self._flush_notices)
        if pause.reason is None:
            self._work(run, items, time_left)
        else:
            logger.warning("Genviral calls are paused; the batch's posts stay due", extra={"reason": pause.reason})
        if pause.open and run.answered.is_set() and not run.refused.is_set():
            try:
                self._pause.answered(pause)
            except Exception:  # the work stands; the pause stays open and the next answered batch closes it
                logger.exception("Could not close the Genviral pause")
        if sync := [item for item in items if isinstance(item.request, WorkspacesRequest)]:
            run.guarded(sync, "Workspace sync failed", self._sync_workspaces)
        return run.failed

    def _work(self, run: _Run, items: Sequence[WorkItem], time_left: TimeLeft | None) -> None:
        refreshes: list[tuple[WorkItem, RefreshRequest, tuple[str, ...]]] = []
        taken: set[str] = set()
        asked = 0
        for item in items:
            if isinstance(item.request, RefreshRequest):
                # A post in two refresh messages (queued by two ticks) is refreshed by the first.
                asked += len(item.request.post_ids)
                post_ids = tuple(post_id for post_id in item.request.post_ids if post_id not in taken)
                taken.update(post_ids)
                refreshes.append((item, item.request, post_ids))
        checks: dict[str, list[WorkItem]] = {}
        for item in items:
            if isinstance(item.request, CheckRequest):
                checks.setdefault(item.request.post_id, []).append(item)
        asked += sum(len(group) for group in checks.values())
        covered = len(taken | set(checks))
        if asked > covered:
            emit(Metric.DUPLICATE_CHECK_REQUESTS, asked - covered)
        self._report_waits([item.request for item in items])

        # Discovery, the sweep and the account check run first, once each however many of their messages the batch
        # holds; the checks' watches are read after them, so a check starts from what they recorded.
        discovery = partial(self._discovery.run, time_left=time_left) if self._discovery else None
        self._once(run, items, DiscoverRequest, "discovery", discovery)
        self._once(run, items, SweepRequest, "a retry sweep", self._sweep.run if self._sweep else None)
        accounts = self._accounts.run if self._accounts else None
        self._once(run, items, AccountsRequest, "an account health check", accounts)
        # A post they asked Genviral about in this batch already is not asked about again.
        looked = run.looked
        watches = self._store.get_many([post_id for post_id in [*checks, *taken] if post_id not in looked])
        jobs: list[Callable[[], None]] = [
            partial(
                self._refresh_window, run, item, request.model_copy(update={"post_ids": remaining}), watches, time_left
            )
            for item, request, post_ids in refreshes
            if (remaining := tuple(post_id for post_id in post_ids if post_id not in looked))
        ]
        jobs.extend(
            partial(self._check_group, run, post_id, group, watches.get(post_id))
            for post_id, group in checks.items()
            if post_id not in taken and post_id not in looked  # a refresh, the sweep or discovery covers it
        )
        if self._threads == 1:
            for job in jobs:
                job()
        else:
            with ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="check") as pool:
                futures = [pool.submit(copy_context().run, job) for job in jobs]  # metrics: its workspace's too
            for future in futures:
                future.result()  # re-raises what must end the invocation (anything that is not an Exception)

    def _refresh_window(
        self,
        run: _Run,
        item: WorkItem,
        request: RefreshRequest,
        watches: dict[str, WatchRecord],
        time_left: TimeLeft | None,
    ) -> None:
        def refresh() -> None:
            if run.refused.is_set():
                return  # the posts stay due; the poller queues them again after the pause
            if self._refresh is None:
                for post_id in request.post_ids:  # this worker cannot list: each post on its own
                    self._check_group(run, post_id, [item], watches.get(post_id))
                return
            with run.limit:  # one list call, then one by one what it did not show: one call at a time
                report = self._refresh.run(request, watches, time_left=time_left)
            run.note(report.answered, refused=report.refused)
            limited = isinstance(report.error, GenviralRateLimitedError) or any(
                isinstance(outcome.error, GenviralRateLimitedError) for outcome in report.outcomes
            )
            if limited and not report.refused:
                run.limit.shrink()

        run.guarded([item], "Bulk refresh failed", refresh)

    def _report_waits(self, requests: list[WorkRequest]) -> None:
        """How long the batch's checks waited: in the queue, and since the poller first wanted them."""
        if self._claims is None:
            return
        now = self._claims.now()
        checks = [request for request in requests if isinstance(request, CheckRequest | RefreshRequest)]
        queued = [request.queued_at for request in checks if request.queued_at is not None]
        wanted = [request.waiting_since for request in checks if request.waiting_since is not None]
        if queued:
            emit(Metric.WORK_QUEUE_AGE, max(0.0, (now - min(queued)).total_seconds()))
        if wanted:
            emit(Metric.CHECK_DELAY, max(0.0, (now - min(wanted)).total_seconds()))

    def _flush_notices(self) -> None:
        if self._notices is None:
            raise RuntimeError("a notice flush was asked for but this worker has no notice outbox")
        with working_for(None):
            self._notices.flush()

    def _sync_workspaces(self) -> None:
        """Last in a batch (its checks used the key as cached), paused or not: it calls no Genviral."""
        if self._workspaces is None:
            raise RuntimeError("a workspace sync was asked for but this worker has none")
        with working_for(None):
            self._workspaces.run()

    @staticmethod
    def _once(
        run: _Run, items: Sequence[WorkItem], kind: type[BaseModel], what: str, work: Callable[[], Any] | None
    ) -> None:
        """`work` (discovery, the sweep, the account check) once for every message of `kind` in the batch: a
        report with `answered` and `refused`, and the `outcomes` of the posts it checked."""

        def once() -> None:
            if work is None:
                raise RuntimeError(f"{what} was asked for but this worker has none")
            if not run.refused.is_set():
                with run.limit:
                    report = work()
                run.looked.update(outcome.post_id for outcome in getattr(report, "outcomes", ()))
                run.note(report.answered, refused=report.refused)

        asked = [item for item in items if isinstance(item.request, kind)]
        if asked:
            run.guarded(asked, f"{what[0].upper()}{what[1:]} failed", once)

    def _check_group(self, run: _Run, post_id: str, group: list[WorkItem], watch: WatchRecord | None) -> None:
        def check() -> None:
            if run.refused.is_set():
                return  # the post stays due; the poller queues it again after the pause
            admitted = watch
            if self._claims is not None:
                admission = self._claims.admit(post_id, watch, _newest_queueing(group))
                if not admission.check:
                    emit(Metric.DUPLICATE_CHECKS_SKIPPED, len(group))
                    return
                admitted = admission.watch
            with run.limit:
                outcome = self._check.check_watch(post_id, admitted, trigger="due")
            run.note(outcome.answered, refused=outcome.result == "refused")
            if isinstance(outcome.error, GenviralRateLimitedError):
                run.limit.shrink()

        run.guarded(group, "Post check failed", check, post_id=post_id)


def _newest_queueing(group: list[WorkItem]) -> datetime | None:
    """When the newest of a post's messages was queued (None if one of them does not say: then it is checked)."""
    moments = [item.request.queued_at for item in group if isinstance(item.request, CheckRequest | RefreshRequest)]
    if not moments or any(moment is None for moment in moments):
        return None
    return max(moment for moment in moments if moment is not None)


class _Run:
    """What one `WorkBatch.run` shares between its threads."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self.refused = threading.Event()
        """Genviral refused the key: the rest of the batch asks it nothing (the pause is stored)."""
        self.answered = threading.Event()
        """Genviral answered a call of the batch (its key works)."""
        self.failed: list[str] = []
        self.looked: set[str] = set()
        """Posts the batch's discovery and retry sweep checked (they run before the checks)."""
        self._lock = threading.Lock()

    def note(self, answered: bool, *, refused: bool) -> None:
        """What a piece of work's calls met."""
        if answered:
            self.answered.set()
        if refused:
            self.refused.set()

    def guarded(
        self, items: list[WorkItem], failure: str, work: Callable[[], None], *, post_id: str | None = None
    ) -> None:
        """Run one piece of work under its first message's correlation id; an unexpected failure fails its messages
        only, and the batch goes on."""
        with correlated(items[0].correlation_id):
            try:
                work()
            except Exception:  # SQS delivers those messages again; the other work stands
                logger.exception(failure, extra={"post_id": post_id} if post_id else {})
                if post_id is not None:
                    emit(Metric.CHECK_FAILURES)
                with self._lock:
                    self.failed.extend(item.message_id for item in items)
