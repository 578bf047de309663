"""The fast specs' rig: the use cases on the in-memory doubles (see `tests/unit/world.py`)."""

from __future__ import annotations

import pytest

from tests.unit.world import World


@pytest.fixture
def world() -> World:
    return World()
