"""Webhooks end to end: registered through the API, fed by the outbox, fanned out and attempted by the template's
functions on moto, received by a loopback endpoint that verifies every delivery with the reference library."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genviral_relay import factories
from genviral_relay.delivery import sender
from genviral_relay.logic.webhooks import RETRY_DELAYS
from local.emulator import GenviralEmulator
from local.runner import WEBHOOK_DELIVERY, LocalRunner, sqs_record
from local.stack import MotoStack
from local.webhook_receiver import WebhookReceiver
from tests.conftest import SECRETS, TOKEN


class MovableClock:
    """The relay's clock (factories.utc_now), moved by the test; starts at the wall clock."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MovableClock:
    moving = MovableClock()
    monkeypatch.setattr(factories, "utc_now", moving)
    return moving


@pytest.fixture
def local_stack(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    # As local runs do: the loopback receiver is http:// on 127.0.0.1, which the default refuses.
    with MotoStack(
        genviral_api_url=emulator.base_url, token=TOKEN, parameters={"AllowPrivateWebhookUrls": "true"}
    ) as running:
        yield running


@pytest.fixture
def relay(local_stack: MotoStack) -> LocalRunner:
    return LocalRunner(local_stack)


@pytest.fixture
def receiver(clock: MovableClock) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(clock=clock) as running:
        yield running


def register(relay: LocalRunner, receiver: WebhookReceiver, **body: Any) -> dict[str, Any]:
    answer = relay.api("POST", "/webhooks", {"url": receiver.url, **body})
    assert answer.status == 201, answer.body
    secret = answer.body["secret"]
    SECRETS.add(secret.removeprefix("whsec_"))  # the sentinel: no log line may hold it
    receiver.trust(secret)
    return dict(answer.body)


def post_with_outcomes(emulator: GenviralEmulator, relay: LocalRunner, *, posted: int = 0, failed: int = 0) -> str:
    """A watched post whose accounts then post or fail; the check that finds it is left to the caller."""
    post_id = emulator.create_post(accounts=posted + failed, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    assert relay.api("POST", "/watches", {"post_id": post_id}).status == 201
    accounts = emulator.account_ids(post_id)
    for account in accounts[:posted]:
        emulator.mark_posted(post_id, account, published_url="https://social.example/p/1")
    for account in accounts[posted:]:
        emulator.mark_failed(post_id, account, error_message="Media rejected by platform")
    return post_id


def check_now(relay: LocalRunner, post_id: str) -> list[dict[str, Any]]:
    answer = relay.api("POST", f"/watches/{post_id}/check")
    assert answer.status == 200, answer.body
    return list(answer.body["transitions"])


def test_an_event_reaches_a_registered_endpoint_signed_and_byte_identical(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, clock: MovableClock
) -> None:
    # Given an endpoint registered for every type
    created = register(relay, receiver, description="ops")
    assert created["id"].startswith("wh_") and created["secret"].startswith("whsec_")
    assert created["event_types"] is None and created["description"] == "ops"

    # When a check finds a transition and the webhook functions run
    post_id = post_with_outcomes(emulator, relay, posted=1)
    (event,) = check_now(relay, post_id)
    relay.deliver_webhooks()

    # Then the endpoint got it once, verified by the reference library, the body the event document itself
    (delivery,) = receiver.received
    assert delivery.verified, delivery.problem
    assert delivery.webhook_id == event["event_id"]
    assert delivery.headers["content-type"] == "application/json"
    assert int(delivery.headers["webhook-timestamp"]) == int(clock.now.timestamp())
    assert json.loads(delivery.body) == event
    health = relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]
    assert health["last_success_at"] is not None and health["failing_since"] is None


def test_a_refused_delivery_is_retried_on_the_schedule_with_the_same_id_and_body(
    emulator: GenviralEmulator,
    relay: LocalRunner,
    receiver: WebhookReceiver,
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an endpoint that answers 503, then resets the connection, then does not answer in time, then takes it
    monkeypatch.setattr(sender, "TIMEOUT_SECONDS", 0.5)
    created = register(relay, receiver)
    receiver.answer(503, "reset", "hang", 204)
    (event,) = check_now(relay, post_with_outcomes(emulator, relay, failed=1))

    # When the webhook functions run, each time once the next attempt is due (and once before: nothing is sent)
    relay.deliver_webhooks()
    failing = relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]
    assert failing["last_failure_status"] == 503
    assert failing["attempts_pending"] == 1
    assert failing["failing_since"] is not None and failing["last_success_at"] is None
    for attempt, wait in enumerate(RETRY_DELAYS[:3], start=2):
        clock.advance(wait - timedelta(seconds=1))
        relay.deliver_webhooks()
        assert len(receiver.received) == attempt - 1, "an attempt was made before its time"
        clock.advance(timedelta(seconds=1))
        relay.deliver_webhooks()
        assert len(receiver.received) == attempt

    # Then four attempts, each verified, all with the event's id and the same body, each with its own timestamp
    assert [delivery.answer for delivery in receiver.received] == [503, "reset", "hang", 204]
    assert all(delivery.verified for delivery in receiver.received), [d.problem for d in receiver.received]
    assert {delivery.webhook_id for delivery in receiver.received} == {event["event_id"]}
    assert len({delivery.body for delivery in receiver.received}) == 1
    assert len({delivery.headers["webhook-timestamp"] for delivery in receiver.received}) == 4
    health = relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]
    assert health["attempts_pending"] == 0
    assert health["failing_since"] is None and health["last_success_at"] is not None
    assert health["last_failure_reason"] == "no answer within 0.5 s"
    assert health["last_failure_status"] is None


def test_a_delivery_not_yet_due_waits_in_hops_of_at_most_15_minutes(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, clock: MovableClock
) -> None:
    # Given a delivery whose next attempt is two hours away (its fourth: after 5 s, 5 min and 30 min)
    register(relay, receiver)
    receiver.answer(500, 500, 500, 500)
    check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    relay.deliver_webhooks()
    for wait in RETRY_DELAYS[:3]:
        clock.advance(wait)
        relay.deliver_webhooks()
    assert len(receiver.received) == 4

    # When SQS hands it to the delivery function 15 minutes later (the longest delay SQS knows)
    clock.advance(timedelta(minutes=15))
    message = take_delivery(relay)
    relay.invoke(WEBHOOK_DELIVERY, {"Records": [sqs_record(message, queue_arn(relay))]})

    # Then nothing is sent, and the same delivery waits again, for at most 15 more minutes
    assert len(receiver.received) == 4
    hop = take_delivery(relay)
    assert hop["Body"] == message["Body"]
    assert attributes(hop) == attributes(message)
    assert attributes(hop)["attempt"] == "5"

    # And once its time has come it is attempted
    clock.advance(RETRY_DELAYS[3])
    relay.invoke(WEBHOOK_DELIVERY, {"Records": [sqs_record(hop, queue_arn(relay))]})
    assert len(receiver.received) == 5


def take_delivery(relay: LocalRunner) -> dict[str, Any]:
    """The one delivery waiting on the queue, whatever its delay (released first), received and deleted."""
    stack = relay.stack
    assert stack.release_delayed("WebhookDeliveryQueue", lambda _: True) == 1
    sqs = stack.client("sqs")
    url = stack.ref("WebhookDeliveryQueue")
    (message,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return dict(message)


def queue_arn(relay: LocalRunner) -> str:
    return str(relay.stack.resolver.attributes[("WebhookDeliveryQueue", "Arn")])


def attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
