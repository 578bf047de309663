"""The command tree of `genviral-relay`: its commands, their options and the text every --help shows."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Sequence
from functools import partial
from typing import NoReturn

from pydantic import TypeAdapter, ValidationError

from genviral_relay import __version__
from genviral_relay.cli import check, events, redrive, replay, watches, webhooks, webhooks_attempts, workspaces
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.deployment_settings import LOCATION_OPTIONS, SETTINGS, add_deployment_options, setting_options
from genviral_relay.cli.output import ERROR_KINDS, PROG, Console, Exit
from genviral_relay.models.domain import POST_ID_HINT, PUBLISH_CHOICES, PostId
from genviral_relay.models.feed_api import EVENT_ID_HINT, EventId
from genviral_relay.models.workspaces import WORKSPACE_NAME
from genviral_relay.rules.event_feed import FEED_EVENT_TYPES, PAGE_LIMIT

EXIT_MEANINGS = {
    Exit.OK: "done",
    Exit.FAILED: "the operation failed (the reason is on stderr)",
    Exit.USAGE: "the command line is wrong (usage)",
    Exit.PARTIAL: "partly done: some of it went, some did not (the result says which)",
    Exit.NOT_CONFIRMED: "not confirmed: the question was declined or not answered; nothing was changed",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
}
EXIT_CODES = "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_MEANINGS.items())
JSON_ERRORS = textwrap.fill(
    "errors: without --json, one line on stderr (genviral-relay: error: ...); with --json, the last line "
    'on stderr is one JSON object, {"error": KIND, "message": TEXT}, and stdout keeps the result so far, '
    f"if any. KIND: {', '.join(ERROR_KINDS)}.",
    width=100,
)
ROOT_NOTE = (
    "--json, --verbose and a command's deployment options (see its --help) may also come before the\n"
    "command: genviral-relay --json --stack-name relay watches list. A value given after it wins."
)
COMMON_OPTIONS = {
    "json": "--json",
    "verbose": "--verbose",
    **LOCATION_OPTIONS,
    **setting_options([setting.key for setting in SETTINGS]),
}
"""The options the root parser takes for every command (dest: option)."""
WORKSPACE_HELP = (
    "the workspace whose key the post is in (default: the one it is watched in, else the secret's only one; "
    "needed when the secret names several)"
)
Command = Callable[[argparse.Namespace, Deployment, Console], int]

_post_id = TypeAdapter(PostId)


def post_id(value: str) -> str:
    try:
        return _post_id.validate_python(value)
    except ValidationError:
        raise argparse.ArgumentTypeError(POST_ID_HINT) from None


_event_id = TypeAdapter(EventId)


def event_id(value: str) -> str:
    try:
        return _event_id.validate_python(value)
    except ValidationError:
        raise argparse.ArgumentTypeError(EVENT_ID_HINT) from None


def workspace_name(value: str) -> str:
    if not WORKSPACE_NAME.match(value):
        raise argparse.ArgumentTypeError("a workspace is 1 to 40 lower-case letters, digits and dashes")
    return value


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def page_size(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= PAGE_LIMIT:
        raise argparse.ArgumentTypeError(f"{value!r} is not a page size from 1 to {PAGE_LIMIT}")
    return int(value)


class UsageError(Exception):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """Usage errors are raised (and printed by `main`, as JSON with --json) instead of exiting here."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def _add_common_options(parser: argparse.ArgumentParser, reads: Sequence[str], *, root: bool) -> None:
    """--json, --verbose and the deployment options: on the root parser for every command (the settings'
    options unlisted), and on each command for the settings it reads. A command's copies default to
    SUPPRESS: argparse copies a subcommand's defaults over the namespace, so a plain default would
    overwrite a value given before the command."""
    default = None if root else argparse.SUPPRESS
    parser.add_argument("--json", action="store_true", default=default, help="print the result as JSON (for scripts)")
    parser.add_argument("--verbose", action="store_true", default=default, help="show the relay's own logs on stderr")
    add_deployment_options(parser, reads, default=default, hidden=root)


