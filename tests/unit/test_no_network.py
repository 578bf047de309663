"""The unit specs' network guard (tests/unit/conftest.py) refuses what it says, and lets Unix sockets be. Every
name is loopback: should the guard break, nothing leaves the machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import urllib.request
from collections.abc import Callable
from socket import socket as imported_socket
from typing import Any

import pytest

from tests.unit.no_network import NetworkGuard, NetworkUsedInUnitTest

ATTEMPTS: dict[str, tuple[Callable[[], Any], str]] = {
    "ipv4 socket": (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "socket(AF_INET)"),
    "ipv6 socket": (lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM), "socket(AF_INET6)"),
    "default socket": (lambda: socket.socket(), "socket(AF_INET)"),
    "imported name": (lambda: imported_socket(), "socket(AF_INET)"),
    "getaddrinfo": (lambda: socket.getaddrinfo("localhost", 80), "getaddrinfo('localhost', 80)"),
    "gethostbyname": (lambda: socket.gethostbyname("localhost"), "gethostbyname('localhost',)"),
    "create_connection": (lambda: socket.create_connection(("127.0.0.1", 9)), "getaddrinfo('127.0.0.1', 9"),
    "urlopen": (lambda: urllib.request.urlopen("http://127.0.0.1:9/", timeout=1), "getaddrinfo('127.0.0.1', 9"),
}


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
def test_the_guard_refuses_and_records_network_use(no_network: NetworkGuard, name: str) -> None:
    attempt, recorded = ATTEMPTS[name]
    with pytest.raises(NetworkUsedInUnitTest, match="move the test to tests/functional"):
        attempt()
    assert len(no_network.attempts) == 1
    assert no_network.attempts[0].startswith(recorded)
    no_network.attempts.clear()  # refused on purpose: the teardown check is for the accidental ones


def test_the_guard_refuses_to_use_a_socket_made_before_it_was_installed(
    monkeypatch: pytest.MonkeyPatch, no_network: NetworkGuard
) -> None:
    monkeypatch.undo()  # lifts the guard: this socket is made as one made before it (making one sends nothing)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as earlier:
        no_network.install(monkeypatch)
        with pytest.raises(NetworkUsedInUnitTest):
            earlier.connect(("127.0.0.1", 9))
        with pytest.raises(NetworkUsedInUnitTest):
            earlier.connect_ex(("127.0.0.1", 9))
        with pytest.raises(NetworkUsedInUnitTest):  # nor wrap its descriptor in a new socket object
            socket.socket(fileno=os.dup(earlier.fileno()))
    assert no_network.attempts == ["connect(('127.0.0.1', 9))", "connect_ex(('127.0.0.1', 9))", "socket(AF_INET)"]
    no_network.attempts.clear()


def test_an_attempt_the_code_swallowed_still_fails_the_test(no_network: NetworkGuard) -> None:
    with contextlib.suppress(Exception):  # what a careless `except Exception` in the code under test would do
        socket.getaddrinfo("localhost", 443)
    with pytest.raises(AssertionError, match="a unit test used the network"):
        no_network.check()
    no_network.attempts.clear()


def test_unix_sockets_and_asyncio_still_work(no_network: NetworkGuard) -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"

    async def answer() -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        loop.call_soon(future.set_result, 42)  # the loop runs the callback: it works with the guard on
        return await future

    assert asyncio.run(answer()) == 42  # the loop's self-pipe is a Unix socket pair
    assert no_network.attempts == []
