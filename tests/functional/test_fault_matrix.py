"""Every row of the fault matrix, once: nothing lost, no transition or completion under two ids, no invented event."""

from __future__ import annotations

import pytest

from local.fault_matrix import SCENARIOS, run_trial

PARKED_FOR_GOOD = {"event refused for good (oversize)"}
NO_GENVIRAL = {"hostile HTTP input"}


@pytest.mark.parametrize("fault", list(SCENARIOS))
def test_fault_loses_and_doubles_nothing(fault: str) -> None:
    audit, trial, genviral_calls = run_trial(fault, seed=7 * 100_003)  # the first trial of run_matrix(seed=7)

    assert (audit.lost, audit.duplicate_ids, audit.unexpected) == (0, 0, 0), audit
    every_event = audit.expected + audit.completions  # the transitions, and the completions of the posts they finish
    if fault.startswith("crash"):
        assert len(trial.rig.seams.crashes) == 1
    if fault in PARKED_FOR_GOOD:
        assert audit.expected > 0
        assert audit.dead_lettered == 2 * every_event  # one per target, with the reason
    elif fault in NO_GENVIRAL:
        assert trial.bad_inputs > 0
        assert genviral_calls == 0
    else:
        assert audit.delivered == {"sns": every_event, "eventbridge": every_event}, audit
        assert audit.dead_lettered == 0
