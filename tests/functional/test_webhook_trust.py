"""Trust in deliveries over real sockets on 127.0.0.1: an attempt is bounded as a whole, however slowly an
endpoint trickles its answer; a name's addresses are tried in order; a URL with a non-ASCII path is stored
percent-encoded and delivered to, and one with a control character is refused at registration."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from genviral_relay.receivers import sender
from genviral_relay.receivers.sender import HttpWebhookSender
from genviral_relay.rules.webhook_urls import Destination
from local.emulator import GenviralEmulator
from local.runner import WEBHOOK_DELIVERY, LocalRunner, sqs_record
from local.stack import MotoStack
from local.webhook_receiver import WebhookReceiver
from tests.conftest import SECRETS, TOKEN
from tests.support.doubles import StaticResolver, SteppingClock

TIMEOUT = 1.0
"""The sender's bound in these tests (10 s in a deployment): short, so a test that passes stays fast."""
BOUND = TIMEOUT + 4.0
"""Generous: the attempt ends within its bound plus a slow machine's scheduling, far before the trickle ends."""
TRICKLE = 0.2
"""Seconds between two bytes of a trickled answer."""


class TricklingServer:
    """An endpoint on 127.0.0.1 that reads a request, then answers `head` and `body` one byte every TRICKLE
    seconds (a Slowloris in reverse), from the byte `fast` on; the bytes before go at once."""

    def __init__(self, head: bytes, body: bytes = b"", *, fast: int = 0) -> None:
        self._answer = head + body
        self._fast = fast
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TricklingServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closing.set()
        self._listener.close()

    def _serve(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            _read_request(connection)
            try:
                connection.sendall(self._answer[: self._fast])
                for index in range(self._fast, len(self._answer)):
                    if self._closing.wait(TRICKLE):
                        return
                    connection.sendall(self._answer[index : index + 1])
            except OSError:  # the sender gave up and closed the connection: what the test wants
                return


def _read_request(connection: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += connection.recv(4096)


def _post(port: int) -> tuple[Any, float]:
    where = Destination(scheme="http", host="127.0.0.1", port=port, target="/hook", addresses=("127.0.0.1",))
    started = time.monotonic()
    answer = HttpWebhookSender(timeout=TIMEOUT).post(where, {"content-type": "application/json"}, b"{}")
    return answer, time.monotonic() - started


def test_headers_trickled_one_byte_at_a_time_fail_the_attempt_within_its_bound() -> None:
    # Given an endpoint whose status line and headers would take 12 s to arrive, each byte well within a read's time
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-slow: " + b"a" * 20 + b"\r\n\r\n"
    with TricklingServer(head) as server:
        # When an attempt is made
        answer, took = _post(server.port)

    # Then it ends within its bound, as a failure that says so
    assert (answer.status, answer.reason) == (None, f"no answer within {TIMEOUT:g} s")
    assert took < BOUND


def test_a_body_trickled_past_the_bound_fails_the_attempt_though_the_status_was_2xx() -> None:
    # Given an endpoint that answers 200 at once, then trickles a 60-byte body over 12 s
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 60\r\n\r\n"
    with TricklingServer(head, b"x" * 60, fast=len(head)) as server:
        answer, took = _post(server.port)

    assert (answer.status, answer.accepted, answer.reason) == (None, False, f"no answer within {TIMEOUT:g} s")
    assert took < BOUND


def test_the_next_address_is_tried_when_the_first_refuses_the_connection() -> None:
    # Given a name's two addresses: 127.0.0.2, where nothing listens on the port, then the receiver's 127.0.0.1
    with WebhookReceiver() as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        where = Destination(
            scheme="http",
            host="hooks.relay-test.invalid",
            port=port,
            target="/hook",
            addresses=("127.0.0.2", "127.0.0.1"),
        )
        answer = HttpWebhookSender(timeout=5).post(where, {}, b"{}")
        assert (answer.status, len(receiver.received)) == (200, 1)

    # And when every address refuses, the attempt fails as refused
    only_closed = Destination(scheme="http", host="x.invalid", port=port, target="/", addresses=("127.0.0.2",) * 2)
    assert HttpWebhookSender(timeout=5).post(only_closed, {}, b"{}").reason == "connection refused"


# ---------------------------------------------------------------- through the template's functions on moto


@pytest.fixture
def private_stack(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    # As local runs do: the loopback receiver is http:// on 127.0.0.1, which the default refuses.
    parameters = {"AllowPrivateWebhookUrls": "true"}
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters=parameters) as running:
        yield running


@pytest.fixture
def relay(private_stack: MotoStack) -> LocalRunner:
    return LocalRunner(private_stack)


def _register(relay: LocalRunner, url: str, receiver: WebhookReceiver | None = None) -> dict[str, Any]:
    answer = relay.api("POST", "/webhooks", {"url": url})
    assert answer.status == 201, answer.body
    SECRETS.add(answer.body["secret"].removeprefix("whsec_"))
    if receiver is not None:
        receiver.trust(answer.body["secret"])
    return dict(answer.body)


def test_a_non_ascii_path_and_query_are_stored_percent_encoded_and_answered_so(
    relay: LocalRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = StaticResolver({"example.com": ["93.184.216.34"]})
    monkeypatch.setattr(sender, "SystemResolver", lambda: resolver)  # what factories.host_resolver builds

    created = _register(relay, "https://example.com/ünïcode?q=é")

    stored = "https://example.com/%C3%BCn%C3%AFcode?q=%C3%A9"
    assert created["url"] == stored
    assert relay.api("GET", f"/webhooks/{created['id']}").body["url"] == stored


@pytest.mark.parametrize("control", ["\x00", "\r\n", "\t", "\x7f", "\x85"])
def test_a_url_with_a_control_character_is_refused_saying_so(relay: LocalRunner, control: str) -> None:
    answer = relay.api("POST", "/webhooks", {"url": f"http://127.0.0.1:8080/ho{control}ok"})
    assert (answer.status, answer.body["error"]) == (400, "bad_request")
    assert f"url must not contain a control character U+{ord(control[0]):04X}" in answer.body["message"]


def test_an_endpoint_with_a_non_ascii_path_receives_its_deliveries(
    relay: LocalRunner, relay_clock: SteppingClock
) -> None:
    with WebhookReceiver(clock=relay_clock, path="/hooks/ünï") as receiver:
        created = _register(relay, receiver.url, receiver)
        assert relay.api("POST", f"/webhooks/{created['id']}/test").status == 202

        relay.deliver_webhooks()

        (delivery,) = receiver.received
        assert delivery.verified, delivery.problem
        assert delivery.path == "/hooks/%C3%BCn%C3%AF"
        health = relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]
        assert (health["last_success_at"] is not None, health["failing_since"]) == (True, None)


def test_a_name_whose_first_address_refuses_is_delivered_to_at_the_next(
    relay: LocalRunner, relay_clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = StaticResolver({"hooks.relay-test.invalid": ["127.0.0.2", "127.0.0.1"]})
    monkeypatch.setattr(sender, "SystemResolver", lambda: resolver)
    with WebhookReceiver(clock=relay_clock) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        created = _register(relay, f"http://hooks.relay-test.invalid:{port}/hooks/genviral", receiver)
        assert relay.api("POST", f"/webhooks/{created['id']}/test").status == 202

        relay.deliver_webhooks()

        (delivery,) = receiver.received
        assert delivery.verified, delivery.problem
        assert relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]["failing_since"] is None


def test_a_delivery_the_function_has_no_time_left_for_goes_back_to_the_queue_unattempted(
    relay: LocalRunner, relay_clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with WebhookReceiver(clock=relay_clock) as receiver:
        # Given a queued delivery, and an invocation with 12 s left: less than an attempt and its recording need
        created = _register(relay, receiver.url, receiver)
        assert relay.api("POST", f"/webhooks/{created['id']}/test").status == 202
        queue_url = relay.stack.ref("WebhookDeliveryQueue")
        sqs = relay.stack.client("sqs")
        (message,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])  # as Lambda does on success
        queue_arn = relay.stack.resolver.attributes[("WebhookDeliveryQueue", "Arn")]
        full_time = relay.stack.timeout_seconds
        monkeypatch.setattr(relay.stack, "timeout_seconds", lambda _: 12)

        # When the delivery function gets it
        answer = relay.invoke(WEBHOOK_DELIVERY, {"Records": [sqs_record(message, queue_arn)]})

        # Then nothing is sent or counted, and the same delivery is on the queue again, for the next invocation
        assert answer == {"batchItemFailures": []}
        assert receiver.received == []
        health = relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]
        assert (health["attempts_pending"], health["failing_since"], health["last_failure_reason"]) == (0, None, None)
        (again,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
        assert again["Body"] == message["Body"]
        assert again["MessageAttributes"]["attempt"] == message["MessageAttributes"]["attempt"]
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0)

        # And an invocation with the time makes the attempt
        monkeypatch.setattr(relay.stack, "timeout_seconds", full_time)
        relay.deliver_webhooks()
        (delivery,) = receiver.received
        assert delivery.verified, delivery.problem
