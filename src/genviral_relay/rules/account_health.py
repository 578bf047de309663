"""Account health: what one listing of `GET /accounts` says changed since the last one, as `account.disconnected` /
`account.reconnected` notices. Pure: the use case (`checking/account_health.py`) lists, reads the watched posts
when a change may be announced, and commits what this answers.

Genviral documents that the listing holds active accounts only, yet gives each a `status`: an account leaves
`active` either listed with another status, or by vanishing. A vanished account counts only once a second listing
in a row misses it (a listing that misses a known account asks for a confirming one at the next tick), so an
account missing from one listing and back in the next is no change. Only the accounts that watched posts target are
announced; any other's status is remembered silently, and announced once a watched post targets it while it is still
not active (also at the first listing). An id never listed is unknown, not disconnected.

No false disconnect: a failed listing is never observed (it only spaces the next tries); an item Genviral lists but
the relay cannot read counts as listed, status unknown; a listing that misses every known account (empty, a
glitch, a re-scoped key) is suspect and changes nothing until the next regular listing says the same; another scope
or workspace is a new baseline. One id per change: an account's change counter outlives its entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from genviral_relay.clock import format_ts, parse_ts
from genviral_relay.models.account_health import AccountHealth, AccountHealthEntry
from genviral_relay.models.domain import FINAL_STATUSES, DirectoryEntry, WatchRecord
from genviral_relay.models.events import AccountRef
from genviral_relay.models.relay_notices import (
    MAX_NOTICES_PER_COMMIT,
    POSTS_AT_RISK_LISTED,
    AccountStatusEvent,
    AccountStatusType,
    PostsAtRisk,
)
from genviral_relay.models.upstream import AccountListing
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, scoped
from genviral_relay.rules.endpoint_health import NOTICE_NAMESPACE

ACTIVE = "active"
VANISHED_AFTER = 2
"""Listings in a row that must miss a known account before it counts as gone."""
NOTHING_AT_RISK = PostsAtRisk(count=0, post_ids=())
CONFIRM_SUSPECT_AFTER = timedelta(minutes=5)
"""A listing that misses every known account is confirmed only by one at least this much later (the poller's next
regular listing; not the one-tick confirmation of a single miss): a glitch of Genviral's is no mass disconnect."""
FIRST_RETRY = timedelta(minutes=1)
"""After a second failed listing in a row, the next waits this long, doubling up to the interval."""


def account_event_id(account_id: str, change: int, workspace: str = DEFAULT_WORKSPACE) -> str:
    """Deterministic: the same account's n-th announced change always has the same id (a crash before the commit
    computes it again from the same record). Counted per workspace (its own health record): another workspace than
    `default` (whose ids are 0.4's) names itself, so an account two workspaces list is announced in each."""
    return str(uuid.uuid5(NOTICE_NAMESPACE, scoped(f"account|{account_id}|{change}", workspace)))


def next_listing_at(health: AccountHealth | None, every: timedelta) -> datetime | None:
    """When the accounts should next be listed; None: at once (never listed, a listing to confirm or to finish, or
    the first failure). Failures in a row back off: 2, 4, 8 ... minutes after the last, at most `every`."""
    if health is None:
        return None
    if health.failures and health.failed_at is not None:
        if health.failures == 1:
            return None
        wait: timedelta = min(every, FIRST_RETRY * 2 ** min(health.failures - 1, 16))
        return health.failed_at + wait
    if health.listed_at is None or health.confirm:
        return None
    return max(health.listed_at, health.quiet_at or health.listed_at) + every


def nothing_at_risk(health: AccountHealth, watches: Iterable[WatchRecord]) -> bool:
    """Whether a check may skip its listing: it has a baseline, awaits no reconnection nor confirmation, and every
    watched post is final for each account it targets (it waits only for a URL or a retry, so no post is at risk).
    A watch not yet checked (no accounts known) may target anyone: it is not final."""
    if health.listed_at is None or health.confirm or health.awaiting_reconnect or health.suspect_since is not None:
        return False
    return all(
        watch.accounts and all(account.status in FINAL_STATUSES for account in watch.accounts.values())
        for watch in watches
        if watch.watching
    )


def failed(health: AccountHealth, now: datetime) -> AccountHealth:
    """The record after a listing that failed: nothing observed, the next try spaced."""
    return health.model_copy(update={"failures": health.failures + 1, "failed_at": now})


