"""`redrive events|work|poller|webhook|webhooks`: send dead letters back where they failed to go, after a fix.

A message leaves its dead-letter queue only after it was sent again successfully; anything else
(a refusal, a body that is not what the queue holds, a declined confirmation) stays there,
visible again at once. A run that re-sent some messages and left others ends with exit code 3
(partly done), one that re-sent none with 1.

- EventsDLQ: `{"target", "reason", "parked_at", "event"}` (`aws/dead_letters.py`): the event is
  published again to the target it was refused by, under its own id.
- WorkDLQ: work requests (`models/messages.py`: a post check, a retry sweep, a discovery) the worker
  failed on five times (the work queue's maxReceiveCount): queued again on the work queue.
- PollerDLQ: poller ticks that failed (the scheduler's input, or a Lambda failure record around it).
  A tick carries no data, it queues whatever is due when it runs: one run of the poller stands for
  every missed tick.
- FailureWebhookDLQ: failure events EventBridge could not deliver to the webhook (the bus event,
  with EventBridge's error attributes): each event document is POSTed again to the webhook with its
  key header, as the API destination sends it. Only the webhook gets it; other subscribers already have it.
- WebhookDLQ: webhook deliveries whose retries ran out, and messages a webhook function failed on five times
  (`aws/webhook_queues.py`). A delivery goes back on the delivery queue as a first attempt, due now: the same
  `webhook-id` and body, a fresh signature and timestamp, and the whole retry schedule again. An event the
  dispatcher failed on goes back on the fan-out queue. A delivery for an endpoint deleted since is dropped.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from genviral_relay.aws.sqs import BATCH_LIMIT
from genviral_relay.aws.webhook_queues import delivery_from
from genviral_relay.aws.work_queue import SqsWorkQueue
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.output import CliError, Console, PartlyDone
from genviral_relay.errors import EnqueueError
from genviral_relay.models.domain import TARGETS, Target
from genviral_relay.models.events import RelayEvent, parse_event
from genviral_relay.models.messages import WORK_MESSAGE, CheckRequest, SweepRequest, WorkRequest
from genviral_relay.models.webhooks import WebhookDelivery

if TYPE_CHECKING:
    import requests

HOLD_SECONDS = 300
"""Messages being redriven are hidden from other readers meanwhile; the rest are released at the end."""
WEBHOOK_TIMEOUT = (5.0, 30.0)  # connect, read: seconds

# The deployment settings each redrive reads.
# the topic, the bus or the webhooks' fan-out queue: each event's own target
EVENTS_READS = ("events_dlq_url", "topic_arn", "event_bus", "webhook_fanout_queue_url")
WORK_READS = ("work_dlq_url", "work_queue_url")
POLLER_READS = ("poller_dlq_url", "poller_function")  # else the stack's PollerFunction
WEBHOOK_READS = ("webhook_dlq_url", "webhook_url", "webhook_key_header", "webhook_key_secret")
WEBHOOKS_READS = ("webhooks_dlq_url", "webhook_delivery_queue_url", "webhook_fanout_queue_url")


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
        for chunk in _chunks(letters):
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
        for chunk in _chunks([letter for letter in letters if not letter.done]):
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


def _chunks(letters: list[DeadLetter]) -> Iterator[list[DeadLetter]]:
    for start in range(0, len(letters), BATCH_LIMIT):
        yield letters[start : start + BATCH_LIMIT]


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


# -------------------------------------------------------------------- events


@dataclass(frozen=True)
class Parked:
    letter: DeadLetter
    target: Target
    event: RelayEvent
    reason: str


def _parked(letter: DeadLetter) -> Parked | None:
    try:
        body = json.loads(letter.body)
        target, event = body["target"], parse_event(body["event"])
    except (ValueError, TypeError, KeyError, ValidationError):
        return None
    return Parked(letter, target, event, str(body.get("reason"))) if target in TARGETS else None


def redrive_events(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    queue = DeadLetterQueue(deployment.client("sqs"), deployment.require("events_dlq_url"))
    with queue.holding(args.max) as letters:
        readable: list[Parked] = []
        problems: dict[str, str] = {}
        for letter in letters:
            found = _parked(letter)
            if found is None:
                problems[letter.message_id] = "not a parked event"
            else:
                readable.append(found)
        rows = [
            [item.letter.message_id, item.target, f"event_id {item.event.event_id}", f"refused: {item.reason}"]
            for item in readable
        ]
        if not _preview(console, "events", rows, problems, args.dry_run):
            return 0 if args.dry_run or not problems else _finish(console, "events", letters, problems)
        console.confirm(f"Publish {len(rows)} parked event(s) again to their targets?", assume_yes=args.yes)

        by_target: dict[Target, list[Parked]] = {}
        for item in readable:
            by_target.setdefault(item.target, []).append(item)
        for target, waiting in by_target.items():
            problems.update(_publish_parked(deployment, queue, target, waiting))
        return _finish(console, "events", letters, problems)


def _publish_parked(
    deployment: Deployment, queue: DeadLetterQueue, target: Target, items: list[Parked]
) -> dict[str, str]:
    try:
        (publisher,) = deployment.publishers((target,))
    except CliError as error:
        return {item.letter.message_id: f"cannot publish to {target}: {error}" for item in items}
    # The same event may have been parked twice: publish it once, delete every copy.
    result = publisher.publish(list({item.event.event_id: item.event for item in items}.values()))
    published = [item.letter for item in items if item.event.event_id in result.delivered]
    for letter in published:
        letter.sent = True
    queue.delete(published)
    problems: dict[str, str] = {}
    for item in items:
        failure = result.failed.get(item.event.event_id)
        if failure is not None:
            problems[item.letter.message_id] = f"{target} refused it again: {failure.reason}"
        elif not item.letter.done:
            problems[item.letter.message_id] = "published, but could not be deleted (it may be published once more)"
    return problems


# -------------------------------------------------------------------- work


def _describe_request(request: WorkRequest) -> str:
    if isinstance(request, CheckRequest):
        return f"check post {request.post_id}"
    return "retry sweep" if isinstance(request, SweepRequest) else "discover new posts"


def redrive_work(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    sqs = deployment.client("sqs")
    queue = DeadLetterQueue(sqs, deployment.require("work_dlq_url"))
    work_queue = SqsWorkQueue(sqs, deployment.require("work_queue_url"))
    with queue.holding(args.max) as letters:
        requests: dict[str, WorkRequest] = {}
        problems: dict[str, str] = {}
        for letter in letters:
            try:
                requests[letter.message_id] = WORK_MESSAGE.validate_json(letter.body)
            except ValidationError:
                problems[letter.message_id] = "not a work request (the worker would refuse it again)"
        rows = [[message_id, _describe_request(request)] for message_id, request in requests.items()]
        if not _preview(console, "work", rows, problems, args.dry_run):
            return 0 if args.dry_run or not problems else _finish(console, "work", letters, problems)
        console.confirm(f"Queue {len(rows)} work request(s) again on the work queue?", assume_yes=args.yes)

        valid = [letter for letter in letters if letter.message_id in requests]
        for chunk in _chunks(valid):
            try:
                work_queue.send([requests[letter.message_id] for letter in chunk])
            except (EnqueueError, ClientError, BotoCoreError) as error:
                problems.update({letter.message_id: f"could not be queued: {error}" for letter in chunk})
                continue
            for letter in chunk:
                letter.sent = True
            queue.delete(chunk)
            problems.update(
                {letter.message_id: "queued, but could not be deleted" for letter in chunk if not letter.done}
            )
        return _finish(console, "work", letters, problems)


# -------------------------------------------------------------------- poller


def _tick(letter: DeadLetter) -> tuple[dict[str, Any], str] | None:
    """(the tick's input, why it failed) from a scheduler dead letter or a Lambda failure record."""
    try:
        body = json.loads(letter.body)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("requestContext"), dict) and isinstance(body.get("requestPayload"), dict):
        response = body.get("responsePayload")
        error = response.get("errorMessage") if isinstance(response, dict) else None
        return body["requestPayload"], str(error or body["requestContext"].get("condition", "failed"))
    why = letter.attributes.get("ERROR_MESSAGE") or letter.attributes.get("ERROR_CODE") or "not delivered"
    return body, why


