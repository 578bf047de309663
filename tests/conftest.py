"""Shared fixtures: the Genviral emulator on loopback, the moto stack from template.yaml, the runner."""

from __future__ import annotations

import logging
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


SECRET_MARK = "gva_live_"
"""Every key the suite uses has Genviral's key prefix; the relay must never write one down."""


class SecretSentinel(logging.Handler):
    """Collects every log record, of the relay (Powertools does not propagate) and of everything else."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.getMessage()} {record.__dict__}"
        if SECRET_MARK in text:
            self.leaks.append(text[:300])


@pytest.fixture(autouse=True)
def secret_sentinel() -> Iterator[SecretSentinel]:
    sentinel = SecretSentinel()
    relay = logging.getLogger("genviral-relay")
    watched = [logging.getLogger()] + ([] if relay.propagate else [relay])
    for target in watched:
        target.addHandler(sentinel)
    yield sentinel
    for target in watched:
        target.removeHandler(sentinel)
    assert sentinel.leaks == [], "a Genviral key reached a log record"


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
