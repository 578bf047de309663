"""Shared fixtures: the Genviral emulator on loopback, the moto stack from template.yaml, the runner."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from genviral_relay import factories
from genviral_relay.observability import clear_workspace_metrics, metrics
from local.emulator import DEFAULT_TOKEN, GenviralEmulator
from local.runner import LocalRunner
from local.stack import FAKE_CREDENTIALS, MotoStack
from tests.support.doubles import SteppingClock

TOKEN = "gva_live_test.0123456789abcdef"
SYNC = 1
"""The workspaces' sync a poller asks for at the first tick of its execution environment (`polling/workspaces.py`):
the local runner starts one whenever another function ran in between, so such a tick queues one message more."""

# No test may reach real AWS, whatever the machine's configuration.
os.environ.update(FAKE_CREDENTIALS)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


SECRET_MARK = "gva_live_"
"""Every key the suite uses has Genviral's key prefix; the relay must never write one down."""
WEBHOOK_SECRET_MARK = "whsec_"
"""Every webhook signing secret has the Standard Webhooks prefix; no log line may hold one (the tests that
register endpoints add the secrets' own text to SECRETS too: a secret without its prefix is caught as well)."""
SECRETS: set[str] = set()
"""Further tokens no log record may contain: a test adds the tokens it uses before they can be logged
(prefixed ones are caught anyway). Reset after each test."""
RELAY_LOGGER = "genviral-relay"  # the logging.Logger behind the Powertools Logger (observability.SERVICE)


class SecretSentinel(logging.Handler):
    """Collects every log record of a test, of the relay and of everything else, rendered with its extras
    (and, for the relay, as the Powertools JSON line, which adds the appended keys); `leaks` are those
    holding a key, masked."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.rendered: list[tuple[str, str]] = []
        self.leaks: list[str] = []
        self._seen: set[int] = set()

    @staticmethod
    def secrets() -> set[str]:
        return {SECRET_MARK, WEBHOOK_SECRET_MARK, TOKEN, DEFAULT_TOKEN, *SECRETS}

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) in self._seen:  # on the relay logger and on root: a propagated record comes twice
            return
        self._seen.add(id(record))
        text = _render(record)
        self.rendered.append((record.name, text))
        found = [secret for secret in self.secrets() if secret and secret in text]
        if found:
            for secret in sorted(found, key=len, reverse=True):
                text = text.replace(secret, "<KEY>")
            self.leaks.append(f"{record.name}: {text[:500]}")

    def check(self) -> None:
        assert not self.leaks, f"{len(self.leaks)} log record(s) contain a secret:\n" + "\n".join(self.leaks)

    def clear(self) -> None:
        self.rendered.clear()
        self.leaks.clear()
        self._seen.clear()


def _render(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.__dict__)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    handler = getattr(logging.getLogger(RELAY_LOGGER), "powertools_handler", None)
    if handler is not None and record.name.startswith(RELAY_LOGGER):
        try:
            parts.append(handler.format(record))
        except Exception as error:  # one record the JSON formatter cannot render must not hide the others
            parts.append(f"<unformattable: {error!r}>")
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def secret_sentinel() -> Iterator[SecretSentinel]:
    """Every test: no log record, at INFO and above at least, may contain a Genviral key or a webhook secret."""
    sentinel = SecretSentinel()
    root, relay = logging.getLogger(), logging.getLogger(RELAY_LOGGER)
    levels = (root.level, relay.level)
    secrets = set(SECRETS)
    for target in (root, relay):
        if target.getEffectiveLevel() > logging.INFO:
            target.setLevel(logging.INFO)
        target.addHandler(sentinel)
    try:
        yield sentinel
        sentinel.check()
    finally:
        for target in (root, relay):
            target.removeHandler(sentinel)
        root.setLevel(levels[0])
        relay.setLevel(levels[1])
        SECRETS.clear()
        SECRETS.update(secrets)


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    factories.reset()
    metrics.clear_metrics()
    clear_workspace_metrics()
    yield
    factories.reset()
    metrics.clear_metrics()
    clear_workspace_metrics()


@pytest.fixture
def emulator() -> Iterator[GenviralEmulator]:
    with GenviralEmulator(tokens=[TOKEN]) as running:
        yield running


NO_ACCOUNT_CHECKS = {"AccountCheckMinutes": "0"}


@pytest.fixture
def stack(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    # Account checks off: a flow's first tick would also list the accounts (tests/functional/test_account_health.py
    # runs them on a stack of its own).
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters=NO_ACCOUNT_CHECKS) as running:
        yield running
        running.drain_subscribers()  # every published event meets the JSON Schema, also those no test read


@pytest.fixture
def runner(stack: MotoStack) -> LocalRunner:
    return LocalRunner(stack)


@pytest.fixture
def relay_clock(monkeypatch: pytest.MonkeyPatch) -> SteppingClock:
    """The clock every function's use cases read (`factories.utc_now`), at the wall clock's second (Genviral and
    the table keep milliseconds) until the test moves its `now`."""
    clock = SteppingClock(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr(factories, "utc_now", clock)
    return clock
