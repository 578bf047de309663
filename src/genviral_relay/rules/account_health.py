"""Account health: what one listing of `GET /accounts` says changed since the last one, as `account.disconnected` /
`account.reconnected` notices. Pure: the use case (`checking/account_health.py`) lists, reads the watched posts
when a change may be announced, and commits what this answers.

Genviral documents that the listing holds active accounts only, yet gives each a `status`: an account leaves
`active` either listed with another status, or by vanishing. A vanished account counts only once a second listing
in a row misses it (a listing that misses a known account asks for a confirming one at the next tick), so an
account missing from one listing and back in the next is no change. Only the accounts that watched posts target are
announced; any other's status is remembered silently. A failed listing is never observed: no false disconnect.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from genviral_relay.clock import format_ts, parse_ts
from genviral_relay.models.account_health import AccountHealth, AccountHealthEntry
from genviral_relay.models.domain import FINAL_STATUSES, DirectoryEntry, WatchRecord
from genviral_relay.models.events import AccountRef
from genviral_relay.models.relay_notices import (
    POSTS_AT_RISK_LISTED,
    AccountStatusEvent,
    AccountStatusType,
    PostsAtRisk,
)
from genviral_relay.models.upstream import Account
from genviral_relay.rules.endpoint_health import NOTICE_NAMESPACE

ACTIVE = "active"
VANISHED_AFTER = 2
"""Listings in a row that must miss a known account before it counts as gone."""
NOTHING_AT_RISK = PostsAtRisk(count=0, post_ids=())


def account_event_id(account_id: str, change: int) -> str:
    """Deterministic: the same account's n-th announced change always has the same id (a crash before the commit
    computes it again from the same record)."""
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"account|{account_id}|{change}"))


def next_listing_at(health: AccountHealth | None, every: timedelta) -> datetime | None:
    """When the accounts should next be listed: `every` after the last listing; None: at once (never listed, or the
    last listing missed a known account and asks for a confirming one)."""
    if health is None or health.listed_at is None or health.confirm:
        return None
    return health.listed_at + every


@dataclass(frozen=True)
class _Candidate:
    account_id: str
    event_type: AccountStatusType
    status: str | None
    previous_status: str | None


@dataclass(frozen=True)
class HealthStep:
    state: AccountHealth
    notices: tuple[AccountStatusEvent, ...]


def changed_accounts(health: AccountHealth, listing: Sequence[Account]) -> frozenset[str]:
    """The accounts this listing may announce a change of (whether it does depends on the watched posts): the use
    case reads the watched posts only when there is one."""
    return frozenset(candidate.account_id for candidate in _compare(health, listing)[2])


def observe(
    health: AccountHealth, listing: Sequence[Account], now: datetime, *, watched: Mapping[str, PostsAtRisk]
) -> HealthStep:
    """The record after a successful `listing`, and the notices it produces. `watched`: for each account that
    watched posts target (at least those of `changed_accounts`), its posts at risk; a disconnect of an account not
    in it is remembered silently. A reconnect is announced for every account whose disconnect was."""
    accounts, confirm, candidates = _compare(health, listing)
    notices: list[AccountStatusEvent] = []
    for candidate in candidates:
        entry = accounts[candidate.account_id]
        if candidate.event_type == "account.disconnected" and candidate.account_id not in watched:
            continue
        number = entry.changes + 1
        event_id = account_event_id(candidate.account_id, number)
        disconnect = candidate.event_type == "account.disconnected"
        accounts[candidate.account_id] = entry.model_copy(
            update={"changes": number, "announced": event_id if disconnect else None}
        )
        notices.append(
            AccountStatusEvent(
                event_id=event_id,
                event_type=candidate.event_type,
                detected_at=format_ts(now),
                account_id=candidate.account_id,
                account=AccountRef(id=candidate.account_id, **entry.names.model_dump()),
                status=candidate.status,
                previous_status=candidate.previous_status,
                posts_at_risk=watched.get(candidate.account_id, NOTHING_AT_RISK),
            )
        )
    # A vanished account never announced is forgotten: back later, it is a first sighting.
    kept = {key: entry for key, entry in accounts.items() if entry.status is not None or entry.announced is not None}
    return HealthStep(AccountHealth(accounts=kept, listed_at=now, confirm=confirm), tuple(notices))


def _compare(
    health: AccountHealth, listing: Sequence[Account]
) -> tuple[dict[str, AccountHealthEntry], bool, list[_Candidate]]:
    """Every account's entry after the listing (no announcement applied), whether to confirm a miss at the next
    tick, and the changes that may be announced."""
    listed = {account.id: account for account in listing}
    accounts: dict[str, AccountHealthEntry] = {}
    candidates: list[_Candidate] = []
    for account_id, account in listed.items():
        before = health.accounts.get(account_id)
        status = account.status or ACTIVE  # listed without a status: Genviral lists active accounts
        names = DirectoryEntry(
            platform=account.platform, username=account.username, display_name=account.display_name, type=account.type
        )
        announced = before.announced if before is not None else None
        accounts[account_id] = AccountHealthEntry(
            status=status, names=names, announced=announced, changes=before.changes if before is not None else 0
        )
        if before is None:
            continue  # a first sighting is what the account is, not a change
        if status != ACTIVE and before.status == ACTIVE:
            candidates.append(_Candidate(account_id, "account.disconnected", status, before.status))
        elif status == ACTIVE and announced is not None:
            candidates.append(_Candidate(account_id, "account.reconnected", status, before.status))
    confirm = False
    for account_id, before in health.accounts.items():
        if account_id in listed:
            continue
        if before.status is None:  # gone, and announced (`observe` forgets the others)
            accounts[account_id] = before
            continue
        missed = before.missed + 1
        if missed < VANISHED_AFTER:
            accounts[account_id] = before.model_copy(update={"missed": missed})
            confirm = True
            continue
        accounts[account_id] = before.model_copy(update={"status": None, "missed": missed})
        if before.status == ACTIVE:
            candidates.append(_Candidate(account_id, "account.disconnected", None, before.status))
    return accounts, confirm, candidates


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
