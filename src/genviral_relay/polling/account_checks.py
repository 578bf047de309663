"""When the poller asks a worker for an account health check (`checking/account_health.py`): every
`AccountCheckMinutes` after the last listing, at the next tick after a listing that missed a known account or left
changes to announce, after a failed listing at the next tick once and then backing off (`next_listing_at`); only
while some post is watched or a disconnect awaits its reconnection (an idle deployment lists nothing).

A warm poller reads little: it remembers when the next listing is due and reads the health record again only then
(the record alone says whether a listing confirms a miss, and a worker writes it after the tick that asked), and
once it found nothing watched it looks again an interval later, unless a tick's due checks say a post is."""

from __future__ import annotations

from datetime import datetime, timedelta

from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth
from genviral_relay.notices.ports import NoticeStore
from genviral_relay.polling.ports import WatchIndex
from genviral_relay.rules.account_health import next_listing_at


class AccountChecks:
    def __init__(self, *, store: NoticeStore, index: WatchIndex, every: timedelta) -> None:
        self._store = store
        self._index = index
        self._every = every
        self._not_before: datetime | None = None
        """No listing is due before this (what the last read said); None: read the record."""
        self._idle_until: datetime | None = None
        """Nothing was watched and no reconnection awaited when last looked: look again then (or when a post is due)."""

    def wanted(self, now: datetime, *, watched: bool) -> bool:
        """Whether this tick asks for a listing; `watched`: the tick already knows a post is watched (one is due)."""
        if self._not_before is not None and now < self._not_before:
            return False
        if not watched and self._idle_until is not None and now < self._idle_until:
            return False
        record = self._store.record(ACCOUNT_HEALTH_RECORD)
        health = AccountHealth.model_validate_json(record.state) if record is not None and record.state else None
        due_at = next_listing_at(health, self._every)
        if due_at is not None and now < due_at:
            self._not_before = due_at
            return False
        self._not_before = None  # asked for (or nothing to list for): read again when next asked
        if watched or (health is not None and health.awaiting_reconnect):
            return True
        # A post that waits only for the retry sweep has its accounts final (mostly): nothing at risk to warn of. One
        # that also has an account pending is checked on its own schedule, and a tick with it due lists (`watched`).
        if next(self._index.watched_post_ids(limit=1, awaiting_retry=False), None) is not None:
            return True
        self._idle_until = now + self._every
        return False
