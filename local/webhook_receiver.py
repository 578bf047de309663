"""A webhook endpoint on 127.0.0.1 that verifies every delivery with the reference library (`standardwebhooks`),
answers as it is told (a status, one with `Retry-After`, a reset connection, no answer until released) and records
what came.

The tests and the demo use it: `POST /webhooks` with its `url`, `trust(secret)` with the answer's secret, then
read `received`. The library checks a delivery's timestamp against the wall clock, five minutes either way; the
relay's clock in a test moves hours at once, so the receiver's clock is the relay's (`clock`), and only that
one step of the library is done against it.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    """A status with a `Retry-After` header, sent verbatim (any text, even invalid): back-pressure; and a body, as a
    chat service says why (Slack's `channel_is_archived`, Discord's JSON)."""

    status: int
    retry_after: str | None = None
    body: str = ""
    content_type: str = "text/plain"


Answer = int | Reply | Literal["reset", "hang"]
"""A status to answer with (alone or with `Retry-After`), a connection reset before any answer, or no answer until
`release()`."""
TOLERANCE = timedelta(minutes=5)  # the library's


class _ClockedWebhook(Webhook):
    """The reference verifier, its timestamp tolerance measured against `clock` instead of the wall clock."""

    def __init__(self, secret: str, clock: Callable[[], datetime]) -> None:
        super().__init__(secret)
        self._clock = clock

    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:  # overrides the library's private step
        try:
            timestamp = datetime.fromtimestamp(float(timestamp_header), tz=UTC)
        except ValueError:
            raise WebhookVerificationError("Invalid Signature Headers") from None
        now = self._clock()
        if timestamp < now - TOLERANCE:
            raise WebhookVerificationError("Message timestamp too old")
        if timestamp > now + TOLERANCE:
            raise WebhookVerificationError("Message timestamp too new")
        return timestamp


@dataclass
class Delivery:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    answer: Answer
    path: str = ""
    """The request's path and query, as the request line had them."""
    verified_by: list[int] = field(default_factory=list)
    """Indexes (in `trust` order) of the secrets whose signature is in the request, checked by the library."""
    problem: str | None = None

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def signatures(self) -> list[str]:
        return self.headers.get("webhook-signature", "").split()

    @property
    def verified(self) -> bool:
        return bool(self.verified_by)


class WebhookReceiver:
    def __init__(
        self, *, clock: Callable[[], datetime] | None = None, path: str = "/hooks/genviral", chat: bool = False
    ) -> None:
        """`chat`: stands in for a chat service's webhook (Slack, Discord, Teams), which takes unsigned JSON."""
        self._clock = clock or (lambda: datetime.now(UTC))
        self._path = path
        self.chat = chat
        self._secrets: list[str] = []
        self._answers: deque[Answer] = deque()
        self.received: list[Delivery] = []
        self._lock = threading.Condition()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the receiver first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self._path}"

    # ------------------------------------------------------------------ script
    def trust(self, secret: str) -> None:
        """Verify deliveries with this secret too (a registration's, then a rotation's)."""
        self._secrets.append(secret)

    def answer(self, *answers: Answer) -> None:
        """Answer the next requests so, in order; then 200."""
        self._answers.extend(answers)

    def release(self) -> None:
        """Let every request held by a `hang` answer go (with a 200, if its sender still waits)."""
        self._release.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Block until `count` requests have come (synchronisation with a sender on another thread)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} request(s) came, not {count}")
            return list(self.received)

    # ------------------------------------------------------------------ serving
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length)
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._lock:
            answer: Answer = self._answers.popleft() if self._answers else 200
        delivery = Delivery(headers=headers, body=body, answer=answer, path=request.path)
        self._verify(delivery)
        with self._lock:
            self.received.append(delivery)
            self._lock.notify_all()
        if answer == "reset":
            # An RST instead of an answer: SO_LINGER with a zero timeout, then close.
            request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.connection.close()
            request.close_connection = True
            return
        if answer == "hang":
            self._release.wait()
            answer = 200
        try:
            reply = answer if isinstance(answer, Reply) else Reply(answer)
            said = reply.body.encode()
            request.send_response(reply.status)
            if reply.retry_after is not None:
                request.send_header("Retry-After", reply.retry_after)
            if said:
                request.send_header("content-type", reply.content_type)
            request.send_header("content-length", str(len(said)))
            request.end_headers()
            request.wfile.write(said)
        except OSError:  # the sender gave up waiting (a `hang` past its timeout) and closed the connection
            request.close_connection = True

    def _verify(self, delivery: Delivery) -> None:
        if self.chat:
            return  # a chat service verifies nothing: nothing is signed
        problems = []
        for index, secret in enumerate(self._secrets):
            try:
                _ClockedWebhook(secret, self._clock).verify(delivery.body, delivery.headers, json_parse=False)
            except WebhookVerificationError as error:
                problems.append(f"secret {index}: {error}")
            else:
                delivery.verified_by.append(index)
        if not self._secrets:
            problems.append("no secret to verify with")
        if not delivery.verified_by:
            delivery.problem = "; ".join(problems)


@contextmanager
def receiving(**kwargs: Any) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(**kwargs) as receiver:
        yield receiver
