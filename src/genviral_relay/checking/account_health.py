"""The account health check: list the accounts (`GET /accounts`), keep the account directory fresh with the same
answer, and commit what changed (`rules/account_health.py`) with its `account.disconnected` /
`account.reconnected` notices through the notice outbox. The poller asks for it every `AccountCheckMinutes` while
posts are watched, and at the next tick when a listing missed a known account. While every watched post is final
for its accounts (it waits only for a URL or a retry), no post is at risk: the check lists nothing, and says when
(`quiet_at`), so the next one counts from there.

One commit per listing, conditional on the record's version: of two workers that listed at once, one records its
notices and the other stops (`StateConflictError`), so a change is announced under one id. A crash before the
commit leaves the record as it was: the next listing finds the same change and numbers it the same. A failed
listing decides nothing: it only records the failure, which spaces the next tries.
"""

from __future__ import annotations

from dataclasses import dataclass

from genviral_relay.checking.accounts import AccountLookup
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import AccountSource, RelayState, WatchStore
from genviral_relay.clock import Clock
from genviral_relay.errors import GenviralError, StateConflictError
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.relay_notices import AccountStatusEvent
from genviral_relay.models.upstream import AccountListing
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.outbox import NoticeOutbox
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.polling.ports import WatchIndex
from genviral_relay.rules.account_health import changed_accounts, failed, nothing_at_risk, observe, posts_at_risk


@dataclass(frozen=True)
class HealthReport:
    notices: tuple[AccountStatusEvent, ...] = ()
    """What this check announced (none when another worker recorded its listing first)."""
    answered: bool = True
    """Genviral listed the accounts (its key works); False: nothing was decided."""
    refused: bool = False
    """Genviral refused the key: calls are paused."""


class AccountHealthCheck:
    def __init__(
        self,
        *,
        source: AccountSource,
        store: WatchStore,
        index: WatchIndex,
        state: RelayState,
        notices: NoticeOutbox,
        pause: GenviralPause,
        clock: Clock,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        """`workspace`: whose accounts `source` lists (`state` and `notices` are its views); its notices name it."""
        self._workspace = workspace
        self._source = source
        self._store = store
        self._index = index
        self._directory = AccountLookup(state=state, source=None, clock=clock)
        self._notices = notices
        self._pause = pause
        self._clock = clock

    def run(self) -> HealthReport:
        health, version = self._health()
        # The table costs less than Genviral's budget: when no watched post is at risk, nothing to warn of, no call.
        watched = self._store.get_many(list(self._index.watched_post_ids())) if health.listed_at is not None else None
        if watched is not None and nothing_at_risk(health, watched.values()):
            self._commit(health.model_copy(update={"quiet_at": self._clock()}), version, ())
            return HealthReport(answered=False)
        try:
            listing = self._source.list_accounts()
        except GenviralError as error:
            refused = self._pause.failed(error, "Genviral did not list the accounts; no account change decided")
            self._commit(failed(health, self._clock()), version, ())  # spaces the next tries
            return HealthReport(answered=False, refused=refused)
        self._directory.remember(listing.accounts, self._clock())
        return self._observe(health, version, listing, watched)

    def record(self, listing: AccountListing) -> HealthReport:
        """What a listing made to name accounts (`AccountLookup`) says: the same rules as the check's own listing,
        so one call serves both and the next check counts from it. Before the first account check (no baseline),
        nothing: that check's listing sets it."""
        health, version = self._health()
        if health.listed_at is None:
            return HealthReport(answered=False)
        return self._observe(health, version, listing, None)

    def _health(self) -> tuple[AccountHealth, int]:
        record = self._notices.store.record(ACCOUNT_HEALTH_RECORD)
        if record is None:
            return AccountHealth(), 0
        return AccountHealth.model_validate_json(record.state), record.version

    def _observe(
        self, health: AccountHealth, version: int, listing: AccountListing, watched: dict[str, WatchRecord] | None
    ) -> HealthReport:
        now = self._clock()
        changed = changed_accounts(health, listing, now)
        # Read only when a change may be announced (rare): every watched post, to know who it targets.
        if changed and watched is None:  # not read before this listing: read now, once
            watched = self._store.get_many(list(self._index.watched_post_ids()))
        watches = (watched or {}) if changed else {}
        step = observe(
            health, listing, now, watched=posts_at_risk(watches.values(), changed), workspace=self._workspace
        )
        if step.suspect:
            logger.warning(
                "Genviral's account listing misses every known account; no change decided until the next listing",
                extra={"listed": len(listing.accounts), "known": len(health.accounts)},
            )
        if not self._commit(step.state, version, step.notices):
            return HealthReport()
        if step.deferred:
            logger.info(
                "More account changes than one commit holds; the rest at the next tick",
                extra={"deferred": step.deferred},
            )
        for notice in step.notices:
            disconnected = notice.event_type == "account.disconnected"
            emit(Metric.ACCOUNTS_DISCONNECTED if disconnected else Metric.ACCOUNTS_RECONNECTED)
            logger.warning(
                "Account disconnected" if disconnected else "Account reconnected",
                extra={**notice.log_keys(), "posts_at_risk": notice.posts_at_risk.count},
            )
        return HealthReport(notices=step.notices)

    def _commit(self, state: AccountHealth, version: int, notices: tuple[AccountStatusEvent, ...]) -> bool:
        """Whether this worker recorded the state (False: another worker recorded its listing first)."""
        try:
            self._notices.commit(
                ACCOUNT_HEALTH_RECORD,
                state.model_dump_json(exclude_defaults=True),  # small: the poller may read it
                expected_version=version,
                notices=notices,
            )
        except StateConflictError:
            logger.info("Another worker recorded the accounts' health first; nothing more to do")
            return False
        return True