def redrive_poller(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    queue = DeadLetterQueue(deployment.client("sqs"), deployment.require("poller_dlq_url"))
    with queue.holding(args.max) as letters:
        ticks = {letter.message_id: _tick(letter) for letter in letters}
        problems = {message_id: "not a poller tick" for message_id, tick in ticks.items() if tick is None}
        missed = [(letter, tick) for letter in letters if (tick := ticks[letter.message_id]) is not None]
        rows = [[letter.message_id, str(tick[0].get("scheduled_time", "-")), tick[1]] for letter, tick in missed]
        if not _preview(console, "poller", rows, problems, args.dry_run):
            return 0 if args.dry_run or not problems else _finish(console, "poller", letters, problems)
        function = deployment.value("poller_function") or deployment.stack_resource("PollerFunction")
        if function is None:
            raise CliError("the poller function is not known: pass --poller-function, set POLLER_FUNCTION_NAME "
                           "or name the stack with --stack-name", kind="not_configured")  # fmt: skip
        console.confirm(
            f"Run the poller {function} once now for {len(missed)} missed tick(s)? One run queues every check due now.",
            assume_yes=args.yes,
        )
        newest, _ = max((tick for _, tick in missed), key=lambda tick: str(tick[0].get("scheduled_time", "")))
        answer = deployment.client("lambda").invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(newest).encode()
        )
        returned = answer["Payload"].read().decode("utf-8", errors="replace")
        if answer.get("FunctionError"):
            raise CliError(f"the poller failed again ({answer['FunctionError']}): {returned[:500]}; the ticks stay")
        console.say(f"poller answered: {returned[:500]}")
        for letter, _ in missed:
            letter.sent = True  # the one run stands for every missed tick
        queue.delete([letter for letter, _ in missed])
        problems.update({letter.message_id: "could not be deleted" for letter, _ in missed if not letter.done})
        return _finish(console, "poller", letters, problems)


