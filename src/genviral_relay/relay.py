"""The relay's use cases wired on one set of adapters: the deployment's AWS ones (`factories.py`), the local
rig's, the in-memory doubles of the specs and the benchmark. No adapter is built here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from genviral_relay.checking.accounts import AccountLookup
from genviral_relay.checking.check import CheckOutcome, CheckTrigger, PostCheck
from genviral_relay.checking.outbox import Outbox
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import AccountSource, DeadLetters, EventPublisher, PostSource, RelayState, WatchStore
from genviral_relay.checking.unwatch import Unwatch
from genviral_relay.clock import Clock, to_milliseconds, utc_now
from genviral_relay.deadlines import Deadline, calls_until
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.upstream import AccountListing
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.outbox import NoticeOutbox
from genviral_relay.observability import logger
from genviral_relay.polling.ports import WatchIndex
from genviral_relay.polling.retry_sweep import RetrySweep
from genviral_relay.rules.schedule import PollingPolicy, tick_of
from genviral_relay.webhooks.ports import NoticePublisher

if TYPE_CHECKING:
    from genviral_relay.checking.account_health import AccountHealthCheck
    from genviral_relay.polling.discover import Discovery
    from genviral_relay.polling.in_flight import CheckClaims
    from genviral_relay.polling.work_batch import WorkBatch
    from genviral_relay.polling.workspaces import WorkspaceSync


def polling_policy(
    poll_schedule: str | None = None,
    failed_retry_window_hours: int | None = None,
    delayed_after_minutes: int | None = None,
) -> PollingPolicy:
    """The deployment's polling policy; a value not given keeps the policy's default (the template's)."""
    policy = PollingPolicy()
    if poll_schedule is not None:
        policy = replace(policy, tick=tick_of(poll_schedule))
    if failed_retry_window_hours is not None:
        policy = replace(policy, failed_retry_window=timedelta(hours=failed_retry_window_hours))
    if delayed_after_minutes is not None:
        policy = replace(policy, delayed_after=timedelta(minutes=delayed_after_minutes) or None)  # 0: off
    return policy


@dataclass(frozen=True)
class Relay:
    """The check's use cases on one set of adapters, sharing one outbox delivery, one notice outbox and one pause."""

    checker: PostCheck
    unwatch: Unwatch
    sweep: RetrySweep
    pause: GenviralPause
    notices: NoticeOutbox
    """The notices (`account.*`, `relay.*`): committed with the relay state that produced them, then published."""
    source: PostSource
    store: WatchStore
    index: WatchIndex
    state: RelayState
    clock: Clock
    policy: PollingPolicy
    workspace: str = DEFAULT_WORKSPACE
    """Whose Genviral key `source` calls with: the watches it starts, its pause, its account directory and health."""

    def discovery(
        self, baseline_before: Callable[[datetime], datetime], *, max_list_calls: int | None = None
    ) -> Discovery:
        """Discover mode on the same adapters; `baseline_before(now)` resolves `DiscoverSince` on the first run."""
        from genviral_relay.polling.discover import MAX_LIST_CALLS, Discovery

        return Discovery(
            check=self.checker,
            source=self.source,
            store=self.store,
            state=self.state,
            pause=self.pause,
            clock=self.clock,
            baseline_before=baseline_before,
            max_list_calls=max_list_calls or MAX_LIST_CALLS,
        )

    def claims(self) -> CheckClaims:
        """Which checks start (`polling/in_flight.py`): a worker's messages, and a check asked for now."""
        from genviral_relay.polling.in_flight import CheckClaims

        return CheckClaims(index=self.index, clock=self.clock, tick=self.policy.tick)

    def check_now(self, post_id: str, *, trigger: CheckTrigger, deadline: Deadline | None = None) -> CheckOutcome:
        """A check a person asked for (registering a post, or checking it now): once it recorded Genviral's
        answer, the checks the poller queued before it ask Genviral nothing (`CheckClaims.claim_for_check_now`).

        `deadline`: Genviral's calls end by then (the API's, which must answer in time); a call cut short
        defers the check as any unanswered call does."""
        started = to_milliseconds(self.clock())  # as the poller's `queued_at`
        pause = self.pause.status()  # read before asking: an answer closes a pause that was open
        with calls_until(deadline):
            outcome = self.checker.check(post_id, trigger=trigger)
        if pause.open and outcome.answered:
            try:
                self.pause.answered(pause)
            except Exception:  # as the worker: the check stands; the pause stays open for the next answer to close
                logger.exception("Could not close the Genviral pause")
        self.claims().claim_for_check_now(outcome, started=started)
        return outcome

    def account_health(self) -> AccountHealthCheck:
        """The account health check on the same adapters, committing through the notice outbox."""
        from genviral_relay.checking.account_health import AccountHealthCheck

        if not isinstance(self.source, AccountSource):
            raise TypeError("the account health check needs a source that lists accounts")
        return AccountHealthCheck(
            source=self.source,
            store=self.store,
            index=self.index,
            state=self.state,
            notices=self.notices,
            pause=self.pause,
            clock=self.clock,
            workspace=self.workspace,
        )

    def work_batch(
        self,
        *,
        discovery: Discovery | None = None,
        sweep: bool = True,
        threads: int = 1,
        accounts: bool = True,
        workspaces: WorkspaceSync | None = None,
    ) -> WorkBatch:
        """A worker's dispatcher on the same adapters (`sweep`, `accounts`: whether it runs the retry sweep, the
        account health check; `workspaces`: the sync of the workspaces, global, given by the caller)."""
        from genviral_relay.polling.bulk_refresh import BulkRefresh
        from genviral_relay.polling.own_watches import OwnWatches
        from genviral_relay.polling.work_batch import WorkBatch

        claims = self.claims()
        return WorkBatch(
            check=self.checker,
            store=OwnWatches(self.store, self.workspace),  # a post watched in another workspace is not this one's
            pause=self.pause,
            notices=self.notices,
            sweep=self.sweep if sweep else None,
            discovery=discovery,
            claims=claims,
            refresh=BulkRefresh(check=self.checker, source=self.source, pause=self.pause, claims=claims),
            accounts=self.account_health() if accounts else None,
            workspaces=workspaces,
            threads=threads,
        )


def compose_relay(
    *,
    store: WatchStore,
    state: RelayState,
    source: PostSource,
    publishers: Sequence[EventPublisher],
    dead_letters: DeadLetters,
    index: WatchIndex | None = None,
    clock: Clock | None = None,
    policy: PollingPolicy | None = None,
    feed: EventLog | None = None,
    deployment_key: bool = True,
    account_checks: bool = False,
    workspace: str = DEFAULT_WORKSPACE,
) -> Relay:
    """The check path on any adapters: the deployment's AWS ones, the local rig's, the doubles.

    `deployment_key`: whether `source` calls Genviral with the deployment's own key; False (the CLI with
    `GENVIRAL_TOKEN`): its refusals and answers say nothing of that key, so its pause is only read.

    `feed`: where the outbox appends events read back from the table (`checking/outbox.py`); None: a relay
    without a feed (specs of other rules).

    A `source` that also lists accounts (Genviral's client, the doubles) names them in events; with
    `account_checks` (`AccountCheckMinutes` above 0, the deployment's key), the account health check records
    each of those listings too. `workspace`: whose key `source` calls with (`store` and `state` are that
    workspace's views of the table). Without an `index`, the store is the index too (the table and its doubles are
    both)."""
    if index is None:
        if not isinstance(store, WatchIndex):
            raise TypeError("compose_relay needs an index: this store is not a WatchIndex")
        index = store
    clock = clock or utc_now
    policy = policy or PollingPolicy()
    outbox = Outbox(
        store=store, publishers=publishers, dead_letters=dead_letters, clock=clock, policy=policy, feed=feed
    )
    notices = NoticeOutbox(
        store=state.notices,
        publishers=[publisher for publisher in publishers if isinstance(publisher, NoticePublisher)],
        clock=clock,
        feed=feed,
    )
    pause = GenviralPause(state, clock, notices=notices if deployment_key else None, workspace=workspace)
    lister = source if isinstance(source, AccountSource) else None

    def record_listing(listing: AccountListing) -> object:
        return relay.account_health().record(listing)

    accounts = AccountLookup(
        state=state,
        source=lister,
        clock=clock,
        listened=record_listing if account_checks and deployment_key and lister is not None else None,
    )
    check = PostCheck(
        store=store,
        source=source,
        outbox=outbox,
        pause=pause,
        clock=clock,
        policy=policy,
        accounts=accounts,
        workspace=workspace,
    )
    relay = Relay(
        checker=check,
        unwatch=Unwatch(store=store, outbox=outbox),
        sweep=RetrySweep(check=check, source=source, store=store, index=index, pause=pause, clock=clock),
        pause=pause,
        notices=notices,
        source=source,
        store=store,
        index=index,
        state=state,
        clock=clock,
        policy=policy,
        workspace=workspace,
    )
    return relay
