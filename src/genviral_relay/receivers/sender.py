"""The webhook sender: one POST per attempt, with the standard library's HTTP client.

The connection goes to the addresses the URL rules checked (`Destination.addresses`, the next when one refuses
or does not connect), not to whatever the name resolves to a moment later, so a name cannot be rebound to a
forbidden address between the check and the request; TLS still verifies the certificate against the name. The
attempt as a whole (connect, TLS, request, status line, headers, body) is bounded by TIMEOUT_SECONDS of wall
time. Redirects are not followed (a 3xx is a failure, as Standard Webhooks has it), and the answer's body is
read within the deadline and only its start kept, as text (a chat service says why it refused in it: never
logged as it is); of its headers only `Retry-After` is read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from genviral_relay import __version__
from genviral_relay.bounded_socket import BoundedSocket
from genviral_relay.deadlines import Deadline
from genviral_relay.rules.retry_after import read_retry_after
from genviral_relay.rules.webhook_urls import Destination, HostResolver
from genviral_relay.webhooks.ports import WebhookAnswer, WebhookSender

TIMEOUT_SECONDS = 10.0
"""The whole attempt, from connecting to the answer's last byte read: an endpoint slower than this has failed it."""
CONNECT_SECONDS = 5.0
"""One address's connection, within the attempt's time: the next address gets the rest."""
MAX_BODY_READ = 64 * 1024
MAX_ANSWER_TEXT = 2048
"""Of the answer's body, what is kept: a chat service's reason is a word or a short JSON document."""
USER_AGENT = f"genviral-relay/{__version__} (webhooks)"


LOOKUP_SECONDS = 5.0
"""A name's lookup may take this long: the endpoint's owner runs its DNS, and a stalled lookup must not eat the
delivery function's time (a lookup cannot be interrupted: one past this is left to finish on its own thread)."""
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


class SystemResolver(HostResolver):
    def __init__(self, *, timeout: float = LOOKUP_SECONDS) -> None:
        self._timeout = timeout

    def addresses(self, host: str, port: int) -> list[str]:
        lookup = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            found = lookup.result(timeout=self._timeout)
        except FutureTimeout:
            raise OSError(f"looking up {host} took over {self._timeout:g} s") from None
        return list(dict.fromkeys(str(info[4][0]) for info in found))


def _connect(destination: Destination, deadline: Deadline) -> socket.socket:
    """A connection to the first of the destination's addresses that takes one, in order, within the deadline."""
    failure: OSError | None = None
    for address in destination.addresses:
        seconds = min(CONNECT_SECONDS, deadline.left())
        try:
            return socket.create_connection((address, destination.port), seconds)
        except OSError as error:  # refused, unreachable, no answer: the next address may take it
            failure = error
    assert failure is not None, "a destination has at least one address"
    raise failure


class _PinnedHttp(http.client.HTTPConnection):
    def __init__(self, destination: Destination, deadline: Deadline) -> None:
        super().__init__(destination.host, destination.port)
        self._destination = destination
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = BoundedSocket(self._open(), lambda: self._deadline)

    def _open(self) -> socket.socket:
        return _connect(self._destination, self._deadline)


class _PinnedHttps(_PinnedHttp):
    default_port = http.client.HTTPS_PORT  # the Host header names no port on 443

    def __init__(self, destination: Destination, deadline: Deadline, context: ssl.SSLContext) -> None:
        super().__init__(destination, deadline)
        self._tls = context

    def _open(self) -> socket.socket:
        raw = _connect(self._destination, self._deadline)
        raw.settimeout(self._deadline.left())  # the handshake as a whole: CPython's SSL takes it as a deadline
        try:
            return self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class HttpWebhookSender(WebhookSender):
    def __init__(
        self,
        *,
        timeout: float | None = None,
        context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._context = context or ssl.create_default_context()
        self._clock = clock

    @property
    def timeout(self) -> float:
        return self._timeout or TIMEOUT_SECONDS  # read when asked: the local runs shorten it

    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        timeout = self.timeout
        deadline = Deadline.after(timeout, self._clock)
        connection: http.client.HTTPConnection = (
            _PinnedHttps(destination, deadline, self._context)
            if destination.scheme == "https"
            else _PinnedHttp(destination, deadline)
        )
        answer: http.client.HTTPResponse | None = None
        try:
            connection.request("POST", destination.target, body=body, headers={**headers, "user-agent": USER_AGENT})
            answer = connection.getresponse()
            said = answer.read(MAX_BODY_READ)  # within the deadline too: a body trickled past it fails the attempt
            retry_after = read_retry_after(answer.getheader("Retry-After"))  # the retry rule says when it counts
            text = said[:MAX_ANSWER_TEXT].decode("utf-8", errors="replace")
            return WebhookAnswer(status=answer.status, reason=answer.reason or "", retry_after=retry_after, text=text)
        except TimeoutError:
            return WebhookAnswer(status=None, reason=f"no answer within {timeout:g} s")
        except ConnectionRefusedError:
            return WebhookAnswer(status=None, reason="connection refused")
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.RemoteDisconnected):
            return WebhookAnswer(status=None, reason="connection reset")
        except ssl.SSLError as error:
            return WebhookAnswer(status=None, reason=f"TLS failed: {error.reason or type(error).__name__}")
        except (OSError, http.client.HTTPException) as error:
            return WebhookAnswer(status=None, reason=f"not delivered: {type(error).__name__}")
        finally:
            if answer is not None:
                answer.close()
            connection.close()
