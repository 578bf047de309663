"""What the relay remembers of the accounts' health between two listings of `GET /accounts` (the `ACCOUNT_HEALTH`
record of the notice outbox): the rule is `rules/account_health.py`, the use case `checking/account_health.py`, and
the poller reads it to know when the next listing is due."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from genviral_relay.models.domain import DirectoryEntry

ACCOUNT_HEALTH_RECORD = "ACCOUNT_HEALTH"
"""The record's name in the notice store."""


class AccountHealthEntry(BaseModel):
    """One account as the listings showed it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str | None = Field(description="Its status in the last listing that showed it; None once it vanished.")
    names: DirectoryEntry = Field(
        default_factory=DirectoryEntry, description="How the last listing named it (a vanished account keeps them)."
    )
    missed: int = Field(default=0, ge=0, description="Listings in a row that did not show it.")
    announced: str | None = Field(
        default=None, description="The id of the disconnect announced for it, until it is listed `active` again."
    )
    changes: int = Field(default=0, ge=0, description="Changes announced for it so far: numbers the next one's id.")


class AccountHealth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: dict[str, AccountHealthEntry] = Field(default_factory=dict, description="By account id.")
    counters: dict[str, int] = Field(
        default_factory=dict,
        description="The `changes` of every announced account no longer in `accounts`: an id is never used twice.",
    )
    listed_at: datetime | None = Field(default=None, description="When the last listing answered; None: never.")
    confirm: bool = Field(
        default=False,
        description="List again at the next tick: the last listing missed a known account or left changes unannounced.",
    )
    suspect_since: datetime | None = Field(
        default=None,
        description="Since when listings miss every known account: only a regular listing after it may confirm it.",
    )
    scope: str | None = Field(default=None, description="The listing's key scope (personal, workspace).")
    workspace_id: str | None = Field(
        default=None, description="The listing's workspace; another one is a new baseline."
    )
    quiet_at: datetime | None = Field(
        default=None,
        description="When a check found every watched post final for its accounts and listed nothing (no post at "
        "risk to warn of): the next check counts from here.",
    )
    failures: int = Field(default=0, ge=0, description="Listings failed in a row since the last answered one.")
    failed_at: datetime | None = Field(default=None, description="When the last of them failed.")

    @property
    def awaiting_reconnect(self) -> bool:
        """A disconnect was announced and its reconnection not yet: listings go on even with nothing watched."""
        return any(entry.announced is not None for entry in self.accounts.values())
