"""The relay's own dead-letter queues: parked events, failed work requests, missed poller ticks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from genviral_relay.checking.ports import EventPublisher
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.output import CliError, Console
from genviral_relay.cli.redrive.flow import DeadLetter, QueueRedrive, Resend, chunks, mark_sent
from genviral_relay.clock import format_ts
from genviral_relay.errors import EnqueueError, echoed
from genviral_relay.factories import build_work_queue
from genviral_relay.models.domain import TARGETS, Target
from genviral_relay.models.events import RelayEvent, parse_event
from genviral_relay.models.messages import (
    WORK_MESSAGE,
    CheckRequest,
    NoticesRequest,
    RefreshRequest,
    SweepRequest,
    WorkRequest,
    WorkspacesRequest,
)


@dataclass(frozen=True)
class Parked:
    target: Target
    event: RelayEvent
    reason: str


class EventsRedrive(QueueRedrive[Parked]):
    name = "events"
    summary = "EventsDLQ: publish each parked event again to the target that refused it."
    dlq = "events_dlq_url"
    # each event's own target: the topic, the bus or the webhooks' fan-out queue
    reads = ("events_dlq_url", "topic_arn", "event_bus", "webhook_fanout_queue_url")
    unreadable = "not a parked event"
    kept = "published, but could not be deleted (it may be published once more)"

    def read(self, letter: DeadLetter) -> Parked | None:
        try:
            body = json.loads(letter.body)
            target, event = body["target"], parse_event(body["event"])
        except (ValueError, TypeError, KeyError, ValidationError):
            return None
        return Parked(target, event, str(body.get("reason"))) if target in TARGETS else None

    def row(self, letter: DeadLetter, item: Parked) -> list[str]:
        return [letter.message_id, item.target, f"event_id {item.event.event_id}", f"refused: {item.reason}"]

    def prepare(self, deployment: Deployment, console: Console, waiting: list[tuple[DeadLetter, Parked]]) -> Resend:
        def send() -> dict[str, str]:
            by_target: dict[Target, list[tuple[DeadLetter, Parked]]] = {}
            for letter, item in waiting:
                by_target.setdefault(item.target, []).append((letter, item))
            problems: dict[str, str] = {}
            for target, items in by_target.items():
                try:
                    (publisher,) = deployment.publishers((target,))
                except CliError as error:
                    problems.update({letter.message_id: f"cannot publish to {target}: {error}" for letter, _ in items})
                    continue
                problems.update(_publish(publisher, items))
            return problems

        return Resend(f"Publish {len(waiting)} parked event(s) again to their targets?", send)


def _publish(publisher: EventPublisher, items: list[tuple[DeadLetter, Parked]]) -> dict[str, str]:
    # The same event may have been parked twice: publish it once, delete every copy.
    result = publisher.publish(list({item.event.event_id: item.event for _, item in items}.values()))
    problems: dict[str, str] = {}
    for letter, item in items:
        if item.event.event_id in result.published:
            letter.sent = True
            continue
        failure = result.failed.get(item.event.event_id)
        problems[letter.message_id] = f"{publisher.target} refused it again: {failure.reason if failure else '-'}"
    return problems


def describe_request(request: WorkRequest) -> str:
    if isinstance(request, CheckRequest):
        return f"check post {request.post_id}"
    if isinstance(request, SweepRequest):
        return "retry sweep"
    if isinstance(request, RefreshRequest):
        return (
            f"bulk refresh of {len(request.post_ids)} hot posts created "
            f"{format_ts(request.since)} to {format_ts(request.until)}"
        )
    if isinstance(request, NoticesRequest):
        return "publish the notices still owed"
    if isinstance(request, WorkspacesRequest):
        return "sync the workspaces from the secret"
    return "discover new posts"


class WorkRedrive(QueueRedrive[WorkRequest]):
    name = "work"
    summary = (
        "WorkDLQ: queue each failed work request (post check, bulk refresh, retry sweep, discovery) again on "
        "the work queue."
    )
    dlq = "work_dlq_url"
    reads = ("work_dlq_url", "work_queue_url")
    unreadable = "not a work request (the worker would refuse it again)"
    kept = "queued, but could not be deleted"

    def read(self, letter: DeadLetter) -> WorkRequest | None:
        try:
            return WORK_MESSAGE.validate_json(letter.body)
        except ValidationError:
            return None

    def row(self, letter: DeadLetter, item: WorkRequest) -> list[str]:
        return [letter.message_id, describe_request(item)]

    def prepare(
        self, deployment: Deployment, console: Console, waiting: list[tuple[DeadLetter, WorkRequest]]
    ) -> Resend:
        requests = {letter.message_id: request for letter, request in waiting}

        def send() -> dict[str, str]:
            work_queue = build_work_queue(deployment.require("work_queue_url"), client=deployment.client)
            problems: dict[str, str] = {}
            for chunk in chunks([letter for letter, _ in waiting]):
                try:
                    work_queue.send([requests[letter.message_id] for letter in chunk])
                except (EnqueueError, ClientError, BotoCoreError) as error:
                    problems.update({letter.message_id: f"could not be queued: {error}" for letter in chunk})
                else:
                    mark_sent(chunk)
            return problems

        return Resend(f"Queue {len(waiting)} work request(s) again on the work queue?", send)


Tick = tuple[dict[str, Any], str]
"""A missed tick: (its input, why it failed)."""


class PollerRedrive(QueueRedrive[Tick]):
    """A tick carries no data, it queues whatever is due when it runs: one run of the poller stands for
    every missed tick."""

    name = "poller"
    summary = "PollerDLQ: run the poller once now in place of the missed ticks."
    dlq = "poller_dlq_url"
    reads = ("poller_dlq_url", "poller_function")  # else the stack's PollerFunction
    unreadable = "not a poller tick"
    kept = "run, but could not be deleted"

    def read(self, letter: DeadLetter) -> Tick | None:
        """From a scheduler dead letter, or a Lambda failure record around it."""
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
        return body, letter.why()

    def row(self, letter: DeadLetter, item: Tick) -> list[str]:
        return [letter.message_id, str(item[0].get("scheduled_time", "-")), item[1]]

    def prepare(self, deployment: Deployment, console: Console, waiting: list[tuple[DeadLetter, Tick]]) -> Resend:
        function = deployment.value("poller_function") or deployment.stack_resource("PollerFunction")
        if function is None:
            raise CliError("the poller function is not known: pass --poller-function, set POLLER_FUNCTION_NAME "
                           "or name the stack with --stack-name", kind="not_configured")  # fmt: skip

        def send() -> dict[str, str]:
            newest, _ = max((tick for _, tick in waiting), key=lambda tick: str(tick[0].get("scheduled_time", "")))
            answer = deployment.client("lambda").invoke(
                FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(newest).encode()
            )
            returned = echoed(answer["Payload"].read().decode("utf-8", errors="replace"))
            if answer.get("FunctionError"):
                raise CliError(f"the poller failed again ({answer['FunctionError']}): {returned}; the ticks stay")
            console.say(f"poller answered: {returned}")
            mark_sent(letter for letter, _ in waiting)  # the one run stands for every missed tick
            return {}

        question = (
            f"Run the poller {function} once now for {len(waiting)} missed tick(s)? One run queues every check due now."
        )
        return Resend(question, send)
