"""Genviral's client bounds the socket, not only the steps between reads: over TLS (a loopback server whose
certificate a throwaway CA signs for 127.0.0.1) and through an HTTP(S) proxy's connections too."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from genviral_relay.errors import GenviralUnavailableError
from genviral_relay.genviral.client import ClientSettings, GenviralClient, StaticToken, build_session
from genviral_relay.genviral.session import BOUNDED_POOLS
from tests.conftest import TOKEN
from tests.support.tls import certificates

BODY = b'{"ok": true, "code": 200, "message": "Accounts retrieved", "data": {"accounts": []}}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
WITHIN = 2.0  # a 0.5 s deadline and slack for a loaded machine; the trickled head alone takes 3 s


class TlsGenviral:
    """Answers every request with an account list, its head at once or one byte every `interval` seconds."""

    def __init__(self, folder: Path) -> None:
        self.ca, cert, key = certificates(folder, "127.0.0.1")
        self.interval: float | None = None
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # how often the accept loop looks at `_stopping`
        self._stopping = threading.Event()
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(10)
            # suppress: the client went away (its deadline), nothing to do
            with raw, suppress(OSError), self._context.wrap_socket(raw, server_side=True) as connection:
                connection.recv(65536)
                self._answer(connection)

    def _answer(self, connection: ssl.SSLSocket) -> None:
        if self.interval is None:
            connection.sendall(HEAD + BODY)
            return
        for index in range(len(HEAD)):
            if self._stopping.wait(self.interval):
                return
            connection.sendall(HEAD[index : index + 1])
        connection.sendall(BODY)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def genviral(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsGenviral]:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests prefers them to the session's `verify`
        monkeypatch.delenv(name, raising=False)
    server = TlsGenviral(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def client_of(server: TlsGenviral) -> GenviralClient:
    session = build_session(2)
    session.verify = str(server.ca)
    settings = ClientSettings(read_timeout=5.0, call_deadline=0.5)
    return GenviralClient(f"https://127.0.0.1:{server.port}", StaticToken(TOKEN), settings=settings, session=session)


def test_over_tls_an_answer_arrives_and_a_trickled_head_is_cut_at_the_calls_deadline(genviral: TlsGenviral) -> None:
    client = client_of(genviral)
    assert client.list_accounts().accounts == ()  # the bounded TLS connection carries an answer

    genviral.interval = 0.05  # each byte well within the 5 s read timeout
    started = time.monotonic()
    with pytest.raises(GenviralUnavailableError, match="did not answer in time"):
        client.list_accounts()

    assert time.monotonic() - started < WITHIN


@pytest.mark.parametrize("proxy", ["http://127.0.0.1:9", "https://127.0.0.1:9"])
def test_connections_through_an_http_proxy_are_bounded_too(proxy: str) -> None:
    adapter = build_session(2).get_adapter("https://api.example")

    manager = adapter.proxy_manager_for(proxy)  # built, not connected

    assert manager.pool_classes_by_scheme == BOUNDED_POOLS
    assert adapter.poolmanager.pool_classes_by_scheme == BOUNDED_POOLS
