"""What the CLI prints: results on stdout (text, or JSON with --json), notes, questions and errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Any, Literal, get_args

PROG = "genviral-relay"


class Exit(IntEnum):
    """The exit codes of every command (listed in each --help by `cli/main.py`)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    PARTIAL = 3
    # A declined (or unanswered) confirmation has its own code rather than 1: nothing failed and nothing
    # was changed, the operator chose not to go on. A wrapper that lets the operator answer needs to tell
    # "they said no" from "AWS refused", e.g. not to alert or retry; a script that passes --yes never sees it.
    NOT_CONFIRMED = 4
    INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


ErrorKind = Literal[
    "usage", "not_configured", "not_found", "genviral", "aws", "conflict", "failed", "partial", "not_confirmed",
    "interrupted",
]  # fmt: skip
"""The `error` of a failure printed with --json (each command's --help lists them)."""
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)


class CliError(Exception):
    """An expected failure: one line on stderr (one JSON object with --json), no traceback."""

    kind: ErrorKind = "failed"
    exit_code = Exit.FAILED

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class PartlyDone(CliError):
    """Some of the work went and some did not (the result says which): exit code 3."""

    kind = "partial"
    exit_code = Exit.PARTIAL


class NotConfirmed(CliError):
    """The operator did not confirm: nothing was changed, exit code 4."""

    kind = "not_confirmed"
    exit_code = Exit.NOT_CONFIRMED


class Console:
    def __init__(self, *, json_output: bool = False) -> None:
        self.json_output = json_output
        self._asking = False  # a question is on stderr, its line not ended

    def say(self, text: str = "") -> None:
        """A line of the human-readable result (not printed with --json)."""
        if not self.json_output:
            print(text, file=sys.stdout)

    def result(self, document: Any) -> None:
        """The machine-readable result (printed with --json only)."""
        if self.json_output:
            print(json.dumps(document, indent=2), file=sys.stdout)

    def note(self, text: str) -> None:
        print(text, file=sys.stderr)

    def failure(self, kind: ErrorKind, message: str, *, prog: str = PROG) -> None:
        """Why the command did not (fully) succeed, on stderr: a line of text, or with --json one JSON
        object on one line, `{"error": KIND, "message": TEXT}` (stdout keeps the result, if any)."""
        if self._asking:  # interrupted while asking
            print(file=sys.stderr)
            self._asking = False
        if self.json_output:
            print(json.dumps({"error": kind, "message": message}), file=sys.stderr, flush=True)
        else:
            print(f"{prog}: error: {message}", file=sys.stderr, flush=True)

    def table(self, rows: Sequence[Sequence[str]], *, indent: str = "  ") -> None:
        if not rows:
            return
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
            self.say((indent + "  ".join(cells)).rstrip())

    def confirm(self, question: str, *, assume_yes: bool) -> None:
        """Ask before anything that changes the deployment; anything but yes (or no answer) aborts."""
        if assume_yes:
            return
        print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
        self._asking = True
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        self._asking = False
        if not (answer.endswith("\n") and sys.stdin is not None and sys.stdin.isatty()):
            print(file=sys.stderr)  # no terminal echoed the answer: what follows starts on its own line
        if answer.strip().lower() not in ("y", "yes"):
            raise NotConfirmed("not confirmed: nothing was changed (--yes skips the question)")