class _Parsers:
    """Builds the command tree; every parser documents the exit codes."""

    def new(self, subparsers: argparse._SubParsersAction[_Parser], name: str, summary: str,
            command: Command | None, *, reads: Sequence[str] | None = None) -> _Parser:  # fmt: skip
        """A command; `reads`: the deployment settings it reads, and only those are its options
        (None: it works on no deployment, and takes neither --json nor the deployment options)."""
        epilog = EXIT_CODES if reads is None else f"{EXIT_CODES}\n\n{JSON_ERRORS}"
        parser = subparsers.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if reads is not None:
            _add_common_options(parser, reads, root=False)
        parser.set_defaults(usage=parser)
        if command is not None:
            parser.set_defaults(command=command, reads=tuple(reads or ()))
        return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Operate genviral-relay: look at posts and watches, replay events, redrive dead letters. "
        "Every command has --help.",
        epilog=f"{ROOT_NOTE}\n\n{EXIT_CODES}\n\n{JSON_ERRORS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_common_options(parser, [setting.key for setting in SETTINGS], root=True)
    parser.set_defaults(json=False, verbose=False)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    parsers = _Parsers()

    checking = parsers.new(
        commands, "check", "Fetch a post from Genviral and show its normalized state and the events a check would "
        "emit (against the stored watch when the table is known); writes and publishes nothing.", check.run,
        reads=check.READS,
    )  # fmt: skip
    checking.add_argument("post_id", metavar="POST_ID", type=post_id, help="the Genviral post id (a UUID)")
    checking.add_argument("--workspace", type=workspace_name, help=WORKSPACE_HELP)

    watch_commands = parsers.new(commands, "watches", "List, add or remove watches.", None)
    watch_actions = watch_commands.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = parsers.new(
        watch_actions, "list", "List the stored watches (reads the whole table).", watches.run_list,
        reads=watches.LIST_READS,
    )  # fmt: skip
    listing.add_argument("--state", choices=("all", "watching", "ended"), default="all", help="default: all")
    listing.add_argument("--awaiting-retry", action="store_true", help="only finished posts in their retry window")
    listing.add_argument("--pending", action="store_true", help="only watches with unpublished events (outbox)")
    listing.add_argument("--workspace", type=workspace_name, help="only this workspace's watches")
    adding = parsers.new(
        watch_actions, "add", "Watch a post and check it once now (as POST /watches): publishes what it finds.",
        watches.run_add, reads=watches.ADD_READS,
    )  # fmt: skip
    adding.add_argument("post_id", metavar="POST_ID", type=post_id, help="the Genviral post id (a UUID)")
    adding.add_argument("--workspace", type=workspace_name, help=WORKSPACE_HELP)
    removing = parsers.new(
        watch_actions, "remove", "Stop watching a post (as DELETE /watches/{post_id}): its pending events are "
        "published first, and the watch is kept if that fails.", watches.run_remove, reads=watches.REMOVE_READS,
    )  # fmt: skip
    removing.add_argument("post_id", metavar="POST_ID", type=post_id, help="the Genviral post id (a UUID)")
    removing.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    webhook_commands = parsers.new(commands, "webhooks", "Look at, resend to, disable or enable webhook endpoints.",
                                   None)  # fmt: skip
    webhook_actions = webhook_commands.add_subparsers(title="actions", metavar="ACTION", required=True)
    parsers.new(webhook_actions, "list", "List the webhook endpoints (as GET /webhooks).", webhooks.run_list,
                reads=webhooks.READ_READS)  # fmt: skip
    showing = parsers.new(
        webhook_actions, "show", "Show one endpoint and how its deliveries go (as GET /webhooks/{id}).",
        webhooks.run_show, reads=webhooks.READ_READS,
    )  # fmt: skip
    resending = parsers.new(
        webhook_actions, "resend", "Resend one event, or every event it takes committed in a range, to an endpoint "
        "(as POST /webhooks/{id}/resend): the same webhook-id and body, a fresh signature.", webhooks.run_resend,
        reads=webhooks.CHANGE_READS,
    )  # fmt: skip
    which = resending.add_mutually_exclusive_group(required=True)
    which.add_argument("--event-id", type=event_id, help="this event")
    which.add_argument("--since", type=replay.moment, help=f"committed at or after: {replay.MOMENT_HELP}")
    resending.add_argument("--until", type=replay.moment, help=f"committed before (with --since; default: now): "
                           f"{replay.MOMENT_HELP}")  # fmt: skip
    enabling = parsers.new(
        webhook_actions, "enable", "Turn an endpoint on again (as POST /webhooks/{id}/enable); its failing clock "
        "restarts.", webhooks.run_enable, reads=webhooks.CHANGE_READS,
    )  # fmt: skip
    enabling.add_argument("--resend-missed", action="store_true", help="also resend what it missed while off")
    disabling = parsers.new(
        webhook_actions, "disable", "Turn an endpoint off (as POST /webhooks/{id}/disable): nothing is delivered to "
        "it until it is enabled.", webhooks.run_disable, reads=webhooks.READ_READS,
    )  # fmt: skip
    disabling.add_argument("--reason", help="why, shown as disabled_reason (default: disabled by an operator)")
    attempts = parsers.new(
        webhook_actions, "attempts", "Show an endpoint's delivery attempts, newest first, with status, duration and "
        "reason (as GET /webhooks/{id}/attempts).", webhooks_attempts.run, reads=webhooks_attempts.READS,
    )  # fmt: skip
    attempts.add_argument("--outcome", choices=("delivered", "failed"), help="only attempts with this outcome")
    attempts.add_argument("--limit", type=page_size, default=20, help="1-100 (default 20)")
    attempts.add_argument("--after", metavar="CURSOR", help="the `next` a previous page printed: older attempts")
    for action in (showing, resending, enabling, disabling, attempts):
        action.add_argument("webhook_id", metavar="WEBHOOK_ID", type=webhooks.webhook_id, help="wh_ + 32 hex digits")
    for action in (resending, enabling, disabling):
        action.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    event_commands = parsers.new(
        commands, "events", "Follow the event feed; read one event's webhook deliveries.", None
    )
    event_actions = event_commands.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = parsers.new(
        event_actions, "list", "One page of the feed, in the order the relay committed the events (as GET /events).",
        events.run_list, reads=events.READS,
    )  # fmt: skip
    listing.add_argument("--after", metavar="CURSOR", help="the `next` of the previous page (default: the oldest)")
    listing.add_argument("--limit", type=page_size, default=PAGE_LIMIT, metavar="N", help="events per page, 1-100")
    listing.add_argument("--event-type", choices=FEED_EVENT_TYPES, help="only events of this type")
    listing.add_argument("--post-id", type=post_id, help="only events about this post")
    listing.add_argument(
        "--workspace", type=workspace_name, help="only this workspace's events (none named: default's)"
    )
    showing = parsers.new(
        event_actions, "show", "One event and its delivery to each webhook endpoint (as GET /events/{event_id}).",
        events.run_show, reads=events.READS,
    )  # fmt: skip
    showing.add_argument("event_id", metavar="EVENT_ID", type=event_id, help="the event's event_id (a UUID)")

    replaying = parsers.new(
        commands, "replay", "Publish stored events again under their original ids (subscribers dedupe on event_id).",
        replay.run, reads=replay.READS,
    )  # fmt: skip
    selection = replaying.add_argument_group("selection (at least one; all given must match)")
    selection.add_argument("--post-id", type=post_id, help="the events of this post")
    selection.add_argument(
        "--event-id", dest="event_ids", type=event_id, action="append", help="this event (repeatable)"
    )
    selection.add_argument("--since", type=replay.moment, help=f"detected at or after: {replay.MOMENT_HELP}")
    selection.add_argument("--until", type=replay.moment, help=f"detected before: {replay.MOMENT_HELP}")
    replaying.add_argument(
        "--target", choices=PUBLISH_CHOICES, help="where to publish (default: the deployment's targets)"
    )
    replaying.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")
    replaying.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    parsers.new(
        commands, "workspaces", "List the deployment's Genviral workspaces: watches, pause and last successful call of "
        "each, and the workspaces the secret no longer names with their watches (kept, never deleted).",
        workspaces.run, reads=workspaces.READS,
    )  # fmt: skip

    redriving = parsers.new(commands, "redrive", "Send dead letters back after a fix.", None)
    queues = redriving.add_subparsers(title="queues", metavar="QUEUE", required=True)
    for queue in redrive.QUEUES:
        queue_parser = parsers.new(
            queues, queue.name, queue.summary + " A message is deleted only once re-sent.",
            partial(redrive.redrive, queue), reads=queue.reads,
        )  # fmt: skip
        queue_parser.add_argument("--dry-run", action="store_true", help="list the messages, change nothing")
        queue_parser.add_argument("--max", type=positive, metavar="N", help="redrive at most N messages (default: all)")
        queue_parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        for alias in queue.aliases:  # still run it, unlisted (its summary names it)
            queues.choices[alias] = queue_parser

    return parser


def command_parsers(parser: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every command that runs something, by its words ("watches add"), under `parser` (not its aliases)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words = f"{path} {name}".strip()
                if child in found.values():
                    continue  # an alias: the parser's own name came first
                if child.get_default("command") is not None:
                    found[words] = child
                found.update(command_parsers(child, words))
    return found
