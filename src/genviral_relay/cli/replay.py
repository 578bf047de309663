"""`replay`: publish stored events again, under their original ids, through the relay's publishers."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from genviral_relay.checking.ports import EventSelection
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.deployment_settings import STORE_READS, TARGETS_READS
from genviral_relay.cli.output import CliError, Console, PartlyDone
from genviral_relay.clock import moment_from, utc_now
from genviral_relay.models.domain import publish_targets
from genviral_relay.models.events import AccountEvent, RelayEvent

READS = (*TARGETS_READS, *STORE_READS)
"""The deployment settings `replay` reads (the targets' only without --target)."""
MOMENT_HELP = "now, a time ago (90m, 12h, 7d, 2w) or ISO-8601 (UTC unless it says otherwise)"


def moment(text: str) -> datetime:
    """A time as `--since`/`--until` take it: the relay's one notation (`clock.moment_from`, as DiscoverSince)."""
    try:
        return moment_from(text, utc_now())
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def summary(event: RelayEvent) -> dict[str, Any]:
    """The fields an operator scans a list of events by."""
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "detected_at": event.detected_at,
        "post_id": event.post_id,
        **({"account_id": event.account_id} if isinstance(event, AccountEvent) else {}),
    }


def event_rows(events: list[RelayEvent]) -> list[list[str]]:
    return [
        [event.detected_at, event.event_type, f"post {event.post_id}", f"event_id {event.event_id}"] for event in events
    ]


def run(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    selection = EventSelection(
        post_id=args.post_id, event_ids=frozenset(args.event_ids or ()), since=args.since, until=args.until
    )
    targets = deployment.configured_targets() if args.target is None else publish_targets(args.target)
    publishers = deployment.publishers(targets)  # every destination known before anything is asked
    events = deployment.store().find_events(selection)
    missing = sorted(selection.event_ids - {event.event_id for event in events})
    if missing:
        console.note(f"note: not stored (expired, or another post's): {', '.join(missing)}")
    if not events:
        raise CliError("no stored event matches the selection", kind="not_found")

    console.say(f"{len(events)} stored event(s) to republish to {', '.join(targets)}:")
    console.table(event_rows(events))
    document: dict[str, Any] = {"dry_run": args.dry_run, "targets": list(targets), "events": list(map(summary, events))}
    if args.dry_run:
        console.result(document)
        console.say("(dry run: nothing was sent)")
        return 0

    console.confirm(
        f"Republish {len(events)} event(s) to {', '.join(targets)} under their original ids?", assume_yes=args.yes
    )
    published: dict[str, list[str]] = {}
    failed: dict[str, dict[str, str]] = {}
    for publisher in publishers:
        result = publisher.publish(events)
        published[publisher.target] = sorted(result.published)
        failed[publisher.target] = {event_id: failure.reason for event_id, failure in sorted(result.failed.items())}
        console.say(f"{publisher.target}: {len(result.published)} published, {len(result.failed)} failed")
        for event_id, reason in failed[publisher.target].items():
            console.say(f"  failed event_id {event_id}: {reason}")
    # "delivered": the result's key since 0.3 (scripts read it); it lists the events each target took.
    console.result({**document, "delivered": published, "failed": failed})
    failures = sum(len(reasons) for reasons in failed.values())
    if failures:
        went = sum(len(ids) for ids in published.values())
        problem = PartlyDone if went else CliError
        raise problem(f"{failures} publishes failed, {went} went; run the same replay again once the target takes them")
    return 0
