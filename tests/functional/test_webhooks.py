"""Webhooks end to end: registered through the API, fed by the outbox, fanned out and attempted by the template's
functions on moto, received by a loopback endpoint that verifies every delivery with the reference library."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay import factories, webhook_factories
from genviral_relay.aws.webhook_queues import SqsDeliveryQueue
from genviral_relay.cli import main as cli_main
from genviral_relay.clock import parse_ts
from genviral_relay.models.webhooks import WebhookDelivery
from genviral_relay.receivers import sender
from genviral_relay.rules.webhook_retries import RETRY_DELAYS
from local.emulator import GenviralEmulator
from local.runner import WEBHOOK_DELIVERY, WEBHOOK_DISPATCHER, LocalRunner, sqs_record
from local.stack import MotoStack
from local.webhook_receiver import Reply, WebhookReceiver
from tests.conftest import SECRETS
from tests.support.doubles import SteppingClock


@pytest.fixture
def receiver(relay_clock: SteppingClock) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(clock=relay_clock) as running:
        yield running


def register(relay: LocalRunner, receiver: WebhookReceiver, **body: Any) -> dict[str, Any]:
    answer = relay.api("POST", "/webhooks", {"url": receiver.url, **body})
    assert answer.status == 201, answer.body
    secret = answer.body["secret"]
    SECRETS.add(secret.removeprefix("whsec_"))  # the sentinel: no log line may hold it
    receiver.trust(secret)
    return dict(answer.body)


def post_with_outcomes(emulator: GenviralEmulator, relay: LocalRunner, *, posted: int = 0, failed: int = 0) -> str:
    """A watched post whose accounts then post or fail; the check that finds it is left to the caller. One more
    account stays scheduled, so the post never completes: exactly one event per outcome, whatever other types the
    relay publishes; its time is a minute before the relay's clock, so no account is late either."""
    scheduled_at = factories.utc_now() - timedelta(minutes=1)
    post_id = emulator.create_post(accounts=posted + failed + 1, scheduled_at=scheduled_at)
    assert relay.api("POST", "/watches", {"post_id": post_id}).status == 201
    accounts = emulator.account_ids(post_id)
    for account in accounts[:posted]:
        emulator.mark_posted(post_id, account, published_url="https://social.example/p/1")
    for account in accounts[posted : posted + failed]:
        emulator.mark_failed(post_id, account, error_message="Media rejected by platform")
    return post_id


def check_now(relay: LocalRunner, post_id: str) -> list[dict[str, Any]]:
    answer = relay.api("POST", f"/watches/{post_id}/check")
    assert answer.status == 200, answer.body
    return list(answer.body["transitions"])


def test_an_event_reaches_a_registered_endpoint_signed_and_byte_identical(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    # Given an endpoint registered for every type
    created = register(relay, receiver, description="ops")
    assert created["id"].startswith("wh_")
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] is None
    assert created["description"] == "ops"

    # When a check finds a transition and the webhook functions run
    post_id = post_with_outcomes(emulator, relay, posted=1)
    (event,) = check_now(relay, post_id)
    relay.deliver_webhooks()

    # Then the endpoint got it once, verified by the reference library, the body the event document itself
    (delivery,) = receiver.received
    assert delivery.verified, delivery.problem
    assert delivery.webhook_id == event["event_id"]
    assert delivery.headers["content-type"] == "application/json"
    assert int(delivery.headers["webhook-timestamp"]) == int(relay_clock.now.timestamp())
    assert json.loads(delivery.body) == event
    health = relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]
    assert health["last_success_at"] is not None
    assert health["failing_since"] is None


