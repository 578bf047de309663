"""A worker's batch of check requests: each post once, and no Genviral calls while the key is refused."""

from __future__ import annotations

from datetime import datetime, timedelta

from genviral_relay.errors import GenviralConfigError
from genviral_relay.logic.check_post import CheckOutcome, PostChecker
from genviral_relay.logic.ports import WatchStore
from genviral_relay.models.messages import CheckRequest
from genviral_relay.observability import MetricUnit, logger, metrics

CONFIG_ERROR_PAUSE = timedelta(minutes=5)
"""After Genviral refuses the key, calls stop for this long; then one tick probes again."""


def describe_config_error(error: GenviralConfigError) -> str:
    detail = f"HTTP {error.status} {error.error_code or ''}".strip() if error.status else "no HTTP answer"
    return f"{type(error).__name__} ({detail}): {error}"


class CheckBatch:
    def __init__(self, checker: PostChecker, store: WatchStore, now: datetime) -> None:
        self._checker = checker
        self._store = store
        self._now = now
        self._seen: set[str] = set()
        self._pause_reason = store.genviral_pause(now)

    def handle(self, request: CheckRequest) -> CheckOutcome | None:
        """Check one post; None when this batch skips it (a repeat, or Genviral calls are paused)."""
        if request.post_id in self._seen:
            metrics.add_metric(name="DuplicateCheckRequests", unit=MetricUnit.Count, value=1)
            return None
        self._seen.add(request.post_id)
        if self._pause_reason is not None:
            logger.warning(
                "Genviral calls are paused; the post stays due",
                extra={"post_id": request.post_id, "pause_reason": self._pause_reason},
            )
            return None
        outcome = self._checker.check(request.post_id)
        if isinstance(outcome.error, GenviralConfigError):
            self.pause(outcome.error)
        return outcome

    def pause(self, error: GenviralConfigError) -> None:
        reason = describe_config_error(error)
        self._pause_reason = reason
        self._store.pause_genviral(until=self._now + CONFIG_ERROR_PAUSE, reason=reason)
        logger.error("Genviral refused the key; pausing calls", extra={"reason": reason})
        metrics.add_metric(name="GenviralConfigErrors", unit=MetricUnit.Count, value=1)
