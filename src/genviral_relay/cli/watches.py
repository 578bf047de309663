"""`watches list|add|remove`: the watches of a deployment, with the semantics of the HTTP API."""

from __future__ import annotations

import argparse
from collections import Counter

from genviral_relay.cli.check import genviral_problem
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.deployment_settings import CHECKER_READS, STORE_READS
from genviral_relay.cli.output import CliError, Console
from genviral_relay.clock import format_ts, utc_now
from genviral_relay.errors import GenviralConfigError, OutboxNotEmptyError, StateConflictError, WatchNotFoundError
from genviral_relay.models.api import CheckResponse, WatchView
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, workspace_of

LIST_READS = STORE_READS
ADD_READS = CHECKER_READS
REMOVE_READS = tuple(key for key in CHECKER_READS if key != "secret_arn")
"""The checker publishes the pending events and deletes the watch: it never calls Genviral, so needs no key."""


def run_list(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    store = deployment.store()
    records = sorted(
        (record for record in store.watches() if _selected(record, args)),
        key=lambda record: (record.registered_at, record.post_id),
    )
    workspace = args.workspace or DEFAULT_WORKSPACE
    paused = store.in_workspace(workspace).genviral_pause(utc_now()).reason  # each workspace has its own pause
    console.result(
        {
            "watches": [
                {
                    **WatchView.of(record).model_dump(mode="json"),
                    "awaiting_retry": record.awaiting_retry,
                    "workspace": workspace_of(record.workspace),
                }
                for record in records
            ],
            "genviral_paused": paused,
        }
    )
    # A single-workspace deployment's listing stays as it was; with several, each row names its workspace.
    several = any(workspace_of(record.workspace) != DEFAULT_WORKSPACE for record in records)
    header = ["POST", "STATE", "STATUS", "ACCOUNTS", "NEXT CHECK", "PENDING"] + (["WORKSPACE"] if several else [])
    console.table(
        [header] + [_row(record) + ([workspace_of(record.workspace)] if several else []) for record in records]
    )
    console.say(f"{len(records)} watch(es)")
    if paused is not None:
        console.note(f"note: the Genviral calls of workspace {workspace} are paused: {paused}")
    return 0


def _selected(record: WatchRecord, args: argparse.Namespace) -> bool:
    return (
        (args.state == "all" or record.watching == (args.state == "watching"))
        and (not args.awaiting_retry or record.awaiting_retry)
        and (not args.pending or record.pending_deliveries > 0)
        and (args.workspace is None or workspace_of(record.workspace) == args.workspace)
    )


def _row(record: WatchRecord) -> list[str]:
    state = "watching" if record.watching else f"ended ({record.ended_reason})"
    if record.awaiting_retry:
        state += ", awaiting retry"
    statuses = Counter(account.status for account in record.accounts.values())
    accounts = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())) or "-"
    next_check = format_ts(record.next_check_at) if record.next_check_at is not None else "-"
    return [record.post_id, state, record.post_status or "-", accounts, next_check, str(record.pending_deliveries)]


def run_add(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    post_id: str = args.post_id
    stored = deployment.store().get(post_id)  # a watched post stays in its workspace
    workspace = deployment.workspace(args.workspace, watched_in=workspace_of(stored.workspace) if stored else None)
    # The API's registration: a refused key pauses the workspace's Genviral calls, and a check the
    # poller queued before this one is then a duplicate.
    outcome = deployment.relay(workspace=workspace).check_now(post_id, trigger="register")
    if outcome.result == "post_not_found":
        consequence = "its watch has ended (post_not_found)" if outcome.watch is not None else "nothing was registered"
        raise CliError(f"Genviral has no post {post_id} in this key's scope: {consequence}", kind="not_found")
    message = outcome.deferral
    view = WatchView.of(outcome.watch) if outcome.watch is not None else None
    console.result(
        CheckResponse(result=outcome.result, watch=view, transitions=list(outcome.events), message=message).model_dump(
            mode="json"
        )
    )
    if isinstance(outcome.error, GenviralConfigError):
        problem = genviral_problem(outcome.error, post_id)
        raise CliError(f"{problem}. The watch is kept and checked again once this is fixed.", kind=problem.kind)
    done = "registered" if outcome.created else "already watched"
    console.say(f"post {post_id}: {done} ({outcome.result}) in workspace {workspace}")
    if view is not None:
        console.say(f"  status {view.status or 'not seen yet'}, {'watching' if view.watching else 'ended'}")
        console.say(f"  pending deliveries {view.pending_deliveries}")
    for event in outcome.events:
        console.say(f"  published {event.event_type} {event.subject} event_id {event.event_id}")
    if message is not None:
        console.note(f"note: {message}")
    return 0


def run_remove(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    post_id: str = args.post_id
    record = deployment.store().get(post_id)
    if record is None:
        raise CliError(f"post {post_id} is not watched", kind="not_found")
    count = record.pending_deliveries
    pending = f"; its {count} pending deliveries are published first" if count else ""
    console.confirm(
        f"Stop watching post {post_id} and delete its stored state{pending}? (Stored events stay until they expire)",
        assume_yes=args.yes,
    )
    try:
        deployment.relay(workspace=workspace_of(record.workspace)).unwatch.run(post_id)
    except WatchNotFoundError:
        raise CliError(f"post {post_id} is not watched", kind="not_found") from None
    except OutboxNotEmptyError:
        raise CliError(
            f"post {post_id} still has events that could not be published, so the watch is kept: "
            "fix the target, then try again (refused events are in the events dead-letter queue: `redrive events`)"
        ) from None
    except StateConflictError:
        raise CliError(
            f"post {post_id} changed during the removal; nothing was removed, try again", kind="conflict"
        ) from None
    console.result({"post_id": post_id, "watching": False, "message": "watch removed"})
    console.say(f"post {post_id}: watch removed")
    return 0
