"""The Genviral pause as the state table keeps it: a record of the notice outbox (`GENVIRAL_PAUSE`), whose `until` and
`reason` are also plain attributes of the item, as 0.4 wrote them (0.4's functions read those during an update)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from genviral_relay.clock import parse_ts

PAUSE_RECORD = "GENVIRAL_PAUSE"
"""The pause's record name (its sort key under `pk = "relay"`)."""


class PauseRecord(BaseModel):
    """One pause, from the refusal that opened it to the answer that closed it (the record's JSON state)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paused_at: datetime
    until: datetime
    """When a call is next tried; a refusal after it (the probe refused again) moves it on."""
    reason: str
    """The refusal that opened the pause (`describe_refusal`: never the key)."""
    http_status: int | None
    """Genviral's status for it; None when the secret could not be read."""
    error_code: str | None = None
    """Genviral's error code for it: with `http_status`, what a later refusal is compared with (another cause, a
    new pause)."""
    resumed_at: datetime | None = None
    """When a call was answered again: the pause is closed (`relay.resumed` went with it)."""


@dataclass(frozen=True)
class PauseStatus:
    """The pause as one read found it: whether calls stop now, and whether a pause is still open (a resume owed)."""

    reason: str | None = None
    """Why calls to Genviral stop now (the stored `until` is still ahead); None: calls go."""
    version: int = 0
    """The record's version (0: never committed by 0.5)."""
    record: PauseRecord | None = None
    """The last pause, open or closed; None before 0.5's first (a pause 0.4 wrote has only `until` and `reason`)."""

    @property
    def open(self) -> bool:
        """A pause began and no answer has closed it: the first call Genviral answers closes it."""
        return self.record is not None and self.record.resumed_at is None

    @classmethod
    def read(
        cls, now: datetime, *, version: int, state: str | None, until: str | None, reason: str | None
    ) -> PauseStatus:
        """From the stored item's fields (`state`: the record's JSON, absent from an item 0.4 wrote)."""
        ends = parse_ts(until)
        return cls(
            reason=(reason or "paused") if ends is not None and ends > now else None,
            version=version,
            record=PauseRecord.model_validate_json(state) if state else None,
        )
