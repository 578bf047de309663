"""The fast specs' rig: the use cases on the in-memory doubles (see `tests/unit/world.py`), and no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.no_network import NetworkGuard
from tests.unit.world import World


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    """Every unit test: any IPv4/IPv6 socket or name lookup raises, and fails the test even if swallowed."""
    guard = NetworkGuard()
    guard.install(monkeypatch)
    yield guard
    guard.check()


@pytest.fixture
def world() -> World:
    return World()
