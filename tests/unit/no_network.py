"""The unit specs' network guard: no IPv4/IPv6 socket, no name lookup (tests/unit/conftest.py installs it for every
unit test). A spec that needs a server, even on loopback, belongs in tests/functional."""

from __future__ import annotations

import socket
from typing import Any

import pytest

GUARDED_FAMILIES = (socket.AF_INET, socket.AF_INET6)
"""AF_UNIX stays open: asyncio's event loops wake themselves through a Unix socket pair."""
LOOKUPS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")


class NetworkUsedInUnitTest(RuntimeError):
    """Not an OSError: code under test that handles connection errors (retries, "upstream unavailable") must not
    absorb it and let the spec pass."""


class NetworkGuard:
    """Refuses, and records, every network use while installed. The record fails the test at teardown even when the
    code under test swallowed the exception."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def refuse(self, what: str) -> NetworkUsedInUnitTest:
        self.attempts.append(what)
        return NetworkUsedInUnitTest(f"unit tests may not use the network ({what}); move the test to tests/functional")

    def check(self) -> None:
        assert not self.attempts, f"a unit test used the network: {self.attempts}"

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        guard = self
        original_init = socket.socket.__init__
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex

        # On the class, not the module attribute: `from socket import socket` and ssl.SSLSocket are caught too.
        def guarded_init(self: socket.socket, *args: Any, **kwargs: Any) -> None:
            family = args[0] if args else kwargs.get("family", -1)
            fileno = args[3] if len(args) > 3 else kwargs.get("fileno")
            if fileno is None:  # refused before the kernel is asked (a host without IPv6 would refuse it otherwise)
                family = socket.AF_INET if family in (-1, None) else socket.AddressFamily(family)
                if family in GUARDED_FAMILIES:
                    raise guard.refuse(f"socket({family.name})")
            original_init(self, *args, **kwargs)
            if self.family in GUARDED_FAMILIES:  # wrapping a descriptor: its family is known only now
                self.close()
                raise guard.refuse(f"socket({self.family.name})")

        def guarded_connect(self: socket.socket, address: Any) -> None:
            if self.family in GUARDED_FAMILIES:  # a socket made before the guard was installed
                raise guard.refuse(f"connect({address!r})")
            original_connect(self, address)

        def guarded_connect_ex(self: socket.socket, address: Any) -> int:
            if self.family in GUARDED_FAMILIES:
                raise guard.refuse(f"connect_ex({address!r})")
            return original_connect_ex(self, address)

        monkeypatch.setattr(socket.socket, "__init__", guarded_init)
        monkeypatch.setattr(socket.socket, "connect", guarded_connect)
        monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        for name in LOOKUPS:
            monkeypatch.setattr(socket, name, self._refusing(name))

    def _refusing(self, name: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            raise self.refuse(f"{name}{args!r}")

        return refused
