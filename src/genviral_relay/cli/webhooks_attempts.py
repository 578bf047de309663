"""`webhooks attempts WEBHOOK_ID`: an endpoint's attempt log, newest first (as GET /webhooks/{id}/attempts), on the
deployment's table."""

from __future__ import annotations

import argparse

from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.deployment_settings import STORE_READS
from genviral_relay.cli.output import CliError, Console, Exit
from genviral_relay.clock import format_ts
from genviral_relay.errors import WebhookNotFoundError
from genviral_relay.models.attempt_api import AttemptsResponse, AttemptView
from genviral_relay.models.webhooks import webhook_not_found
from genviral_relay.rules.cursors import CursorError
from genviral_relay.webhook_factories import build_delivery_log, build_webhook_store
from genviral_relay.webhooks.attempt_log import AttemptLog

READS = STORE_READS


class BadCursor(CliError):
    """A cursor this endpoint's listing did not write: the command line is wrong (exit code 2)."""

    kind = "usage"
    exit_code = Exit.USAGE


def run(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    table = deployment.require("table")
    retention = deployment.event_retention()
    log = AttemptLog(
        store=build_webhook_store(table, client=deployment.client),
        log=build_delivery_log(table, retention, client=deployment.client),
    )
    try:
        found = log.page(args.webhook_id, after=args.after, limit=args.limit, outcome=args.outcome)
    except WebhookNotFoundError:
        raise CliError(webhook_not_found(args.webhook_id), kind="not_found") from None
    except CursorError as error:
        raise BadCursor(f"--after: {error}") from None
    views = [AttemptView.of(entry) for entry in found.entries]
    console.result(AttemptsResponse(data=views, next=found.next).model_dump(mode="json"))
    rows = [["AT", "EVENT", "TYPE", "ATTEMPT", "OUTCOME", "STATUS", "MS", "REASON"]]
    for view in views:
        status = str(view.status) if view.status is not None else "-"
        rows.append([format_ts(view.at), view.event_id, view.event_type, str(view.attempt), view.outcome, status,
                     str(view.duration_ms), view.reason or "-"])  # fmt: skip
    console.table(rows)
    console.say(f"{len(views)} attempt(s)")
    if found.next is not None:
        console.say(f"older: --after {found.next}")
    return 0
