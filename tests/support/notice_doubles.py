"""The notice outbox's store in memory, with the DynamoDB adapter's semantics and call counts (held to it by
`tests/functional/test_notice_store_contract.py`), its views of a workspace as the adapter's."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from genviral_relay.aws.dynamodb_items import view_of
from genviral_relay.errors import StateConflictError
from genviral_relay.models.domain import OutboxTarget
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, scoped
from genviral_relay.notices.outbox import refuse_too_many
from genviral_relay.notices.ports import NoticeDocument, NoticeStore, PendingNotice, RelayRecord


class InMemoryNoticeStore(NoticeStore):
    """`failing_commits`: the next commits raise as a throttled transaction would (nothing stored)."""

    def __init__(self, *, calls: Counter[str] | None = None) -> None:
        """`calls`: the counter of the DynamoDB calls to add to (the watch store's: one table)."""
        self.calls: Counter[str] = calls if calls is not None else Counter()
        self.records: dict[str, RelayRecord] = {}
        """By the table's names: a workspace's record under its scoped name (`models/workspaces.py`)."""
        self.attributes: dict[str, dict[str, str]] = {}
        self.documents: dict[str, NoticeDocument] = {}
        self._pending: dict[str, PendingNotice] = {}
        self.failing_commits = 0
        self._workspace = DEFAULT_WORKSPACE
        self._lock = threading.Lock()

    def in_workspace(self, workspace: str) -> InMemoryNoticeStore:
        """The same records and notices; the records this view reads and commits are `workspace`'s."""
        view = copy.copy(self)
        view._workspace = view_of(workspace)
        view.failing_commits = 0
        return view

    def record(self, name: str) -> RelayRecord | None:
        with self._lock:
            self.calls["get_item"] += 1
            return self.records.get(scoped(name, self._workspace))

    def commit(
        self,
        name: str,
        state: str,
        *,
        expected_version: int,
        notices: Sequence[NoticeDocument],
        owed: Collection[OutboxTarget],
        committed_at: datetime,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        refuse_too_many(notices)
        key = scoped(name, self._workspace)
        with self._lock:
            self.calls["transact_write_items" if notices else "put_item"] += 1
            if self.failing_commits:
                self.failing_commits -= 1
                raise RuntimeError("ProvisionedThroughputExceededException")
            stored = self.records.get(key)
            if (stored.version if stored else 0) != expected_version:
                raise StateConflictError(name)
            self.records[key] = RelayRecord(expected_version + 1, state)
            self.attributes[key] = dict(attributes or {})
            for notice in notices:
                self.documents[notice.event_id] = notice
                if owed:
                    self._pending[notice.event_id] = PendingNotice(notice, frozenset(owed), committed_at)

    def pending(self) -> list[PendingNotice]:
        with self._lock:
            self.calls["query"] += 1
            owed = (one for one in self._pending.values() if one.owed)
            return sorted(owed, key=lambda one: (one.committed_at, one.notice.event_id))

    def any_owed(self, committed_by: datetime) -> bool:
        with self._lock:
            self.calls["query"] += 1
            return any(one.owed and one.committed_at <= committed_by for one in self._pending.values())

    def empty(self, event_id: str) -> None:
        """Leave the pending entry with nothing owed, as a crash between two calls of 0.5's `acknowledge` did."""
        with self._lock:
            pending = self._pending[event_id]
            self._pending[event_id] = PendingNotice(pending.notice, frozenset(), pending.committed_at)

    def acknowledge(self, event_id: str, done: Collection[OutboxTarget]) -> None:
        if not done:
            return
        with self._lock:
            self.calls["delete_item"] += 1  # deleted at once unless it owes another target
            pending = self._pending.get(event_id)
            if pending is None:
                return
            owed = pending.owed - set(done)
            if owed:
                self.calls["update_item"] += 1
                self._pending[event_id] = PendingNotice(pending.notice, owed, pending.committed_at)
            else:
                del self._pending[event_id]

    def notice(self, event_id: str) -> NoticeDocument | None:
        with self._lock:
            self.calls["get_item"] += 1
            return self.documents.get(event_id)
