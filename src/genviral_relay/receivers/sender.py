"""The webhook sender: one POST per attempt, with the standard library's HTTP client.

The connection goes to the address the URL rules checked (`Destination.address`), not to whatever the name
resolves to a moment later, so a name cannot be rebound to a forbidden address between the check and the
request; TLS still verifies the certificate against the name. Redirects are not followed (a 3xx is a failure,
as Standard Webhooks has it), and the answer's body is read only to keep the connection tidy, never kept.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Mapping

from genviral_relay import __version__
from genviral_relay.rules.webhook_urls import Destination, HostResolver
from genviral_relay.webhooks.ports import WebhookAnswer, WebhookSender

TIMEOUT_SECONDS = 10.0
"""From connecting to the answer's status line: an endpoint slower than this has failed the attempt."""
CONNECT_SECONDS = 5.0
MAX_BODY_READ = 64 * 1024
USER_AGENT = f"genviral-relay/{__version__} (webhooks)"


class SystemResolver(HostResolver):
    def addresses(self, host: str, port: int) -> list[str]:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in found))


class _PinnedHttp(http.client.HTTPConnection):
    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._address = destination.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHttps(http.client.HTTPSConnection):
    def __init__(self, destination: Destination, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout, context=context)
        self._address = destination.address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class HttpWebhookSender(WebhookSender):
    def __init__(self, *, timeout: float | None = None, context: ssl.SSLContext | None = None) -> None:
        self._timeout = timeout
        self._context = context or ssl.create_default_context()

    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        timeout = self._timeout or TIMEOUT_SECONDS  # read now: the local runs shorten it
        deadline = time.monotonic() + timeout
        connect = min(CONNECT_SECONDS, timeout)
        connection: http.client.HTTPConnection = (
            _PinnedHttps(destination, connect, self._context)
            if destination.scheme == "https"
            else _PinnedHttp(destination, connect)
        )
        try:
            connection.connect()
            _remaining(connection, deadline)
            connection.request("POST", destination.target, body=body, headers={**headers, "user-agent": USER_AGENT})
            _remaining(connection, deadline)
            answer = connection.getresponse()
            _remaining(connection, deadline)
            answer.read(MAX_BODY_READ)
            return WebhookAnswer(status=answer.status, reason=answer.reason or "")
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
            connection.close()


def _remaining(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Give the next step only what is left of the attempt's time."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    if connection.sock is not None:
        connection.sock.settimeout(left)
