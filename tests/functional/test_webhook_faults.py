"""Every webhook fault of the fault matrix, once and small: after settling, no delivery lost, none under two ids,
no forged body signed, every delivery verified by the reference library."""

from __future__ import annotations

import pytest

from tests.conftest import SECRETS
from tests.support.webhook_faults import SMALL, WEBHOOK_SCENARIOS, WebhookRow, run_webhook_trial

HEALTH_DRIFTS = {"table throttles the attempt record"}
"""A record the table refused past the SDK's retries is logged and lost (attempts.py `_record`): the delivery
stands, the endpoint's `attempts_pending` is off by it for good (a known limitation, reported with issue 21)."""


@pytest.mark.parametrize("fault", list(WEBHOOK_SCENARIOS))
def test_webhook_fault_loses_doubles_and_forges_nothing(fault: str) -> None:
    row = WebhookRow(fault)
    row.add(*run_webhook_trial(fault, seed=7, scale=SMALL, secrets=SECRETS))

    assert (row.lost, row.twice_under_different_ids, row.forged_signed, row.unverified) == (0, 0, 0, 0), row
    assert row.events > 0
    assert row.received == row.expected > 0
    assert row.parked == 0
    if fault.startswith("forged"):
        assert row.bad_inputs > 0
    if fault not in HEALTH_DRIFTS:
        assert row.health_off == 0, row
