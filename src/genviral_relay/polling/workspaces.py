"""The workspaces' registry, kept by the workers from the secret (`models/workspace_registry.py`).

The poller asks for a sync every `SYNC_EVERY` (the secret's cache time) and at the first tick of its execution
environment; a worker reads the secret afresh and writes the registry when its list changed, so a workspace added
to the secret is ticked, and a removed one stops, within one sync and without a deploy. The poller never reads the
secret: it reads the registry (`workspace_registry`).

A bad or unreadable secret changes no list (nothing already watched is lost): the registry records why, one
ERROR line says so when the reason is new, `SecretUnreadable` counts it (its alarm), and every known workspace's
calls pause as if Genviral had refused its key (`checking/pause.py`), each with its own `relay.paused`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import WorkspaceKeys
from genviral_relay.clock import Clock
from genviral_relay.errors import StateConflictError, TokenUnavailableError
from genviral_relay.models.workspace_registry import WORKSPACES_RECORD, WorkspaceRegistry
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.ports import NoticeStore
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.workspace_scope import working_for

SYNC_EVERY = timedelta(minutes=5)
"""How often the poller asks for a sync: the secret's cache time (`aws/secrets.py`), so a change is seen as soon
as a cached read would see it."""


def workspace_registry(store: NoticeStore) -> tuple[WorkspaceRegistry, int]:
    """The registry as stored and its version (before the first sync: `default` alone, version 0)."""
    record = store.record(WORKSPACES_RECORD)
    if record is None or not record.state:
        return WorkspaceRegistry(), 0
    return WorkspaceRegistry.model_validate_json(record.state), record.version


@dataclass(frozen=True)
class SyncReport:
    registry: WorkspaceRegistry
    """The registry as this sync left it (or found it, when another worker wrote first)."""
    wrote: bool


class WorkspaceSync:
    def __init__(
        self,
        *,
        keys: WorkspaceKeys,
        store: NoticeStore,
        pauses: Callable[[str], GenviralPause],
        clock: Clock,
        default_watched: Callable[[], bool],
    ) -> None:
        """`store`: the default workspace's view of the notice store. `pauses`: each workspace's pause.
        `default_watched`: whether the default workspace holds a watch (asked at the first sync only, when the secret
        does not name it: a 0.4 stack's watches are then reported removed)."""
        self._keys = keys
        self._store = store
        self._pauses = pauses
        self._clock = clock
        self._default_watched = default_watched

    def run(self) -> SyncReport:
        registry, version = workspace_registry(self._store)
        try:
            names = self._keys.names(refresh=True)
        except TokenUnavailableError as error:
            return self._unusable(registry, version, error)
        first = registry.synced_at is None and DEFAULT_WORKSPACE not in names
        updated = registry.synced(names, self._clock(), default_watched=first and self._default_watched())
        if version and updated.same_as(registry):
            return SyncReport(registry, wrote=False)
        if not self._commit(updated, version):
            return SyncReport(registry, wrote=False)
        added = sorted(set(updated.workspaces) - set(registry.workspaces))
        removed = sorted(set(updated.removed) - set(registry.removed))
        if first and DEFAULT_WORKSPACE in removed:
            logger.warning(
                "The Genviral secret does not name the workspace default, which holds this stack's watches from "
                "before several workspaces: they stop, kept, until the secret names default again",
                extra={"workspaces": list(updated.workspaces)},
            )
        if added or removed or registry.error:
            logger.info(
                "The workspaces changed in the Genviral secret"
                if added or removed
                else "The Genviral secret is usable again",
                extra={"workspaces": list(updated.workspaces), "added": added, "removed": removed},
            )
        return SyncReport(updated, wrote=True)

    def _unusable(self, registry: WorkspaceRegistry, version: int, error: TokenUnavailableError) -> SyncReport:
        emit(Metric.SECRET_UNREADABLE)
        wrote = False
        if registry.error != error.problem:
            # Once per distinct problem (the record remembers it), not once per sync. The problem's names are the
            # operator's: each workspace's `relay.paused` has the neutral `summary` (`aws/secret_forms.py`).
            logger.error(
                "The Genviral secret is not usable; the workspaces stay as last read and their calls pause",
                extra={"problem": error.problem, "workspaces": list(registry.workspaces)},
            )
            updated = registry.failed(error.problem, self._clock())
            wrote = self._commit(updated, version)
            registry = updated if wrote else registry
        failures = 0
        for workspace in registry.workspaces:
            with working_for(workspace, among=registry.workspaces):  # its pause's lines and figures
                try:
                    self._pauses(workspace).refused(error)
                except Exception:  # the other workspaces pause all the same; the message fails and comes back
                    logger.exception("Could not pause a workspace's Genviral calls", extra={"workspace": workspace})
                    failures += 1
        if failures:
            raise RuntimeError(f"{failures} workspace(s) could not be paused after an unusable secret")
        return SyncReport(registry, wrote=wrote)

    def _commit(self, registry: WorkspaceRegistry, version: int) -> bool:
        """Whether this worker wrote it (False: another worker synced first, from a read as recent)."""
        try:
            self._store.commit(
                WORKSPACES_RECORD,
                registry.model_dump_json(),
                expected_version=version,
                notices=(),
                owed=(),
                committed_at=self._clock(),
            )
        except StateConflictError:
            logger.info("Another worker synced the workspaces first; nothing more to do")
            return False
        return True