@dataclass(frozen=True)
class _Candidate:
    account_id: str
    event_type: AccountStatusType
    status: str | None
    previous_status: str | None
    before: AccountHealthEntry | None
    """Its entry before the listing: kept when the change is left for a later listing."""


@dataclass(frozen=True)
class HealthStep:
    state: AccountHealth
    notices: tuple[AccountStatusEvent, ...]
    suspect: bool = False
    """The listing missed every known account: nothing decided until the next regular listing confirms it."""
    deferred: int = 0
    """Changes left for the next listing (over `MAX_NOTICES_PER_COMMIT`)."""


@dataclass(frozen=True)
class _Comparison:
    base: AccountHealth
    accounts: dict[str, AccountHealthEntry]
    confirm: bool
    candidates: list[_Candidate]
    suspect: bool


def changed_accounts(health: AccountHealth, listing: AccountListing, now: datetime) -> frozenset[str]:
    """The accounts this listing may announce a change of (whether it does depends on the watched posts): the use
    case reads the watched posts only when there is one."""
    return frozenset(candidate.account_id for candidate in _compare(health, listing, now).candidates)


def observe(
    health: AccountHealth,
    listing: AccountListing,
    now: datetime,
    *,
    watched: Mapping[str, PostsAtRisk],
    workspace: str = DEFAULT_WORKSPACE,
) -> HealthStep:
    """The record after a successful `listing` (of `workspace`'s accounts), and the notices it produces. `watched`:
    for each account that watched posts target (at least those of `changed_accounts`), its posts at risk; a
    disconnect of an account not in it is remembered silently. A reconnect is announced for every account whose
    disconnect was."""
    compared = _compare(health, listing, now)
    if compared.suspect:
        since = health.suspect_since or now
        update = {"listed_at": now, "confirm": False, "suspect_since": since, "failures": 0, "failed_at": None}
        return HealthStep(health.model_copy(update=update), (), suspect=True)
    accounts = compared.accounts
    notices: list[AccountStatusEvent] = []
    deferred = 0
    for candidate in compared.candidates:
        disconnect = candidate.event_type == "account.disconnected"
        if disconnect and candidate.account_id not in watched:
            continue
        if len(notices) >= MAX_NOTICES_PER_COMMIT:
            _leave_for_later(accounts, candidate)
            deferred += 1
            continue
        entry = accounts[candidate.account_id]
        number = entry.changes + 1
        event_id = account_event_id(candidate.account_id, number, workspace)
        accounts[candidate.account_id] = entry.model_copy(
            update={"changes": number, "announced": event_id if disconnect else None}
        )
        notices.append(
            AccountStatusEvent(
                event_id=event_id,
                workspace=workspace,
                event_type=candidate.event_type,
                detected_at=format_ts(now),
                account_id=candidate.account_id,
                account=AccountRef(id=candidate.account_id, **entry.names.model_dump()),
                status=candidate.status,
                previous_status=candidate.previous_status,
                posts_at_risk=watched.get(candidate.account_id, NOTHING_AT_RISK),
            )
        )
    # A vanished account never announced is forgotten (back later, it is a first sighting); its counter is not.
    kept = {key: entry for key, entry in accounts.items() if entry.status is not None or entry.announced is not None}
    counters = {key: count for key, count in compared.base.counters.items() if key not in kept}
    counters.update({key: entry.changes for key, entry in accounts.items() if key not in kept and entry.changes})
    state = AccountHealth(
        accounts=kept,
        counters=counters,
        listed_at=now,
        confirm=compared.confirm or deferred > 0,
        scope=listing.scope,
        workspace_id=listing.workspace_id,
    )
    return HealthStep(state, tuple(notices), deferred=deferred)


def _leave_for_later(accounts: dict[str, AccountHealthEntry], candidate: _Candidate) -> None:
    """Keep the entry as it was, so that the next listing finds the same change (and numbers it the same)."""
    if candidate.before is None:
        del accounts[candidate.account_id]
    else:
        accounts[candidate.account_id] = candidate.before


