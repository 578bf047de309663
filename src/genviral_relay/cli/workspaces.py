"""`workspaces`: each workspace of the deployment with its watches, its pause and its last successful Genviral call.

Read from the table only (no key, no Genviral call): the registry the worker keeps from the secret (`WORKSPACES`,
`models/workspace_registry.py`), every watch, and each workspace's own records through its view of the table. A
workspace the secret no longer names is listed as removed, its watches reported (never deleted: put its key back
and they are checked again).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genviral_relay.checking.ports import RelayState
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.deployment_settings import STORE_READS
from genviral_relay.cli.output import Console
from genviral_relay.clock import format_ts_or_none, utc_now
from genviral_relay.errors import echoed
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.workspace_registry import WorkspaceRegistry
from genviral_relay.models.workspaces import workspace_of
from genviral_relay.polling.workspaces import workspace_registry

READS = STORE_READS


@dataclass(frozen=True)
class LastCall:
    """The newest moment the table shows a Genviral answer for a workspace, and the record that shows it."""

    at: datetime
    seen_in: str


def last_successful_call(
    health: AccountHealth | None, state: RelayState, watches: Iterable[WatchRecord]
) -> LastCall | None:
    """No record of its own: every answer the relay keeps leaves a moment in the table. The account listings
    (`ACCOUNT_HEALTH.listed_at`: every `AccountCheckMinutes` while posts are watched; the directory's
    `refreshed_at`), the call that closed a pause (`resumed_at`) and the change a check saw (a watch's
    `changed_at`). A workspace with nothing watched calls nothing, so an old moment there is the truth."""
    pause = state.genviral_pause(utc_now()).record
    directory = state.account_directory()
    found = [
        (health.listed_at if health is not None else None, "account_health"),
        (directory.refreshed_at if directory is not None else None, "account_directory"),
        (pause.resumed_at if pause is not None else None, "pause_resumed"),
        (max((w.changed_at for w in watches if w.changed_at is not None), default=None), "watch_changed"),
    ]
    moments = [LastCall(at, seen_in) for at, seen_in in found if at is not None]
    return max(moments, key=lambda call: call.at, default=None)


def _health(state: RelayState) -> AccountHealth | None:
    record = state.notices.record(ACCOUNT_HEALTH_RECORD)
    return AccountHealth.model_validate_json(record.state) if record is not None else None


def _status(name: str, registry: WorkspaceRegistry) -> str:
    if name in registry.workspaces:
        return "active"
    if name in registry.removed:
        return "removed"
    return "unknown"  # watches of a workspace the registry never named (it is read from the secret every 5 minutes)


def run(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    store = deployment.store()
    now = utc_now()
    registry, _ = workspace_registry(store.notices)  # before the first sync: `default` alone
    by_workspace: dict[str, list[WatchRecord]] = defaultdict(list)
    for record in store.watches():
        by_workspace[workspace_of(record.workspace)].append(record)
    named = set(registry.workspaces) | set(registry.removed)
    reports = []
    for name in sorted(named | set(by_workspace)):
        view = store.in_workspace(name)
        watches = by_workspace.get(name, [])
        pause = view.genviral_pause(now)
        last = last_successful_call(_health(view), view, watches)
        status = _status(name, registry)
        removed_at = registry.removed.get(name) if status == "removed" else None
        reports.append(
            {
                "workspace": name,
                "status": status,
                "removed_at": format_ts_or_none(removed_at),
                "watching": sum(record.watching for record in watches),
                "stopped": sum(not record.watching for record in watches),
                "paused_until": format_ts_or_none(pause.record.until if pause.record is not None else None)
                if pause.reason is not None
                else None,
                "pause_reason": echoed(pause.reason) if pause.reason is not None else None,
                "last_successful_call": format_ts_or_none(last.at if last is not None else None),
                "last_successful_call_seen_in": last.seen_in if last is not None else None,
                # A removed workspace's watches are listed: they stay in the table until its key comes back.
                "post_ids": sorted(record.post_id for record in watches) if status != "active" else None,
            }
        )
    problem = echoed(registry.error) if registry.error else None
    console.result(
        {
            "workspaces": reports,
            "synced_at": format_ts_or_none(registry.synced_at),
            "secret_error": problem,
        }
    )
    _print(console, reports, registry, problem)
    return 0


def _print(console: Console, reports: list[dict[str, Any]], registry: WorkspaceRegistry, problem: str | None) -> None:
    console.table(
        [["WORKSPACE", "STATUS", "WATCHING", "STOPPED", "PAUSED UNTIL", "LAST SUCCESSFUL CALL"]]
        + [
            [
                report["workspace"],
                report["status"],
                str(report["watching"]),
                str(report["stopped"]),
                report["paused_until"] or "-",
                report["last_successful_call"] or "never",
            ]
            for report in reports
        ]
    )
    console.say(f"{len(reports)} workspace(s)")
    for report in reports:
        if report["pause_reason"] is not None:
            console.say(f"{report['workspace']}: paused: {report['pause_reason']}")
        if report["post_ids"]:
            console.say(
                f"{report['workspace']}: {report['status']}, its watches are kept, not checked: "
                + ", ".join(report["post_ids"])
            )
    if registry.synced_at is None:
        console.note("note: no workspace registry yet (the worker writes it from the secret): `default` assumed")
    if problem is not None:
        console.note(f"note: the Genviral secret is not usable, calls are paused: {problem}")
