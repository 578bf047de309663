"""The workspaces the stack serves, as the worker last read them from the secret (the `WORKSPACES` record of the
notice outbox, on the default workspace's view). The poller reads it to know whose posts to tick: it never reads
the secret itself. A workspace the secret no longer names is listed in `removed` (its watches stop, none deleted)
until it is named again; a bad secret leaves the last good list as it was and says why in `error`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, WorkspaceName

WORKSPACES_RECORD = "WORKSPACES"
"""The record's name in the notice store (global: the default workspace's view keeps it under this very name)."""


class WorkspaceRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workspaces: tuple[WorkspaceName, ...] = Field(
        default=(DEFAULT_WORKSPACE,),
        description="The workspaces the secret named at the last good read, sorted. Before the first sync: 0.4's "
        "one workspace, `default`.",
    )
    removed: dict[WorkspaceName, datetime] = Field(
        default_factory=dict,
        description="Workspaces a good read named and a later one no longer did, with when they left: their "
        "watches stop and are kept.",
    )
    synced_at: datetime | None = Field(
        default=None, description="When a sync last wrote the record (the list or the error changed); None: never."
    )
    error: str | None = Field(
        default=None,
        description="Why the last read of the secret was not usable (the relay's own words, never a key); None: it "
        "was.",
    )

    def synced(self, names: Iterable[str], now: datetime, *, default_watched: bool) -> WorkspaceRegistry:
        """After a good read naming `names`: the workspaces it no longer names are removed (as of now), the ones it
        names again are no longer. `default`, assumed before the first sync, is known as any other when it holds
        watches (`default_watched`: a 0.4 stack's, which stop and are kept); otherwise a new stack's first read need
        not name it."""
        named = tuple(sorted(set(names)))
        known = set(self.workspaces) if self.synced_at is not None or default_watched else set()
        left = known - set(named)
        removed = {name: at for name, at in self.removed.items() if name not in named}
        removed.update((name, now) for name in sorted(left))
        return WorkspaceRegistry(workspaces=named, removed=dict(sorted(removed.items())), synced_at=now)

    def failed(self, error: str, now: datetime) -> WorkspaceRegistry:
        """After a read that was not usable: the last good list stays (nothing watched is lost), `error` says why."""
        return self.model_copy(update={"error": error, "synced_at": now})

    def same_as(self, other: WorkspaceRegistry) -> bool:
        """Whether a sync has nothing to write: the same lists and error (when it was written aside)."""
        return (self.workspaces, self.removed, self.error) == (other.workspaces, other.removed, other.error)
