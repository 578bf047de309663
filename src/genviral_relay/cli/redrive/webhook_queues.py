"""The webhooks' dead-letter queues: the 0.3 failure webhook's (FailureWebhookDLQ), and the Standard Webhooks
endpoints' deliveries (WebhookDLQ)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from genviral_relay import webhook_factories
from genviral_relay.aws.webhook_queues import delivery_from
from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.output import CliError, Console
from genviral_relay.cli.redrive.flow import DeadLetter, QueueRedrive, Resend, mark_sent
from genviral_relay.clock import utc_now
from genviral_relay.models.events import RelayEvent, parse_event
from genviral_relay.models.webhooks import WebhookDelivery

if TYPE_CHECKING:
    import requests

WEBHOOK_TIMEOUT = (5.0, 30.0)  # connect, read: seconds

FailureEvent = tuple[dict[str, Any], RelayEvent]
"""(the document the failure webhook receives, the event)."""


# shim: failure-webhook (docs/compatibility.md)
class FailureWebhookRedrive(QueueRedrive[FailureEvent]):
    """Failure events EventBridge could not deliver to the failure webhook (the bus event, with EventBridge's
    error attributes): each document is POSTed again with its key header, as the API destination sends it.
    Only the webhook gets it; other subscribers already have it."""

    name = "failure-webhook"
    aliases = ("webhook",)  # its name until 0.4, when "webhooks" came to mean the Standard Webhooks endpoints
    summary = (
        "FailureWebhookDLQ: POST each parked failure event again to the failure webhook (FailureWebhookUrl), "
        "with its key. Was `redrive webhook`, still accepted."
    )
    dlq = "webhook_dlq_url"
    reads = ("webhook_dlq_url", "webhook_url", "webhook_key_header", "webhook_key_secret")
    unreadable = "not a relay event"
    kept = "delivered, but could not be deleted"

    def read(self, letter: DeadLetter) -> FailureEvent | None:
        try:
            body = json.loads(letter.body)
            document = body["detail"] if isinstance(body, dict) and "detail" in body else body
            return document, parse_event(document)
        except (ValueError, TypeError, ValidationError):
            return None

    def row(self, letter: DeadLetter, item: FailureEvent) -> list[str]:
        event = item[1]
        return [letter.message_id, f"event_id {event.event_id}", f"post {event.post_id}", letter.why()]

    def prepare(
        self, deployment: Deployment, console: Console, waiting: list[tuple[DeadLetter, FailureEvent]]
    ) -> Resend:
        url = deployment.require("webhook_url")
        header = deployment.require("webhook_key_header")

        def send() -> dict[str, str]:
            key = _webhook_key(deployment)
            import requests

            problems: dict[str, str] = {}
            answers: dict[str, str | None] = {}  # event id -> the problem of its one POST (an event parked twice)
            with requests.Session() as session:
                for letter, (document, event) in waiting:
                    if event.event_id not in answers:
                        answers[event.event_id] = _post(session, url, document, {header: key})
                    problem = answers[event.event_id]
                    if problem is None:
                        letter.sent = True
                    else:
                        problems[letter.message_id] = problem
            return problems

        return Resend(f"POST {len(waiting)} failure event(s) again to {url}?", send)


def _webhook_key(deployment: Deployment) -> str:
    secret = deployment.require("webhook_key_secret")
    try:
        return str(deployment.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"])
    except (ClientError, BotoCoreError, KeyError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else type(error).__name__
        raise CliError(
            f"the webhook key could not be read from {secret} ({code}); nothing was sent", kind="aws"
        ) from None


def _post(session: requests.Session, url: str, document: dict[str, Any], headers: dict[str, str]) -> str | None:
    """None when the endpoint took the event (2xx), else why not (never the key). A redirect is not followed:
    it would carry the key header to whatever host it names."""
    import requests

    try:
        answer = session.post(url, json=document, headers=headers, timeout=WEBHOOK_TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        return f"not delivered: {type(error).__name__}"
    if 300 <= answer.status_code < 400:
        return f"the webhook answered HTTP {answer.status_code} (a redirect: not followed)"
    if not answer.ok:
        return f"the webhook answered HTTP {answer.status_code}"
    return None


@dataclass(frozen=True)
class ParkedDelivery:
    delivery: WebhookDelivery | None
    """None: an event the dispatcher failed on (it goes back to the fan-out queue)."""


class WebhookDeliveriesRedrive(QueueRedrive[ParkedDelivery]):
    """Endpoint deliveries whose retries ran out, and messages a webhook function failed on five times
    (`aws/webhook_queues.py`). A delivery goes back on the delivery queue as a first attempt, due now: the same
    `webhook-id` and body, a fresh signature and timestamp, and the whole retry schedule again. An event the
    dispatcher failed on goes back on the fan-out queue. A delivery for an endpoint deleted since is dropped."""

    name = "webhook-deliveries"
    aliases = ("webhooks",)  # its name until 0.4: kept for scripts
    summary = (
        "WebhookDLQ: send each parked delivery to a webhook endpoint (POST /webhooks) again from its first "
        "attempt (same id and body, a fresh signature). Was `redrive webhooks`, still accepted."
    )
    dlq = "webhooks_dlq_url"
    reads = ("webhooks_dlq_url", "webhook_delivery_queue_url", "webhook_fanout_queue_url")
    unreadable = "not a webhook delivery"

    def read(self, letter: DeadLetter) -> ParkedDelivery | None:
        if "webhook_id" in letter.attributes:
            try:
                return ParkedDelivery(delivery_from(letter.body, letter.attributes))
            except ValueError:
                return None
        if letter.attributes.get("event_id") and letter.attributes.get("event_type"):
            return ParkedDelivery(None)
        return None

    def row(self, letter: DeadLetter, item: ParkedDelivery) -> list[str]:
        return [
            letter.message_id,
            item.delivery.webhook_id if item.delivery else "every endpoint (fan-out)",
            f"event_id {letter.attributes.get('event_id', '-')}",
            letter.attributes.get("reason") or "failed five times",
        ]

    def prepare(
        self, deployment: Deployment, console: Console, waiting: list[tuple[DeadLetter, ParkedDelivery]]
    ) -> Resend:
        def send() -> dict[str, str]:
            deliveries = [(letter, item.delivery) for letter, item in waiting if item.delivery is not None]
            events = [letter for letter, item in waiting if item.delivery is None]
            problems: dict[str, str] = {}
            if deliveries:
                problems.update(_requeue(deployment, deliveries))
            if events:
                problems.update(_fan_out_again(deployment, events))
            return problems

        return Resend(f"Send {len(waiting)} webhook delivery(ies) again, from their first attempt?", send)


def _requeue(deployment: Deployment, deliveries: list[tuple[DeadLetter, WebhookDelivery]]) -> dict[str, str]:
    now = utc_now()
    queue = webhook_factories.build_delivery_queue(
        deployment.require("webhook_delivery_queue_url"), "", client=deployment.client
    )
    # Positions in `deliveries`: an event has one delivery per endpoint, so its id does not say which was refused.
    refused = set(queue.send([delivery.model_copy(update={"attempt": 1, "due_at": now}) for _, delivery in deliveries]))
    mark_sent(letter for position, (letter, _) in enumerate(deliveries) if position not in refused)
    return {deliveries[position][0].message_id: "the delivery queue refused it" for position in sorted(refused)}


def _fan_out_again(deployment: Deployment, events: list[DeadLetter]) -> dict[str, str]:
    """The dispatcher's message as it was: the fan-out queue's body and attributes (`aws/publishers.py`)."""
    fanout_url = deployment.require("webhook_fanout_queue_url")
    sqs = deployment.client("sqs")
    problems: dict[str, str] = {}
    for letter in events:
        try:
            sqs.send_message(
                QueueUrl=fanout_url,
                MessageBody=letter.body,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": letter.attributes[name]}
                    for name in ("event_id", "event_type")
                },
            )
        except (ClientError, BotoCoreError) as error:
            problems[letter.message_id] = f"the fan-out queue refused it: {type(error).__name__}"
        else:
            letter.sent = True
    return problems
