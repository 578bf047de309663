"""The moto stack that local runs deploy, for the modules that register the loopback receiver: its API takes an
http:// URL on 127.0.0.1, which the default refuses. A module that needs another stack defines its own. And the
reads of the Genviral secret, for the modules that count them (on whichever `stack` the module uses)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
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


@pytest.fixture
def secret_reads(stack: MotoStack) -> Iterator[list[str]]:
    """The SecretId of every GetSecretValue call made from now on (by the functions or anyone else)."""
    reads: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        reads.append(str(params.get("SecretId")))

    events = boto3._get_default_session().events
    events.register("before-parameter-build.secrets-manager.GetSecretValue", record, unique_id="test-secret-reads")
    yield reads
    events.unregister("before-parameter-build.secrets-manager.GetSecretValue", unique_id="test-secret-reads")
