"""The moto stack that local runs deploy, for the modules that register the loopback receiver: its API takes an
http:// URL on 127.0.0.1, which the default refuses. A module that needs another stack defines its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import NO_ACCOUNT_CHECKS, TOKEN


@pytest.fixture
def local_stack(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    with MotoStack(
        genviral_api_url=emulator.base_url,
        token=TOKEN,
        parameters={"AllowPrivateWebhookUrls": "true", **NO_ACCOUNT_CHECKS},
    ) as running:
        yield running


@pytest.fixture
def relay(local_stack: MotoStack) -> LocalRunner:
    return LocalRunner(local_stack)
