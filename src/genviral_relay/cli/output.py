"""What the CLI prints: results on stdout (text, or JSON with --json), notes, questions and errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


class CliError(Exception):
    """An expected failure: one line on stderr and exit code 1, no traceback."""


class Console:
    def __init__(self, *, json_output: bool = False) -> None:
        self.json_output = json_output

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
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        if answer.strip().lower() not in ("y", "yes"):
            raise CliError("not confirmed: nothing was changed (--yes skips the question)")
