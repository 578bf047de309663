"""The webhook sender over real sockets: HTTPS to the address it is given, the certificate checked against the
URL's name; what each way of failing is reported as. Loopback only: a throwaway CA signs a certificate for a
name that no resolver knows, so the connection can only reach the server through the pinned address."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from genviral_relay.receivers.sender import HttpWebhookSender
from genviral_relay.rules.webhook_urls import Destination
from local.webhook_receiver import Answer, Reply, WebhookReceiver
from tests.support.tls import certificates

NAME = "hooks.relay-test.invalid"  # .invalid never resolves: only the pinned address reaches the server


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate for NAME, server key) in files."""
    return certificates(tmp_path_factory.mktemp("tls"), NAME)


@pytest.fixture
def https_server(tls: tuple[Path, Path, Path]) -> Iterator[tuple[int, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            seen.append({name.lower(): value for name, value in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls[1], tls[2])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def test_https_goes_to_the_pinned_address_and_checks_the_certificate_against_the_name(
    tls: tuple[Path, Path, Path], https_server: tuple[int, list[dict[str, str]]]
) -> None:
    port, seen = https_server
    where = Destination(scheme="https", host=NAME, port=port, target="/in?x=1", addresses=("127.0.0.1",))
    answer = HttpWebhookSender(context=trusting(tls[0]), timeout=5).post(where, {"webhook-id": "e1"}, b"{}")
    assert (answer.status, answer.accepted) == (204, True)
    (headers,) = seen
    assert headers["host"] == f"{NAME}:{port}"
    assert headers["webhook-id"] == "e1"
    assert headers["user-agent"].startswith("genviral-relay/")


def test_a_certificate_for_another_name_or_an_unknown_issuer_fails_the_attempt(
    tls: tuple[Path, Path, Path], https_server: tuple[int, list[dict[str, str]]]
) -> None:
    port, seen = https_server
    other_name = Destination(
        scheme="https", host="other.relay-test.invalid", port=port, target="/", addresses=("127.0.0.1",)
    )
    assert (
        HttpWebhookSender(context=trusting(tls[0]), timeout=5)
        .post(other_name, {}, b"{}")
        .reason.startswith("TLS failed")
    )
    right_name = Destination(scheme="https", host=NAME, port=port, target="/", addresses=("127.0.0.1",))
    unknown_issuer = HttpWebhookSender(timeout=5).post(right_name, {}, b"{}")  # the system's CAs only
    assert (unknown_issuer.status, unknown_issuer.reason.startswith("TLS failed")) == (None, True)
    assert seen == []


def test_a_closed_port_is_a_refused_connection() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    where = Destination(scheme="http", host="127.0.0.1", port=port, target="/", addresses=("127.0.0.1",))
    answer = HttpWebhookSender(timeout=2).post(where, {}, b"{}")
    assert (answer.status, answer.reason) == (None, "connection refused")


@pytest.mark.parametrize(("answer", "accepted"), [(200, True), (204, True), (299, True), (302, False), (410, False)])
def test_only_a_2xx_is_a_success_and_a_redirect_is_not_followed(answer: int, accepted: bool) -> None:
    with WebhookReceiver() as receiver:
        receiver.answer(answer)
        port = int(receiver.url.split(":")[2].split("/")[0])
        where = Destination(
            scheme="http", host="127.0.0.1", port=port, target="/hooks/genviral", addresses=("127.0.0.1",)
        )
        result = HttpWebhookSender(timeout=5).post(where, {"content-type": "application/json"}, b"{}")
        assert (result.status, result.accepted) == (answer, accepted)
        assert len(receiver.received) == 1  # one request: nothing followed


def _loopback(receiver: WebhookReceiver) -> Destination:
    port = int(receiver.url.split(":")[2].split("/")[0])
    return Destination(scheme="http", host="127.0.0.1", port=port, target="/hooks/genviral", addresses=("127.0.0.1",))


@pytest.mark.parametrize(
    ("reply", "status", "retry_after"),
    [
        (Reply(429, "120"), 429, 120.0),
        (Reply(503, "Sat, 01 Feb 2025 15:02:00 GMT"), 503, dt.datetime(2025, 2, 1, 15, 2, tzinfo=dt.UTC)),
        (Reply(429, "soon"), 429, None),
        (429, 429, None),
    ],
)
def test_the_answers_retry_after_is_read_as_seconds_or_a_moment(
    reply: Answer, status: int, retry_after: object
) -> None:
    with WebhookReceiver() as receiver:
        receiver.answer(reply)
        result = HttpWebhookSender(timeout=5).post(_loopback(receiver), {"content-type": "application/json"}, b"{}")
    assert (result.status, result.retry_after) == (status, retry_after)
