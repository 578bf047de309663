"""Numbering the documents of one detection: their deterministic ids and each account's `sequence`.

Pure. An id is keyed on what the document reports and on how many times that was seen before
(`WatchRecord.occurrences`), so a repeat Genviral gives no attempt time for still gets its own id.
`sequence` numbers an account's documents 1, 2, 3, ... in the order the relay made them; the last
number is kept on the account's snapshot (`AccountSnapshot.sequence`), committed with the documents,
so a detection run again on the same stored watch (a crash before the commit) gives the same
numbers, and a stored document (outbox, replay) keeps its own.

A silent detection (a discover baseline) counts what it saw, so later ids stay distinct, but takes
no number: the account's snapshot says 0 (none yet).
"""

from __future__ import annotations

import uuid

from genviral_relay.models.domain import WatchRecord

# Fixed namespace for event ids: changing it would re-key every event ever published.
EVENT_ID_NAMESPACE = uuid.UUID("6a4e2b8c-3f1d-5e7a-9c0b-1d2e3f4a5b6c")


def make_event_id(post_id: str, key: str, occurrence: int) -> str:
    """Deterministic id: same post, outcome and occurrence -> same id; anything else -> another id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{post_id}|{key}|{occurrence}"))


class Numbering:
    """The ids and numbers one detection gives, from the stored watch it runs against."""

    def __init__(self, post_id: str, previous: WatchRecord | None, *, silent: bool = False) -> None:
        self._post_id = post_id
        self._known = previous.accounts if previous is not None else {}
        self._stored = previous.occurrences if previous is not None else {}
        self.occurrences = dict(self._stored)
        self._silent = silent
        self._sequences: dict[str, int] = {}

    def event_id(self, key: str) -> str:
        """The id of the next document keyed `key` (an account key starts with the account's id)."""
        occurrence = self.occurrences.get(key, 0)
        self.occurrences[key] = occurrence + 1
        return make_event_id(self._post_id, key, occurrence)

    def account_event(self, account_id: str, key: str) -> tuple[str, int | None]:
        """(id, sequence) of the next document about `account_id` (sequence None in a silent detection)."""
        last = self._last(account_id)
        event_id = self.event_id(key)
        number = last if self._silent else last + 1
        self._sequences[account_id] = number
        return event_id, None if self._silent else number

    def sequence_of(self, account_id: str) -> int | None:
        """What the account's snapshot keeps: the last number taken (None: this detection took none, nor had any
        stored since 0.5)."""
        if account_id in self._sequences:
            return self._sequences[account_id]
        before = self._known.get(account_id)
        return before.sequence if before is not None else None

    def _last(self, account_id: str) -> int:
        if account_id in self._sequences:
            return self._sequences[account_id]
        before = self._known.get(account_id)
        if before is not None and before.sequence is not None:
            return before.sequence
        # shim: sequence-from-occurrences (docs/compatibility.md)
        # A watch stored by 0.4 keeps no number: each of the account's earlier outcomes and delays (the keys
        # that start with its id) took one, so the numbers go on increasing from their count.
        prefix = f"{account_id}|"
        return sum(count for key, count in self._stored.items() if key.startswith(prefix))
