"""The benchmarks still run. They print figures rather than pass or fail, so nothing else notices when a change to
the relay breaks one; each runs here on its smallest shape, against the emulator on loopback, and must report of
the relay what its results file claims: every transition published, once, in its own workspace."""

from __future__ import annotations

import contextlib
import io

from bench.burst import Scenario, simulate
from bench.burst_workspaces import WorkspacesScenario, simulate_workspaces
from bench.polling import simulate_week
from bench.workspaces import simulate_workspaces_week


def test_the_burst_publishes_every_transition_once() -> None:
    run = simulate(Scenario(100, 0.3, "one import"), seed=7)

    assert run.detected == run.transitions == 100
    assert (run.duplicates, run.failures, run.rate_limited) == (0, 0, 0)


def test_the_burst_of_several_workspaces_publishes_each_workspaces_transitions_in_it() -> None:
    run = simulate_workspaces(WorkspacesScenario((20, 30), 0.3, "scattered"), seed=7)

    assert [(figures.name, figures.detected) for figures in run.workspaces] == [("ws-00", 20), ("ws-01", 30)]
    assert (run.crossed, run.failures) == (0, 0)
    assert all(sum(figures.calls.values()) > 0 for figures in run.workspaces)  # each on its own key


def test_the_calm_week_loses_nothing() -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the relay's EMF documents
        week = simulate_week(4, seed=42)

    assert week.transitions > 0
    assert (week.lost, week.duplicate_ids, week.unexpected) == (0, 0, 0)


def test_the_calm_week_of_several_workspaces_loses_nothing_and_crosses_nothing() -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        week = simulate_workspaces_week(2, 4, seed=42)

    assert week.transitions > 0
    assert (week.lost, week.duplicate_ids, week.unexpected, week.crossed) == (0, 0, 0, 0)
    assert [figures.posts for figures in week.workspaces] == [2, 2]