def _baseline(health: AccountHealth, listing: AccountListing) -> AccountHealth:
    """The record the listing is compared with: another scope or workspace than the last listing's (when both are
    known) starts a new baseline, keeping only the change counters and the disconnects awaiting their reconnection."""
    if health.scope is None or listing.scope is None:
        return health
    if (health.scope, health.workspace_id) == (listing.scope, listing.workspace_id):
        return health
    counters = dict(health.counters)
    counters.update({key: entry.changes for key, entry in health.accounts.items() if entry.changes})
    awaiting = {
        key: entry.model_copy(update={"status": None, "missed": 0})
        for key, entry in health.accounts.items()
        if entry.announced is not None
    }
    return AccountHealth(accounts=awaiting, counters={k: v for k, v in counters.items() if k not in awaiting})


def _compare(health: AccountHealth, listing: AccountListing, now: datetime) -> _Comparison:
    """Every account's entry after the listing (no announcement applied), whether to list again at the next tick,
    and the changes that may be announced."""
    base = _baseline(health, listing)
    listed = {account.id: account for account in listing.accounts}
    present = listed.keys() | set(listing.unreadable_ids)
    known = {key for key, entry in base.accounts.items() if entry.status is not None}
    misses_all = bool(known) and not known & present
    since = base.suspect_since
    if misses_all and (since is None or now - since < CONFIRM_SUSPECT_AFTER):
        return _Comparison(base, dict(base.accounts), False, [], suspect=True)
    confirmed = misses_all  # a later listing misses them all again: gone
    accounts: dict[str, AccountHealthEntry] = {}
    candidates: list[_Candidate] = []
    for account_id, account in listed.items():
        before = base.accounts.get(account_id)
        status = account.status or ACTIVE  # listed without a status: Genviral lists active accounts
        names = DirectoryEntry(
            platform=account.platform, username=account.username, display_name=account.display_name, type=account.type
        )
        announced = before.announced if before is not None else None
        changes = before.changes if before is not None else base.counters.get(account_id, 0)
        accounts[account_id] = AccountHealthEntry(status=status, names=names, announced=announced, changes=changes)
        previous = before.status if before is not None else None
        if status != ACTIVE and announced is None:
            candidates.append(_Candidate(account_id, "account.disconnected", status, previous, before))
        elif status == ACTIVE and announced is not None:
            candidates.append(_Candidate(account_id, "account.reconnected", status, previous, before))
    confirm = False
    for account_id, before in base.accounts.items():
        if account_id in listed:
            continue
        if account_id in present:  # listed but unreadable: there, status unknown
            accounts[account_id] = before.model_copy(update={"missed": 0})
            continue
        if before.status is None or listing.unidentified:  # gone and announced; or maybe the unreadable item
            accounts[account_id] = before
            continue
        missed = VANISHED_AFTER if confirmed else before.missed + 1
        if missed < VANISHED_AFTER:
            accounts[account_id] = before.model_copy(update={"missed": missed})
            confirm = True
            continue
        accounts[account_id] = before.model_copy(update={"status": None, "missed": missed})
        if before.announced is None:
            candidates.append(_Candidate(account_id, "account.disconnected", None, before.status, before))
    return _Comparison(base, accounts, confirm, candidates, suspect=False)


def posts_at_risk(watches: Iterable[WatchRecord], account_ids: Collection[str]) -> dict[str, PostsAtRisk]:
    """For each of `account_ids` that a watched post targets: the watched posts whose state for it is not final,
    soonest scheduled first (unscheduled ones last), at most `POSTS_AT_RISK_LISTED` of them named."""
    wanted = set(account_ids)
    targeted: dict[str, list[WatchRecord]] = {}
    for watch in watches:
        if not watch.watching:
            continue
        for account_id in wanted.intersection(watch.accounts):
            at_risk = targeted.setdefault(account_id, [])
            if watch.accounts[account_id].status not in FINAL_STATUSES:
                at_risk.append(watch)
    return {
        account_id: PostsAtRisk(
            count=len(at_risk),
            post_ids=tuple(watch.post_id for watch in sorted(at_risk, key=_soonest)[:POSTS_AT_RISK_LISTED]),
        )
        for account_id, at_risk in targeted.items()
    }


def _soonest(watch: WatchRecord) -> tuple[bool, datetime | None, str]:
    scheduled = parse_ts(watch.scheduled_at)
    return (scheduled is None, scheduled, watch.post_id)
