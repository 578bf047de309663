"""`events list|show`: the event feed of a deployment (as `GET /events` serves it) and one event's deliveries; each
named by what it is about (a post, an account, the relay, an endpoint)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.deployment_settings import STORE_READS
from genviral_relay.cli.output import CliError, Console
from genviral_relay.errors import CursorExpiredError, EventNotFoundError
from genviral_relay.feed.reader import EventFeed
from genviral_relay.models.feed_api import DeliveryView, EventStoryResponse, FeedResponse, documents, event_not_found
from genviral_relay.rules.cursors import CursorError
from genviral_relay.webhook_factories import build_event_feed

READS = STORE_READS


def feed_of(deployment: Deployment) -> EventFeed:
    return build_event_feed(deployment.require("table"), deployment.event_retention(), client=deployment.client)


def subject(document: dict[str, Any]) -> str:
    """What a feed document is about, for an operator's line: its post, or (a notice, about no post) its account,
    the relay, or the webhook endpoint."""
    for field, name in (("post_id", "post"), ("account_id", "account"), ("webhook_id", "webhook")):
        if isinstance(value := document.get(field), str):
            return f"{name} {value}"
    return "the relay" if str(document.get("event_type", "")).startswith("relay.") else "-"


def run_list(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    try:
        page = feed_of(deployment).page(
            after=args.after,
            limit=args.limit,
            event_type=args.event_type,
            post_id=args.post_id,
            workspace=args.workspace,
        )
    except (CursorError, CursorExpiredError) as error:
        expired = isinstance(error, CursorExpiredError)
        reason = f"--after is older than the feed keeps ({error}); leave it out" if expired else f"--after: {error}"
        raise CliError(reason, kind="usage" if not expired else "failed") from None
    data = documents(page.entries)
    console.result(FeedResponse(data=data, next=page.next).model_dump(mode="json"))
    rows = [[d["event_id"], d["event_type"], subject(d), d.get("detected_at") or "-"] for d in data]
    console.table([["EVENT", "TYPE", "SUBJECT", "DETECTED AT"], *rows])
    console.say(f"{len(data)} event(s); next page: --after {page.next}")
    return 0


def run_show(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    try:
        story = feed_of(deployment).story(args.event_id)
    except EventNotFoundError:
        raise CliError(event_not_found(args.event_id), kind="not_found") from None
    event = documents([story.entry])[0]
    views = [DeliveryView.of(state) for state in story.deliveries]
    console.result(EventStoryResponse(event=event, deliveries=views).model_dump(mode="json"))
    console.say(f"{event.get('event_type', '-')} about {subject(event)}")
    console.say(json.dumps(event, indent=2, sort_keys=True))
    console.table(
        [["WEBHOOK", "STATE", "ATTEMPTS", "LAST ATTEMPT", "NEXT ATTEMPT", "LAST STATUS"]]
        + [
            [v.webhook_id, v.state, str(v.attempts), v.last_attempt_at or "-", v.next_attempt_at or "-",
             str(v.last_status) if v.last_status is not None else "-"]
            for v in views
        ]
    )  # fmt: skip
    console.say(f"{len(views)} deliver(ies)")
    return 0
