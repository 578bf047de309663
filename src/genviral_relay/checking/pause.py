"""The pause rule: when Genviral refuses the key (401 after a fresh token, 402, 403, an unreadable
secret), every caller stops calling it for a while, then one tick probes again.

The one place that applies it: the check (whoever asks for it: the worker, the API, the CLI), the
retry sweep and discovery report a refusal here; the poller and the worker read it before calling.
Retrying a refused key cannot succeed until someone fixes the deployment, and hammering Genviral
with it looks like abuse.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from genviral_relay.checking.ports import RelayState
from genviral_relay.clock import Clock
from genviral_relay.errors import GenviralConfigError, GenviralError
from genviral_relay.observability import Metric, emit, genviral_error_metric, logger

PAUSE_AFTER_REFUSAL = timedelta(minutes=5)
"""After Genviral refuses the key, calls stop for this long; then one tick probes again."""


def describe_refusal(error: GenviralConfigError) -> str:
    detail = f"HTTP {error.status} {error.error_code or ''}".strip() if error.status else "no HTTP answer"
    return f"{type(error).__name__} ({detail}): {error}"


class GenviralPause:
    def __init__(self, state: RelayState, clock: Clock, *, duration: timedelta = PAUSE_AFTER_REFUSAL) -> None:
        self._state = state
        self._clock = clock
        self._duration = duration
        self._lock = threading.Lock()
        self._paused_until: datetime | None = None
        """The end of the pause this process last stored: a batch's other refusals need not store it again."""

    def reason(self) -> str | None:
        """Why calls are paused now, or None (reads the stored flag: another process may have paused)."""
        return self._state.genviral_pause(self._clock())

    def refused(self, error: GenviralConfigError) -> str:
        """Genviral refused the key: pause calls (once per pause) and answer why, for the caller's message."""
        reason = describe_refusal(error)
        now = self._clock()
        # Held through the write: one pause per refusal burst, and remembered only once it is stored
        # (a failed write leaves the next refusal to store it).
        with self._lock:
            if self._paused_until is not None and now < self._paused_until:
                return reason
            self._state.pause_genviral(until=now + self._duration, reason=reason)
            self._paused_until = now + self._duration
        logger.error("Genviral refused the key; pausing calls", extra={"reason": reason})
        emit(Metric.GENVIRAL_PAUSES)
        return reason

    def failed(self, error: GenviralError, message: str, **context: object) -> bool:
        """A call to Genviral (a check, a walk, a sweep, a refresh) got no usable answer: say so (a warning when
        it may pass), count it by its kind, and pause calls when Genviral refused the key (then True)."""
        (logger.warning if error.transient else logger.error)(
            message,
            extra={
                **context,
                "error_type": type(error).__name__,
                "error": str(error),
                "status": error.status,
                "error_code": error.error_code,
            },
        )
        emit(genviral_error_metric(error))
        if not isinstance(error, GenviralConfigError):
            return False
        self.refused(error)
        return True