# -------------------------------------------------------------------- failure webhook


def _webhook_event(letter: DeadLetter) -> tuple[dict[str, Any], RelayEvent] | None:
    """(the document the webhook receives, the event) from a bus event EventBridge parked."""
    try:
        body = json.loads(letter.body)
        document = body["detail"] if isinstance(body, dict) and "detail" in body else body
        return document, parse_event(document)
    except (ValueError, TypeError, ValidationError):
        return None


# shim: failure-webhook (docs/compatibility.md)
def redrive_webhook(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    queue = DeadLetterQueue(deployment.client("sqs"), deployment.require("webhook_dlq_url"))
    url = deployment.require("webhook_url")
    header = deployment.require("webhook_key_header")
    with queue.holding(args.max) as letters:
        parked = {letter.message_id: _webhook_event(letter) for letter in letters}
        problems = {message_id: "not a relay event" for message_id, found in parked.items() if found is None}
        waiting = [(letter, found) for letter in letters if (found := parked[letter.message_id]) is not None]
        rows = [
            [
                letter.message_id,
                f"event_id {event.event_id}",
                f"post {event.post_id}",
                letter.attributes.get("ERROR_MESSAGE") or letter.attributes.get("ERROR_CODE") or "not delivered",
            ]
            for letter, (_, event) in waiting
        ]
        if not _preview(console, "webhook", rows, problems, args.dry_run):
            return 0 if args.dry_run or not problems else _finish(console, "webhook", letters, problems)
        console.confirm(f"POST {len(rows)} failure event(s) again to {url}?", assume_yes=args.yes)

        key = _webhook_key(deployment)
        import requests

        delivered: list[DeadLetter] = []
        answers: dict[str, str | None] = {}  # event id -> the problem of its one POST (an event parked twice)
        with requests.Session() as session:
            for letter, (document, event) in waiting:
                if event.event_id not in answers:
                    answers[event.event_id] = _post_to_webhook(session, url, document, {header: key})
                problem = answers[event.event_id]
                if problem is None:
                    letter.sent = True
                    delivered.append(letter)
                else:
                    problems[letter.message_id] = problem
        queue.delete(delivered)
        problems.update(
            {letter.message_id: "delivered, but could not be deleted" for letter in delivered if not letter.done}
        )
        return _finish(console, "webhook", letters, problems)


def _webhook_key(deployment: Deployment) -> str:
    secret = deployment.require("webhook_key_secret")
    try:
        return str(deployment.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"])
    except (ClientError, BotoCoreError, KeyError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else type(error).__name__
        raise CliError(
            f"the webhook key could not be read from {secret} ({code}); nothing was sent", kind="aws"
        ) from None


def _post_to_webhook(
    session: requests.Session, url: str, document: dict[str, Any], headers: dict[str, str]
) -> str | None:
    """None when the endpoint took the event (2xx), else why not (never the key)."""
    import requests

    try:
        answer = session.post(url, json=document, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except requests.RequestException as error:
        return f"not delivered: {type(error).__name__}"
    if not answer.ok:
        return f"the webhook answered HTTP {answer.status_code}"
    return None


# -------------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class ParkedDelivery:
    letter: DeadLetter
    delivery: WebhookDelivery | None
    """None: an event the dispatcher failed on (it goes back to the fan-out queue)."""


def _parked_delivery(letter: DeadLetter) -> ParkedDelivery | None:
    if "webhook_id" in letter.attributes:
        try:
            return ParkedDelivery(letter, delivery_from(letter.body, letter.attributes))
        except ValueError:
            return None
    if letter.attributes.get("event_id") and letter.attributes.get("event_type"):
        return ParkedDelivery(letter, None)
    return None


def redrive_webhooks(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    sqs = deployment.client("sqs")
    queue = DeadLetterQueue(sqs, deployment.require("webhooks_dlq_url"))
    with queue.holding(args.max) as letters:
        found = {letter.message_id: _parked_delivery(letter) for letter in letters}
        problems = {message_id: "not a webhook delivery" for message_id, item in found.items() if item is None}
        waiting = [item for item in found.values() if item is not None]
        rows = [
            [
                item.letter.message_id,
                item.delivery.webhook_id if item.delivery else "every endpoint (fan-out)",
                f"event_id {item.letter.attributes.get('event_id', '-')}",
                item.letter.attributes.get("reason") or "failed five times",
            ]
            for item in waiting
        ]
        if not _preview(console, "webhooks", rows, problems, args.dry_run):
            return 0 if args.dry_run or not problems else _finish(console, "webhooks", letters, problems)
        console.confirm(f"Send {len(rows)} webhook delivery(ies) again, from their first attempt?", assume_yes=args.yes)

        deliveries = [item for item in waiting if item.delivery is not None]
        events = [item for item in waiting if item.delivery is None]
        if deliveries:
            from genviral_relay.clock import utc_now
            from genviral_relay.factories import build_delivery_queue

            now = utc_now()
            redriven = [
                item.delivery.model_copy(update={"attempt": 1, "due_at": now})
                for item in deliveries
                if item.delivery is not None
            ]
            delivery_queue = build_delivery_queue(
                deployment.require("webhook_delivery_queue_url"), "", client=deployment.client
            )
            refused = set(delivery_queue.send(redriven))  # positions in `redriven`, which follows `deliveries`
            _sent([item.letter for position, item in enumerate(deliveries) if position not in refused])
            problems.update({
                deliveries[position].letter.message_id: "the delivery queue refused it" for position in refused
            })  # fmt: skip
        if events:
            fanout_url = deployment.require("webhook_fanout_queue_url")
            for item in events:
                try:
                    sqs.send_message(
                        QueueUrl=fanout_url,
                        MessageBody=item.letter.body,
                        MessageAttributes={
                            name: {"DataType": "String", "StringValue": item.letter.attributes[name]}
                            for name in ("event_id", "event_type")
                        },
                    )
                except (ClientError, BotoCoreError) as error:
                    problems[item.letter.message_id] = f"the fan-out queue refused it: {type(error).__name__}"
                else:
                    _sent([item.letter])
        sent = [letter for letter in letters if letter.sent]
        queue.delete(sent)
        problems.update({letter.message_id: "sent, but could not be deleted" for letter in sent if not letter.done})
        return _finish(console, "webhooks", letters, problems)


def _sent(letters: Iterable[DeadLetter]) -> None:
    for letter in letters:
        letter.sent = True
