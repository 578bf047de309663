"""A connection's socket whose every send and receive gets only what is left of a deadline.

A per-read timeout alone lets a peer trickling one byte a second hold a request for ever (each byte restarts it):
the status line, the headers and the body alike. Shared by the webhook sender (http.client) and Genviral's client
(urllib3 under requests), which both read the answer through `makefile` and send with `sendall`.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from typing import Any

from genviral_relay.deadlines import Deadline

SEND_CHUNK = 64 * 1024


class BoundedSocket:
    """`sock` as an HTTP client uses it (sendall, makefile, settimeout, close; anything else is the socket's own),
    each blocking step bounded by what is left of `deadline()` (None: no deadline, the timeout set alone), and
    by the timeout the client sets, whichever ends first; past the deadline a step raises TimeoutError. Closed
    for real once its readers are closed too, as a socket is (http.client closes the connection before the
    answer's body is read when the peer closes after it)."""

    def __init__(self, sock: socket.socket, deadline: Callable[[], Deadline | None]) -> None:
        self._sock = sock
        self._deadline = deadline
        self._timeout: float | None = None  # the client's own per-step timeout (`settimeout`)
        self._readers = 0
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)  # fileno (urllib3 polls it), shutdown, getpeername, ...

    def settimeout(self, seconds: float | None) -> None:
        self._timeout = seconds

    def gettimeout(self) -> float | None:
        return self._timeout

    def _bound(self) -> None:
        deadline = self._deadline()
        left = None if deadline is None else deadline.left()
        bounds = [seconds for seconds in (self._timeout, left) if seconds is not None]
        self._sock.settimeout(min(bounds, default=None))

    def sendall(self, data: bytes) -> None:
        # send() by send(): SSLSocket.sendall gives each of its sends the whole timeout
        with memoryview(data) as view, view.cast("B") as remaining:
            sent = 0
            while sent < len(remaining):
                self._bound()
                sent += self._sock.send(remaining[sent : sent + SEND_CHUNK])

    def recv_into(self, buffer: memoryview) -> int:
        self._bound()
        return self._sock.recv_into(buffer)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_BoundedReader(self))

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closed and self._readers == 0:
            self._sock.close()

    def close(self) -> None:
        self._closed = True
        if self._readers == 0:
            self._sock.close()


class _BoundedReader(io.RawIOBase):
    def __init__(self, sock: BoundedSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(memoryview(buffer).cast("B"))

    def close(self) -> None:
        if not self.closed:
            self._sock.reader_closed()
        super().close()
