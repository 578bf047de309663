"""The one redrive flow, whatever the queue: read its dead letters, list them (`--dry-run` stops there), ask,
send them again, and delete from the dead-letter queue only what was sent. What each queue's letters are,
and where they go again, is a `QueueRedrive` (`relay_queues.py`, `webhook_queues.py`)."""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from genviral_relay.aws.sqs import BATCH_LIMIT
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.output import CliError, Console, PartlyDone

HOLD_SECONDS = 300
"""Messages being redriven are hidden from other readers meanwhile; the rest are released at the end."""

Item = TypeVar("Item")


@dataclass
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    sent: bool = False
    """Sent again where it failed to go."""
    done: bool = False
    """Deleted from the dead-letter queue."""

    def why(self) -> str:
        """Why SQS or EventBridge parked it, as its error attributes say."""
        return self.attributes.get("ERROR_MESSAGE") or self.attributes.get("ERROR_CODE") or "not delivered"


def mark_sent(letters: Iterable[DeadLetter]) -> None:
    for letter in letters:
        letter.sent = True


def chunks(letters: list[DeadLetter]) -> Iterator[list[DeadLetter]]:
    for start in range(0, len(letters), BATCH_LIMIT):
        yield letters[start : start + BATCH_LIMIT]


class DeadLetterQueue:
    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.url = url

    def receive(self, limit: int | None) -> list[DeadLetter]:
        found: dict[str, DeadLetter] = {}
        while limit is None or len(found) < limit:
            wanted = BATCH_LIMIT if limit is None else min(BATCH_LIMIT, limit - len(found))
            # Long polling asks every SQS server, so an empty answer means an empty queue.
            messages = self._client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=wanted,
                VisibilityTimeout=HOLD_SECONDS,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                attributes = {
                    name: str(value.get("StringValue", ""))
                    for name, value in message.get("MessageAttributes", {}).items()
                }
                found.setdefault(
                    message["MessageId"],
                    DeadLetter(message["MessageId"], message["ReceiptHandle"], message["Body"], attributes),
                )
        return list(found.values())

    def delete(self, letters: list[DeadLetter]) -> None:
        for chunk in chunks(letters):
            answer = self._client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": letter.receipt_handle} for index, letter in enumerate(chunk)
                ],
            )
            failed = {int(entry["Id"]) for entry in answer.get("Failed", [])}
            for index, letter in enumerate(chunk):
                letter.done = index not in failed

    def release(self, letters: Iterable[DeadLetter]) -> None:
        """Make the letters that stay visible again now, for the next run or another reader."""
        for chunk in chunks([letter for letter in letters if not letter.done]):
            self._client.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                    for index, letter in enumerate(chunk)
                ],
            )

    @contextmanager
    def holding(self, limit: int | None) -> Iterator[list[DeadLetter]]:
        letters = self.receive(limit)
        try:
            yield letters
        finally:
            self.release(letters)


@dataclass(frozen=True)
class Resend:
    question: str
    """What the operator confirms."""
    send: Callable[[], dict[str, str]]
    """Sends the letters again, marks those sent (`DeadLetter.sent`), and answers why the others stay, by id."""


class QueueRedrive(ABC, Generic[Item]):
    """One dead-letter queue: what its letters are, and where they go again."""

    name: ClassVar[str]
    """The command's word (`redrive NAME`), and the queue's name in messages."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Older words that still run it (not listed)."""
    summary: ClassVar[str]
    dlq: ClassVar[str]
    """The deployment setting of its URL."""
    reads: ClassVar[tuple[str, ...]]
    """Every deployment setting a redrive of it reads."""
    unreadable: ClassVar[str]
    """Why a letter `read` does not take stays."""
    kept: ClassVar[str] = "sent, but could not be deleted"

    @abstractmethod
    def read(self, letter: DeadLetter) -> Item | None:
        """What the letter holds, or None when it is not what the queue holds."""

    @abstractmethod
    def row(self, letter: DeadLetter, item: Item) -> list[str]:
        """Its line in the listing, starting with the message id."""

    @abstractmethod
    def prepare(self, deployment: Deployment, console: Console, waiting: list[tuple[DeadLetter, Item]]) -> Resend:
        """What to ask, and how to send them again (everything it needs known before asking)."""


def redrive(queue: QueueRedrive[Item], args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    dead_letters = DeadLetterQueue(deployment.client("sqs"), deployment.require(queue.dlq))
    with dead_letters.holding(args.max) as letters:
        waiting: list[tuple[DeadLetter, Item]] = []
        problems: dict[str, str] = {}
        for letter in letters:
            item = queue.read(letter)
            if item is None:
                problems[letter.message_id] = queue.unreadable
            else:
                waiting.append((letter, item))
        rows = [queue.row(letter, item) for letter, item in waiting]
        if not _preview(console, queue.name, rows, problems, args.dry_run):
            return 0 if args.dry_run or not problems else _finish(console, queue.name, letters, problems)
        resend = queue.prepare(deployment, console, waiting)
        console.confirm(resend.question, assume_yes=args.yes)

        problems.update(resend.send())
        sent = [letter for letter in letters if letter.sent]
        dead_letters.delete(sent)
        problems.update({letter.message_id: queue.kept for letter in sent if not letter.done})
        return _finish(console, queue.name, letters, problems)


def _preview(console: Console, kind: str, rows: list[list[str]], problems: dict[str, str], dry_run: bool) -> bool:
    """List what was found; True when there is something to do."""
    console.say(f"{len(rows)} message(s) to redrive from the {kind} dead-letter queue:")
    console.table(rows)
    for message_id, problem in problems.items():
        console.say(f"  cannot redrive {message_id}: {problem}")
    if dry_run:
        console.result({"queue": kind, "dry_run": True, "messages": [row[0] for row in rows], "left": problems})
        console.say("(dry run: nothing was sent or deleted)")
        return False
    return bool(rows)


def _finish(console: Console, kind: str, letters: list[DeadLetter], problems: dict[str, str]) -> int:
    """Report; exit code 3 (partly done) when some messages went and some did not, 1 when none went."""
    redriven = [letter.message_id for letter in letters if letter.done]
    console.result({"queue": kind, "redriven": redriven, "left": problems})
    console.say(f"{len(redriven)} message(s) redriven and deleted, {len(problems)} left in the queue")
    for message_id, problem in problems.items():
        console.say(f"  left {message_id}: {problem}")
    if problems:
        failure = PartlyDone if any(letter.sent for letter in letters) else CliError
        raise failure(f"{len(problems)} message(s) stay in the {kind} dead-letter queue (see above)")
    return 0
