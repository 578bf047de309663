"""When the poller asks a worker for an account health check (`checking/account_health.py`): every
`AccountCheckMinutes` after the last listing, at the next tick after a listing that missed a known account, and only
while some post is watched (an idle deployment lists nothing).

One read of the health record per tick at most, and usually none: a warm poller remembers when the next listing is
due and reads the record again only then (the record alone says whether a listing confirms a miss, and a worker
writes it after the tick that asked)."""

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

    def wanted(self, now: datetime, *, watched: bool) -> bool:
        """Whether this tick asks for a listing; `watched`: the tick already knows a post is watched (one is due)."""
        if self._not_before is not None and now < self._not_before:
            return False
        record = self._store.record(ACCOUNT_HEALTH_RECORD)
        health = AccountHealth.model_validate_json(record.state) if record is not None and record.state else None
        due_at = next_listing_at(health, self._every)
        if due_at is not None and now < due_at:
            self._not_before = due_at
            return False
        self._not_before = None  # asked for (or nothing watched): read again at the next tick
        return watched or next(self._index.watched_post_ids(limit=1), None) is not None
