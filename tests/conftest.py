"""Shared fixtures: the Genviral emulator on loopback, the moto stack from template.yaml, the runner."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from genviral_relay import factories
from genviral_relay.observability import metrics
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import FAKE_CREDENTIALS, LocalStack

TOKEN = "gva_live_test.0123456789abcdef"

# No test may reach real AWS, whatever the machine's configuration.
os.environ.update(FAKE_CREDENTIALS)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    factories.reset()
    metrics.clear_metrics()
    yield
    factories.reset()
    metrics.clear_metrics()


@pytest.fixture
def emulator() -> Iterator[GenviralEmulator]:
    with GenviralEmulator(tokens=[TOKEN]) as running:
        yield running


@pytest.fixture
def stack(emulator: GenviralEmulator) -> Iterator[LocalStack]:
    with LocalStack(genviral_api_url=emulator.base_url, token=TOKEN) as running:
        yield running


@pytest.fixture
def runner(stack: LocalStack) -> LocalRunner:
    return LocalRunner(stack)
