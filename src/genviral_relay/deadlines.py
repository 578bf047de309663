"""Deadlines: a moment on a monotonic clock by which something must be done, and the budget of outbound calls
made on a caller's behalf (the API's, which must answer before its function's timeout and API Gateway's 29 s).

Monotonic because the wall clock may jump (and tests move the relay's `utc_now` by hours); a context variable
because the budget belongs to the request being served, not to the adapters built once per execution environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

Monotonic = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    at: float
    """On `monotonic`'s scale."""
    monotonic: Monotonic = time.monotonic

    @classmethod
    def after(cls, seconds: float, monotonic: Monotonic = time.monotonic) -> Deadline:
        return cls(monotonic() + seconds, monotonic)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - self.monotonic()

    def left(self) -> float:
        """Seconds left, for the next blocking step; TimeoutError once the deadline has passed."""
        left = self.remaining()
        if left <= 0:
            raise TimeoutError
        return left

    def sooner(self, other: Deadline | None) -> Deadline:
        """Whichever of the two comes first (each read on its own clock)."""
        return other if other is not None and other.remaining() < self.remaining() else self


_BUDGET: ContextVar[Deadline | None] = ContextVar("call_budget", default=None)


@contextmanager
def calls_until(deadline: Deadline | None) -> Iterator[None]:
    """Outbound calls made inside end by `deadline` (None: no budget beyond each call's own); the adapters
    read it with `call_budget()`."""
    token = _BUDGET.set(deadline)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def call_budget() -> Deadline | None:
    """The deadline of the calls made now on a caller's behalf, if it set one (`calls_until`)."""
    return _BUDGET.get()
