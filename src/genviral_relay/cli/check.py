"""`check POST_ID`: what the relay would make of a post now, without writing or publishing anything."""

from __future__ import annotations

import argparse

from genviral_relay.checking.pause import describe_refusal
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.deployment_settings import GENVIRAL_READS, POLICY_READS, STORE_READS
from genviral_relay.cli.output import CliError, Console
from genviral_relay.clock import format_ts, format_ts_or_none
from genviral_relay.errors import (
    GenviralConfigError,
    GenviralError,
    GenviralNotFoundError,
    TokenUnavailableError,
    echoed,
)
from genviral_relay.models.api import AccountView, WatchView
from genviral_relay.models.events import AccountEvent, RelayEvent
from genviral_relay.models.workspaces import workspace_of

READS = (*GENVIRAL_READS, *STORE_READS, *POLICY_READS)
"""The deployment settings `check` reads (the store only when the table is known)."""


def genviral_problem(error: GenviralError, post_id: str) -> CliError:
    """One line for an operator, never the key."""
    if isinstance(error, GenviralNotFoundError):
        return CliError(f"Genviral has no post {post_id} in this key's scope (HTTP 404)", kind="not_found")
    if isinstance(error, TokenUnavailableError):  # the operator's own terminal: the SDK's detail helps
        return CliError(str(error), kind="genviral")
    if isinstance(error, GenviralConfigError):
        return CliError(describe_refusal(error), kind="genviral")
    return CliError(f"Genviral could not answer for post {post_id}: {type(error).__name__}: {error}", kind="genviral")


def run(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    post_id: str = args.post_id
    # The watch's own workspace's key, when the post is watched: its key is the one whose scope holds the post.
    stored = deployment.store().get(post_id) if deployment.value("table") is not None else None
    workspace = deployment.workspace(args.workspace, watched_in=workspace_of(stored.workspace) if stored else None)
    try:
        preview = deployment.check_preview(workspace).run(post_id)
    except GenviralError as error:
        raise genviral_problem(error, post_id) from None
    post, stored, plan = preview.post, preview.stored, preview.plan
    detection, next_check = plan.detection, plan.next_check_at
    accounts = [AccountView.of(account_id, state) for account_id, state in sorted(detection.accounts.items())]
    compared_with = "stored_watch" if stored is not None else "first_sighting"

    console.result(
        {
            "post_id": post_id,
            "workspace": workspace,
            "status": post.status,
            "scheduled_at": post.scheduled_at,
            "accounts": [account.model_dump(mode="json") for account in accounts],
            "compared_with": compared_with,
            "stored_watch": WatchView.of(stored).model_dump(mode="json") if stored is not None else None,
            "would_emit": [event.model_dump(mode="json") for event in detection.events],
            "would_watch": next_check is not None,
            "awaiting_retry": plan.awaiting_retry,
            "next_check_at": format_ts_or_none(next_check),
        }
    )
    scheduled = post.scheduled_at or "for immediate publishing"
    console.say(f"post {post_id} (workspace {workspace}): {post.status}, scheduled {scheduled}")
    console.table([_account_row(account) for account in accounts])
    if stored is None:
        console.say("compared with: nothing stored (a first sighting)")
    else:
        console.say(
            f"compared with: the stored watch (version {stored.version}, "
            f"{'watching' if stored.watching else f'ended: {stored.ended_reason}'}, "
            f"{len(stored.outbox)} pending deliveries)"
        )
    console.say(f"would emit {len(detection.events)} event(s):")
    console.table([_event_row(event) for event in detection.events])
    when = format_ts(next_check) if next_check is not None else "never (finished)"
    console.say(f"next check: {when}{' (a failed account awaits its retry)' if plan.awaiting_retry else ''}")
    console.say("(nothing was written or published)")
    return 0


def _account_row(account: AccountView) -> list[str]:
    detail = echoed(account.published_url or account.error_message or "")
    return [f"account {account.account_id}", account.status, detail]


def _event_row(event: RelayEvent) -> list[str]:
    change = f"{event.previous_status or 'null'} -> {event.status}" if isinstance(event, AccountEvent) else ""
    return [event.event_type, event.subject, change, f"event_id {event.event_id}"]
