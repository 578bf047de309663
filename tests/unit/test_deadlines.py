"""Deadlines on a fake monotonic clock, and the budget a caller sets for the calls made on its behalf."""

from __future__ import annotations

from genviral_relay.deadlines import Deadline, call_budget, calls_until
from genviral_relay.errors import ECHO_LIMIT, echoed


class Ticks:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_deadline_counts_down_on_its_own_clock() -> None:
    ticks = Ticks()
    deadline = Deadline.after(2.0, ticks)
    ticks.now += 1.5
    assert deadline.remaining() == 0.5
    ticks.now += 1.0
    assert deadline.remaining() == -0.5


def test_sooner_takes_whichever_comes_first() -> None:
    ticks = Ticks()
    own, budget = Deadline.after(20.0, ticks), Deadline.after(0.5, ticks)
    assert own.sooner(budget) is budget
    assert budget.sooner(own) is budget
    assert own.sooner(None) is own


def test_the_budget_holds_inside_its_block_only() -> None:
    budget = Deadline.after(1.0, Ticks())
    assert call_budget() is None
    with calls_until(budget):
        assert call_budget() is budget
        with calls_until(None):
            assert call_budget() is None
        assert call_budget() is budget
    assert call_budget() is None


def test_echoed_text_is_cut_at_a_character_with_an_ellipsis() -> None:
    assert echoed("short") == "short"
    assert echoed("x" * ECHO_LIMIT) == "x" * ECHO_LIMIT
    cut = echoed("é" * 1_000_000)
    assert len(cut) == ECHO_LIMIT
    assert cut == "é" * (ECHO_LIMIT - 1) + "\N{HORIZONTAL ELLIPSIS}"
