"""The `genviral-relay` command: operate a deployed relay (or the local stack) from a terminal."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from genviral_relay.cli import replay, webhooks
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.output import CliError, Console, Exit
from genviral_relay.cli.parser import COMMON_OPTIONS, Command, UsageError, build_parser
from genviral_relay.errors import RelayError
from genviral_relay.observability import logs_to, metrics


def _check_usage(args: argparse.Namespace) -> None:
    parser: argparse.ArgumentParser = args.usage
    own = {action.dest for action in parser._actions}
    for dest, option in COMMON_OPTIONS.items():  # given before the command, for a command without it
        if dest not in own and getattr(args, dest, None) not in (None, False):
            parser.error(f"{option} does not apply to this command (see its --help)")
    if args.command is replay.run:
        if not (args.post_id or args.event_ids or args.since or args.until):
            parser.error("a selection is needed: --post-id, --event-id, --since or --until")
        if args.since and args.until and args.since >= args.until:
            parser.error("--since must be before --until")
    if args.command is webhooks.run_resend and args.until is not None:
        if args.since is None:
            parser.error("--until goes with --since")
        if args.since > args.until:
            parser.error("--since must not be after --until")


@contextmanager
def _relay_logs(verbose: bool) -> Iterator[None]:
    """The relay's own log lines go to stderr (stdout is the result), and only with --verbose."""
    try:
        with logs_to(sys.stderr, level=logging.INFO if verbose else logging.CRITICAL + 1):
            yield
    finally:
        metrics.clear_metrics()  # a CLI run publishes no metrics


def _problem(error: Exception) -> str:
    """One line for an expected failure."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"AWS refused {error.operation_name}: {details.get('Code', 'error')}: {details.get('Message', '')}"
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    return str(error) or type(error).__name__


def _asks_for_json(argv: Sequence[str]) -> bool:
    """--json on a command line argparse could not read (options end at `--`)."""
    options = argv[: list(argv).index("--")] if "--" in argv else argv
    return "--json" in options


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(arguments)
        _check_usage(args)
    except UsageError as error:
        console = Console(json_output=_asks_for_json(arguments))
        if not console.json_output:
            error.parser.print_usage(sys.stderr)
        console.failure("usage", error.message, prog=error.parser.prog)
        return Exit.USAGE
    console = Console(json_output=args.json)
    command: Command = args.command
    try:
        with _relay_logs(args.verbose):
            return command(args, Deployment(args), console)
    except CliError as error:
        console.failure(error.kind, str(error))
        return error.exit_code
    except NoRegionError as error:
        console.failure("not_configured", _problem(error))
        return Exit.FAILED
    except (BotoCoreError, ClientError) as error:
        console.failure("aws", _problem(error))
        return Exit.FAILED
    except RelayError as error:
        console.failure("failed", _problem(error))
        return Exit.FAILED
    except KeyboardInterrupt:
        console.failure("interrupted", "interrupted")
        return Exit.INTERRUPTED
