"""Every row of the fault matrix, once: nothing lost, no transition, completion or late URL under two ids nor written
by two commits, no invented event."""

from __future__ import annotations

import pytest

from tests.support.fault_matrix import SCENARIOS, run_matrix

PARKED_FOR_GOOD = {"event refused for good (oversize)"}
NO_GENVIRAL = {"hostile HTTP input"}


@pytest.mark.parametrize("fault", list(SCENARIOS))
def test_fault_loses_and_doubles_nothing(fault: str) -> None:
    (row,) = run_matrix(trials=1, names=[fault], seed=7)

    assert (row.lost, row.duplicate_ids, row.committed_twice, row.unexpected) == (0, 0, 0, 0), row
    # The transitions, the completions of the posts they finish, and the URLs given after a posting
    every_event = row.expected + row.completions + row.urls_resolved
    if fault.startswith("crash"):
        assert row.crashes == 1
    if "URL" in fault:
        assert row.urls_resolved > 0
    if fault in PARKED_FOR_GOOD:
        assert row.expected > 0
        assert row.dead_lettered == 2 * every_event  # one per target, with the reason
    elif fault in NO_GENVIRAL:
        assert row.bad_inputs > 0
        assert row.genviral_calls == 0
    else:
        assert row.delivered_sns == row.delivered_eventbridge == every_event
        assert row.dead_lettered == 0
