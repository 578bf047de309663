"""Naming the accounts in events: a directory of what `GET /accounts` lists, kept in the table.

Pure rules first (when to list again, what an event says of an account), then the use case the check
calls when it is about to emit. Enrichment never holds an event back: Genviral lists only active
accounts, so a revoked or removed one is named by its id alone, and a failed listing is a metric and
a log line, never an error of the check.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta

from genviral_relay.checking.ports import AccountSource, RelayState
from genviral_relay.clock import Clock
from genviral_relay.errors import GenviralError
from genviral_relay.models.domain import AccountDirectory, DirectoryEntry
from genviral_relay.models.events import AccountRef
from genviral_relay.models.upstream import Account, AccountListing
from genviral_relay.observability import Metric, emit, logger

RETRY_AFTER = timedelta(minutes=5)
"""At most one listing per this long, whatever asks for it (an unknown id, the TTL, a failed listing)."""
DIRECTORY_TTL = timedelta(hours=1)
"""A directory older than this is listed again (names and platforms change rarely)."""


def needs_refresh(directory: AccountDirectory | None, wanted_ids: Iterable[str], now: datetime) -> bool:
    """Whether to list the accounts before naming `wanted_ids`: one of them is unknown, or the directory
    is older than the TTL, and no listing was asked for in the last `RETRY_AFTER`."""
    if directory is None:
        return True
    if directory.last_attempt_at is not None and now - directory.last_attempt_at < RETRY_AFTER:
        return False
    if directory.refreshed_at is None or now - directory.refreshed_at >= DIRECTORY_TTL:
        return True
    return any(account_id not in directory.accounts for account_id in wanted_ids)


def directory_of(accounts: Iterable[Account], now: datetime) -> AccountDirectory:
    """The directory of a successful listing."""
    return AccountDirectory(
        accounts={
            account.id: DirectoryEntry(
                platform=account.platform,
                username=account.username,
                display_name=account.display_name,
                type=account.type,
            )
            for account in accounts
        },
        refreshed_at=now,
        last_attempt_at=now,
    )


def describe(directory: AccountDirectory | None, account_id: str) -> AccountRef:
    """The account as an event names it: its id, and what the directory knows (nulls if nothing)."""
    entry = directory.accounts.get(account_id) if directory is not None else None
    if entry is None:
        return AccountRef(id=account_id)
    return AccountRef(id=account_id, **entry.model_dump())


class AccountLookup:
    """Names accounts from the stored directory, listing them again when the rules say so.

    Never raises: every failure is logged, counted (`AccountDirectoryFailures`) and answered with what
    is known (at worst, ids alone). `source` None: no listing at all (ids and stored names only).
    `listened`: told of each listing it makes (the account health check records it, so one listing of
    `GET /accounts` serves both and the next account check counts from it); its failure is logged, never
    the naming's.
    """

    def __init__(
        self,
        *,
        state: RelayState,
        source: AccountSource | None,
        clock: Clock,
        listened: Callable[[AccountListing], object] | None = None,
    ) -> None:
        self._state = state
        self._source = source
        self._clock = clock
        self._listened = listened

    def describe(self, account_ids: Collection[str]) -> dict[str, AccountRef]:
        directory = self._directory()
        now = self._clock()
        if self._source is not None and needs_refresh(directory, account_ids, now):
            directory = self._refresh(self._source, directory, now)
        return {account_id: describe(directory, account_id) for account_id in account_ids}

    def _directory(self) -> AccountDirectory | None:
        try:
            return self._state.account_directory()
        except Exception as error:  # enrichment is best effort: the event goes out anyway
            self._failed("The account directory could not be read", error)
            return None

    def _refresh(
        self, source: AccountSource, directory: AccountDirectory | None, now: datetime
    ) -> AccountDirectory | None:
        try:
            listing = source.list_accounts()
        except GenviralError as error:
            self._failed("Genviral did not list the accounts; events name them by id", error, status=error.status)
            attempted = (directory or AccountDirectory()).model_copy(update={"last_attempt_at": now})
            self._save(attempted)
            return directory
        fresh = self.remember(listing.accounts, now)
        if self._listened is not None:
            try:
                self._listened(listing)
            except Exception:  # the names stand; the next account check lists on its own
                logger.exception("The accounts' health could not record the naming listing")
        return fresh

    def remember(self, listing: Iterable[Account], now: datetime) -> AccountDirectory:
        """Keep what a successful listing said (the account health check's listings keep the directory fresh)."""
        fresh = directory_of(listing, now)
        logger.info("Account directory refreshed", extra={"accounts": len(fresh.accounts)})
        self._save(fresh)
        return fresh

    def _save(self, directory: AccountDirectory) -> None:
        try:
            self._state.save_account_directory(directory)
        except Exception as error:  # the next emitting check lists again
            self._failed("The account directory could not be saved", error)

    @staticmethod
    def _failed(message: str, error: Exception, *, status: int | None = None) -> None:
        logger.warning(message, extra={"error_type": type(error).__name__, "error": str(error), "status": status})
        emit(Metric.ACCOUNT_DIRECTORY_FAILURES)