def test_a_refused_delivery_is_retried_on_the_schedule_with_the_same_id_and_body(
    emulator: GenviralEmulator,
    relay: LocalRunner,
    receiver: WebhookReceiver,
    relay_clock: SteppingClock,
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
    assert failing["failing_since"] is not None
    assert failing["last_success_at"] is None
    for attempt, wait in enumerate(RETRY_DELAYS[:3], start=2):
        relay_clock.now += wait - timedelta(seconds=1)
        relay.deliver_webhooks()
        assert len(receiver.received) == attempt - 1, "an attempt was made before its time"
        relay_clock.now += timedelta(seconds=1)
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
    assert health["failing_since"] is None
    assert health["last_success_at"] is not None
    assert health["last_failure_reason"] == "no answer within 0.5 s"
    assert health["last_failure_status"] is None


def test_a_delivery_not_yet_due_waits_in_hops_of_at_most_15_minutes(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    # Given a delivery whose next attempt is two hours away (its fourth: after 5 s, 5 min and 30 min)
    register(relay, receiver)
    receiver.answer(500, 500, 500, 500)
    check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    relay.deliver_webhooks()
    for wait in RETRY_DELAYS[:3]:
        relay_clock.now += wait
        relay.deliver_webhooks()
    assert len(receiver.received) == 4

    # When SQS hands it to the delivery function 15 minutes later (the longest delay SQS knows)
    relay_clock.now += timedelta(minutes=15)
    message = take_delivery(relay)
    relay.invoke(WEBHOOK_DELIVERY, {"Records": [sqs_record(message, queue_arn(relay))]})

    # Then nothing is sent, and the same delivery waits again, for at most 15 more minutes
    assert len(receiver.received) == 4
    hop = take_delivery(relay)
    assert hop["Body"] == message["Body"]
    assert attributes(hop) == attributes(message)
    assert attributes(hop)["attempt"] == "5"

    # And once its time has come it is attempted
    relay_clock.now += RETRY_DELAYS[3]
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


def test_a_429_with_retry_after_puts_the_retry_when_the_endpoint_asked_not_on_the_schedule(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    # Given an endpoint that answers its first delivery 429 with Retry-After: 120
    register(relay, receiver)
    receiver.answer(Reply(429, "120"))
    check_now(relay, post_with_outcomes(emulator, relay, posted=1))

    # When the delivery function makes the attempt
    relay.deliver_webhooks()
    attempted_at = relay_clock.now
    (first,) = receiver.received
    assert first.answer == Reply(429, "120")

    # Then the retry message is due 120 s after the attempt, not the schedule's 5 s
    retry = take_delivery(relay)
    assert attributes(retry)["attempt"] == "2"
    assert parse_ts(attributes(retry)["due_at"]) == attempted_at + timedelta(seconds=120)

    # And handed out at the schedule's time it is not sent, only once the endpoint's time has come
    relay_clock.now = attempted_at + RETRY_DELAYS[0]
    relay.invoke(WEBHOOK_DELIVERY, {"Records": [sqs_record(retry, queue_arn(relay))]})
    assert len(receiver.received) == 1
    relay_clock.now = attempted_at + timedelta(seconds=120)
    relay.deliver_webhooks()
    assert len(receiver.received) == 2
    assert receiver.received[1].verified, receiver.received[1].problem


def test_an_endpoint_receives_only_the_types_it_asked_for(
    emulator: GenviralEmulator, relay: LocalRunner, relay_clock: SteppingClock
) -> None:
    # Given one endpoint for failures only and one for every type
    with WebhookReceiver(clock=relay_clock) as failures, WebhookReceiver(clock=relay_clock) as everything:
        assert register(relay, failures, event_types=["post.account.failed"])["event_types"] == ["post.account.failed"]
        register(relay, everything)

        # When a post has one account posted and one failed
        events = check_now(relay, post_with_outcomes(emulator, relay, posted=1, failed=1))
        relay.deliver_webhooks()

        # Then each got what it asked for, verified
        by_type = {event["event_type"]: event["event_id"] for event in events}
        assert [delivery.webhook_id for delivery in failures.received] == [by_type["post.account.failed"]]
        assert sorted(delivery.webhook_id for delivery in everything.received) == sorted(by_type.values())
        assert all(delivery.verified for delivery in failures.received + everything.received)


def test_deleting_an_endpoint_stops_its_deliveries_retries_included(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    # Given an endpoint whose first delivery failed and waits for its retry
    created = register(relay, receiver)
    receiver.answer(503)
    check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    relay.deliver_webhooks()
    assert len(receiver.received) == 1

    # When it is deleted
    deleted = relay.api("DELETE", f"/webhooks/{created['id']}")
    assert (deleted.status, deleted.body["id"]) == (200, created["id"])

    # Then neither the retry nor a new event reaches it, and the queue holds nothing for it
    relay_clock.now += RETRY_DELAYS[0]
    check_now(relay, post_with_outcomes(emulator, relay, failed=1))
    report = relay.deliver_webhooks()
    assert len(receiver.received) == 1
    assert report.processed == 2  # the new event (fanned out to nobody) and the retry (dropped)
    assert relay.stack.release_delayed("WebhookDeliveryQueue", lambda _: True) == 0
    assert relay.api("GET", f"/webhooks/{created['id']}").status == 404
    assert relay.api("DELETE", f"/webhooks/{created['id']}").body["error"] == "webhook_not_found"


def test_a_rotation_signs_with_both_secrets_for_a_day_then_with_the_new_one_only(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    # Given an endpoint whose secret was rotated
    created = register(relay, receiver)
    rotated = relay.api("POST", f"/webhooks/{created['id']}/rotate-secret")
    assert rotated.status == 200
    assert rotated.body["secret"].startswith("whsec_")
    assert rotated.body["secret"] != created["secret"]
    SECRETS.add(rotated.body["secret"].removeprefix("whsec_"))
    receiver.trust(rotated.body["secret"])

    # When an event is delivered at once, and another a day later
    check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    relay.deliver_webhooks()
    relay_clock.now += timedelta(hours=24, seconds=1)
    check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    relay.deliver_webhooks()

    # Then the first carries a signature with each secret, the second only the new one's
    first, second = receiver.received
    assert (len(first.signatures), first.verified_by) == (2, [0, 1])
    assert (len(second.signatures), second.verified_by) == (1, [1])


def test_a_slow_endpoint_does_not_hold_up_a_fast_one(
    emulator: GenviralEmulator, relay: LocalRunner, relay_clock: SteppingClock
) -> None:
    # Given an endpoint that does not answer until released, and one that answers at once
    with WebhookReceiver(clock=relay_clock) as slow, WebhookReceiver(clock=relay_clock) as fast:
        register(relay, slow)
        register(relay, fast)
        slow.answer("hang")
        check_now(relay, post_with_outcomes(emulator, relay, posted=1))

        # When the webhook functions run (on another thread: the slow attempt blocks)
        running = threading.Thread(target=relay.deliver_webhooks)
        running.start()
        try:
            # Then the fast endpoint has its delivery while the slow one still holds its own
            (delivered,) = fast.wait_for(1)
            assert delivered.verified
            assert len(slow.wait_for(1)) == 1
            assert running.is_alive()
        finally:
            slow.release()
            running.join(timeout=30)
        assert not running.is_alive()


def test_a_delivery_whose_retries_run_out_is_parked_without_its_secret(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    # Given an endpoint that refuses every attempt
    created = register(relay, receiver)
    receiver.answer(*[500] * 8)
    (event,) = check_now(relay, post_with_outcomes(emulator, relay, failed=1))

    # When every attempt of the schedule has been made
    relay.deliver_webhooks()
    for wait in RETRY_DELAYS:
        relay_clock.now += wait
        relay.deliver_webhooks()
    relay_clock.now += timedelta(days=1)
    relay.deliver_webhooks()

    # Then eight attempts were made, and the delivery is parked in WebhookDLQ with why, and no secret
    assert len(receiver.received) == 8
    sqs = relay.stack.client("sqs")
    (parked,) = sqs.receive_message(QueueUrl=relay.stack.ref("WebhookDLQ"), MessageAttributeNames=["All"])["Messages"]
    # The body is the event's document as signed (carried for a 0.4 delivery function, `delivery-body-04`); a
    # redriven delivery signs the document stored in the table, never this body
    assert json.loads(parked["Body"]) == event
    parked_attributes = attributes(parked)
    due_at, parked_at = parse_ts(parked_attributes.pop("due_at")), parse_ts(parked_attributes.pop("parked_at"))
    assert parked_attributes == {
        "webhook_id": created["id"],
        "event_id": event["event_id"],
        "event_type": "post.account.failed",
        "attempt": "8",
        "post_id": event["post_id"],
        "reason": "HTTP 500: Internal Server Error",
    }
    assert due_at is not None
    assert due_at <= parked_at == relay_clock.now - timedelta(days=1)  # parked by the eighth attempt, when due
    assert created["secret"].removeprefix("whsec_") not in json.dumps(parked)
    health = relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]
    assert health["attempts_pending"] == 0
    assert health["failing_since"] is not None
    assert health["last_failure_status"] == 500


def test_the_test_route_sends_a_test_event_through_the_same_path(
    relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    # Given two endpoints, one of them for every type
    created = register(relay, receiver, event_types=["post.account.posted"])
    with WebhookReceiver(clock=relay_clock) as other:
        register(relay, other)

        # When one is tested
        sent = relay.api("POST", f"/webhooks/{created['id']}/test")
        assert sent.status == 202
        relay.deliver_webhooks()

        # Then that one got a verified webhook.test event, and the other nothing
        (delivery,) = receiver.received
        assert delivery.verified
        assert delivery.webhook_id == sent.body["event_id"]
        assert json.loads(delivery.body)["event_type"] == "webhook.test"
        assert other.received == []


def test_no_answer_but_the_registration_and_the_rotation_shows_a_secret(
    relay: LocalRunner, receiver: WebhookReceiver
) -> None:
    created = register(relay, receiver, description="crm")
    listed = relay.api("GET", "/webhooks")
    read = relay.api("GET", f"/webhooks/{created['id']}")
    assert listed.status == read.status == 200
    assert [webhook["id"] for webhook in listed.body["webhooks"]] == [created["id"]]
    assert set(read.body) == {
        "id", "url", "event_types", "description", "created_at", "delivery", "filter", "rate_limit", "format",
        "enabled", "disabled_at", "disabled_reason",
    }  # fmt: skip
    assert set(read.body["delivery"]) == {
        "last_success_at", "last_failure_at", "last_failure_status", "last_failure_reason", "attempts_pending",
        "failing_since",
    }  # fmt: skip
    for answer in (listed, read):
        assert "whsec_" not in json.dumps(answer.body)


HOSTILE_URLS = {
    "https://127.0.0.1/hook": "url may not point to 127.0.0.1: it is a loopback address",
    "https://[::1]/hook": "url may not point to ::1: it is a loopback address",
    "https://10.0.0.7/hook": "url may not point to 10.0.0.7: it is a private address",
    "https://172.16.0.1/hook": "url may not point to 172.16.0.1: it is a private address",
    "https://192.168.1.1/hook": "url may not point to 192.168.1.1: it is a private address",
    "https://100.64.0.1/hook": "url may not point to 100.64.0.1: it is a shared (carrier-grade NAT) address",
    "https://169.254.169.254/latest/meta-data/": "url may not point to 169.254.169.254: it is a link-local address "
    "(the instance-metadata address among them)",
    "https://[fd00::1]/hook": "url may not point to fd00::1: it is a private address",
    "https://localhost/hook": "url may not point to localhost: it resolves to",  # the system resolver's loopback
    "http://93.184.216.34/hook": "url must use https:// (http:// needs AllowPrivateWebhookUrls)",
    "https://user:secret@93.184.216.34/hook": "url must not carry credentials (user:password@); deliveries are "
    "signed instead",
    "not a url": "url must be an absolute https:// URL, such as https://example.com/hooks/genviral",
}


@pytest.mark.parametrize(("url", "message"), sorted(HOSTILE_URLS.items()))
def test_the_api_refuses_a_hostile_url_with_a_clear_400(runner: LocalRunner, url: str, message: str) -> None:
    answer = runner.api("POST", "/webhooks", {"url": url})
    assert answer.status == 400
    assert answer.body["error"] == "bad_request"
    assert answer.body["message"].startswith(message)
    assert runner.api("GET", "/webhooks").body == {"webhooks": []}


BAD_BODIES: list[tuple[Any, str]] = [
    ({}, "invalid body: url: Field required"),
    ({"url": 42}, "url: url must be a string such as https://example.com/hooks/genviral"),
    ({"url": "https://93.184.216.34/", "event_types": ["post.deleted"]}, "event_types: unknown event type(s) "
     "post.deleted; known: post.account.posted, post.account.failed"),
    ({"url": "https://93.184.216.34/", "event_types": []}, "event_types: event_types must name at least one type"),
    ({"url": "https://93.184.216.34/", "secret": "whsec_mine"}, "invalid body: secret: Extra inputs are not permitted"),
    (None, 'a JSON body {"url": "https://...", "event_types": [...], "description": "..."} is required'),
    ([], 'the body must be a JSON object {"url": "https://...", "event_types": [...], "description": "..."}'),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_the_api_refuses_a_bad_registration_body_saying_what_is_wrong(
    runner: LocalRunner, body: Any, message: str
) -> None:
    answer = runner.api("POST", "/webhooks", body)
    assert answer.status == 400
    assert answer.body["message"].startswith(message), answer.body


def test_a_public_https_endpoint_registers_with_the_default_rules(runner: LocalRunner) -> None:
    answer = runner.api(
        "POST", "/webhooks", {"url": "https://93.184.216.34/hooks", "event_types": ["post.account.failed"]}
    )
    assert answer.status == 201
    SECRETS.add(answer.body["secret"].removeprefix("whsec_"))


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/webhooks/nope"), ("DELETE", "/webhooks/wh_123"), ("POST", "/webhooks/WH_0/test"),
     ("POST", "/webhooks/x/rotate-secret")],
)  # fmt: skip
def test_a_malformed_webhook_id_is_a_400(runner: LocalRunner, method: str, path: str) -> None:
    answer = runner.api(method, path)
    assert (answer.status, answer.body["message"]) == (400, "a webhook id looks like wh_ followed by 32 hex digits")


def test_an_unknown_webhook_id_is_a_404(runner: LocalRunner) -> None:
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/rotate-secret"), ("POST", "/test")):
        answer = runner.api(method, f"/webhooks/wh_{'0' * 32}{suffix}")
        assert (answer.status, answer.body["error"]) == (404, "webhook_not_found")


def test_a_name_resolving_to_loopback_is_refused_at_registration_and_a_rebinding_at_delivery(
    runner: LocalRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.doubles import StaticResolver

    resolver = StaticResolver({"hooks.example.com": ["93.184.216.34"], "inside.example.com": ["127.0.0.1"]})
    monkeypatch.setattr(sender, "SystemResolver", lambda: resolver)  # what factories.host_resolver builds
    refused = runner.api("POST", "/webhooks", {"url": "https://inside.example.com/hook"})
    assert (refused.status, refused.body["message"]) == (
        400, "url may not point to inside.example.com: it resolves to 127.0.0.1, a loopback address"
    )  # fmt: skip
    created = runner.api("POST", "/webhooks", {"url": "https://hooks.example.com/hook"})
    assert created.status == 201
    SECRETS.add(created.body["secret"].removeprefix("whsec_"))

    # The name now resolves to the instance-metadata address: the test event is not sent, and says why
    resolver.names["hooks.example.com"] = ["169.254.169.254"]
    assert runner.api("POST", f"/webhooks/{created.body['id']}/test").status == 202
    runner.deliver_webhooks()
    health = runner.api("GET", f"/webhooks/{created.body['id']}").body["delivery"]
    assert health["last_failure_reason"] == (
        "not sent: url may not point to hooks.example.com: it resolves to 169.254.169.254, a link-local address "
        "(the instance-metadata address among them)"
    )
    assert health["attempts_pending"] == 1


def test_redrive_sends_a_parked_delivery_again_with_the_same_id_and_body_and_a_fresh_signature(
    emulator: GenviralEmulator,
    relay: LocalRunner,
    receiver: WebhookReceiver,
    relay_clock: SteppingClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a delivery parked after its last attempt, and the endpoint fixed since
    register(relay, receiver)
    receiver.answer(*[500] * 8)
    (event,) = check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    relay.deliver_webhooks()
    for wait in RETRY_DELAYS:
        relay_clock.now += wait
        relay.deliver_webhooks()
    assert len(receiver.received) == 8
    relay_clock.now += timedelta(days=2)

    # When an operator redrives the webhooks' dead-letter queue
    for name, value in relay.stack.cli_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("genviral_relay.clock.utc_now", relay_clock)
    assert cli_main.main(["redrive", "webhooks", "--yes"]) == 0
    assert "1 message(s) redriven and deleted, 0 left in the queue" in capsys.readouterr().out
    relay.deliver_webhooks()

    # Then the endpoint takes it: the same id and body, a timestamp and signature of now, verified
    redriven = receiver.received[-1]
    assert (len(receiver.received), redriven.answer) == (9, 200)
    assert redriven.verified, redriven.problem
    assert redriven.webhook_id == event["event_id"]
    assert redriven.body == receiver.received[0].body
    assert int(redriven.headers["webhook-timestamp"]) == int(relay_clock.now.timestamp())
    assert relay.stack.release_delayed("WebhookDeliveryQueue", lambda _: True) == 0
    dlq = relay.stack.client("sqs").receive_message(QueueUrl=relay.stack.ref("WebhookDLQ"))
    assert dlq.get("Messages", []) == []


class RefusingSqs:
    """An SQS client that refuses the `SendMessageBatch` entries `refuses` picks, as SQS does in a 200 answer
    (`Failed[]`), and sends the others."""

    def __init__(self, inner: Any, refuses: Callable[[dict[str, Any]], bool]) -> None:
        self._inner = inner
        self._refuses = refuses

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        refused = [entry for entry in Entries if self._refuses(entry)]
        taken = [entry for entry in Entries if not self._refuses(entry)]
        answer = self._inner.send_message_batch(QueueUrl=QueueUrl, Entries=taken) if taken else {"Successful": []}
        failed = [{"Id": entry["Id"], "Code": "InternalError", "SenderFault": False} for entry in refused]
        return {**answer, "Failed": [*answer.get("Failed", []), *failed]}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def refusing_deliveries_to(monkeypatch: pytest.MonkeyPatch, webhook_id: str) -> None:
    """From now on, the delivery queue's SQS refuses every delivery to `webhook_id` (the others go)."""
    build = webhook_factories.build_delivery_queue

    def refuses(entry: dict[str, Any]) -> bool:
        return bool(entry["MessageAttributes"]["webhook_id"]["StringValue"] == webhook_id)

    def refusing(queue_url: str, dead_letter_url: str, client: Any = factories.aws_client) -> Any:
        return build(queue_url, dead_letter_url, client=lambda service: RefusingSqs(client(service), refuses))

    monkeypatch.setattr(webhook_factories, "build_delivery_queue", refusing)


def queued_deliveries(relay: LocalRunner) -> list[dict[str, str]]:
    """The attributes of every delivery on the delivery queue (released from its delay first)."""
    relay.stack.release_delayed("WebhookDeliveryQueue", lambda _: True)
    sqs, url = relay.stack.client("sqs"), relay.stack.ref("WebhookDeliveryQueue")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return [attributes(message) for message in messages.get("Messages", [])]


def emitted_values(capsys: pytest.CaptureFixture[str], name: str) -> list[float]:
    """The values of metric `name` in the EMF documents the functions printed since the last read."""
    lines = capsys.readouterr().out.splitlines()
    documents = [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]
    found = [document[name] for document in documents if name in document]
    return [float(value) for values in found for value in (values if isinstance(values, list) else [values])]


def test_the_delivery_queue_answers_the_positions_of_the_deliveries_sqs_refused_across_batches(
    local_stack: MotoStack,
) -> None:
    # Given 12 deliveries of one event (two batches), and SQS refusing the second entry of each batch
    sqs = RefusingSqs(local_stack.client("sqs"), lambda entry: bool(entry["Id"] == "1"))
    url = local_stack.ref("WebhookDeliveryQueue")
    queue = SqsDeliveryQueue(sqs, url, local_stack.ref("WebhookDLQ"), clock=factories.utc_now)
    deliveries = [
        WebhookDelivery(
            webhook_id=f"wh_{index:032x}",
            event_id="0b6a9d5e-7f0c-5d1e-9a43-4f1c8e2b7d10",
            event_type="post.account.posted",
            attempt=1,
            due_at=factories.utc_now(),
            post_id="p-1",
        )
        for index in range(12)
    ]

    # When they are queued, then the answer names those two deliveries, and the queue holds the ten others
    assert queue.send(deliveries) == [1, 11]
    received = [
        attributes(message)["webhook_id"]
        for _ in range(2)
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
    ]
    refused = {deliveries[1].webhook_id, deliveries[11].webhook_id}
    assert sorted(received) == sorted({delivery.webhook_id for delivery in deliveries} - refused)


def test_a_delivery_sqs_refuses_alone_is_the_only_one_fanned_out_again_and_the_other_counts_as_queued(
    emulator: GenviralEmulator,
    relay: LocalRunner,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two endpoints for every type, and the delivery queue refusing the second one's deliveries
    first, second = register(relay, receiver)["id"], register(relay, receiver, url=f"{receiver.url}/2")["id"]
    refusing_deliveries_to(monkeypatch, second)
    (event,) = check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    capsys.readouterr()

    # When the dispatcher fans the event out
    fanned = relay.drain_queue(WEBHOOK_DISPATCHER, max_batches=1)

    # Then the first endpoint's delivery is queued and counted, and the event comes back for the other one
    assert (fanned.processed, fanned.failed) == (0, 1)
    assert [(queued["webhook_id"], queued["event_id"]) for queued in queued_deliveries(relay)] == [
        (first, event["event_id"])
    ]
    assert emitted_values(capsys, "WebhookDeliveriesQueued") == [1.0]


def test_redrive_keeps_in_the_dlq_only_the_deliveries_the_queue_refused(
    emulator: GenviralEmulator,
    relay: LocalRunner,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given one event's deliveries to two endpoints parked in WebhookDLQ, and the queue refusing the second's
    first, second = register(relay, receiver)["id"], register(relay, receiver, url=f"{receiver.url}/2")["id"]
    (event,) = check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    stack = relay.stack
    parking = webhook_factories.build_delivery_queue(
        stack.ref("WebhookDeliveryQueue"), stack.ref("WebhookDLQ"), client=stack.client
    )
    for webhook_id in (first, second):
        delivery = WebhookDelivery(
            webhook_id=webhook_id,
            event_id=event["event_id"],
            event_type=event["event_type"],
            attempt=8,
            due_at=factories.utc_now(),
            post_id=event["post_id"],
        )
        parking.park(delivery, "HTTP 503: Service Unavailable")
    refusing_deliveries_to(monkeypatch, second)

    # When an operator redrives the webhooks' dead-letter queue
    for name, value in stack.cli_environment().items():
        monkeypatch.setenv(name, value)
    cli_main.main(["redrive", "webhooks", "--yes"])

    # Then the first endpoint's delivery is queued and gone from the DLQ; the refused one alone stays there
    assert "1 message(s) redriven and deleted, 1 left in the queue" in capsys.readouterr().out
    assert [queued["webhook_id"] for queued in queued_deliveries(relay)] == [first]
    left = stack.client("sqs").receive_message(
        QueueUrl=stack.ref("WebhookDLQ"), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    assert [attributes(message)["webhook_id"] for message in left["Messages"]] == [second]


def test_every_type_the_relay_publishes_is_a_webhook_type_a_completion_among_them(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver
) -> None:
    # Given an endpoint for completions only
    register(relay, receiver, event_types=["post.completed"])

    # When a one-account post is delivered: a transition, and the post's completion
    post_id = emulator.create_post(accounts=1, scheduled_at=factories.utc_now() - timedelta(minutes=1))
    assert relay.api("POST", "/watches", {"post_id": post_id}).status == 201
    emulator.mark_posted(post_id, emulator.account_ids(post_id)[0])
    events = check_now(relay, post_id)
    relay.deliver_webhooks()

    # Then the endpoint got the completion alone, verified
    (completion,) = [event for event in events if event["event_type"] == "post.completed"]
    (delivery,) = receiver.received
    assert delivery.verified
    assert delivery.webhook_id == completion["event_id"]
    assert json.loads(delivery.body) == completion
