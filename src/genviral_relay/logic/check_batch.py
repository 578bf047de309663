"""A worker's batch of check requests: each post once, state read in one call, Genviral requests
run on a few threads within the deployment's concurrency cap, slowed down when Genviral answers 429,
and stopped while the key is refused."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from genviral_relay.errors import GenviralConfigError, GenviralRateLimitedError
from genviral_relay.logic.check_post import CheckOutcome, PostChecker
from genviral_relay.logic.discover import Discovery
from genviral_relay.logic.ports import WatchStore
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.messages import CheckRequest
from genviral_relay.observability import Metric, correlated, emit, logger

SWEEP_KEY = "retry-sweep"
"""Where `run` reports a failed retry sweep among the failed posts."""
DISCOVER_KEY = "discover"
"""Where `run` reports a failed discover run among the failed posts."""
CONFIG_ERROR_PAUSE = timedelta(minutes=5)
"""After Genviral refuses the key, calls stop for this long; then one tick probes again."""


def describe_config_error(error: GenviralConfigError) -> str:
    detail = f"HTTP {error.status} {error.error_code or ''}".strip() if error.status else "no HTTP answer"
    return f"{type(error).__name__} ({detail}): {error}"


class AdaptiveLimit:
    """At most `limit` holders at once; `shrink` halves the limit (down to one) after a 429."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._active = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._active < self.limit)
            self._active += 1

    def __exit__(self, *_: object) -> None:
        with self._changed:
            self._active -= 1
            self._changed.notify_all()

    def shrink(self) -> None:
        with self._changed:
            self.limit = max(1, self.limit // 2)


class CheckBatch:
    def __init__(
        self,
        checker: PostChecker,
        store: WatchStore,
        now: datetime,
        *,
        threads: int = 1,
        discovery: Discovery | None = None,
        correlations: Mapping[str, str] | None = None,
        time_left: Callable[[], timedelta] | None = None,
    ) -> None:
        """`correlations`: post id (or `SWEEP_KEY`, `DISCOVER_KEY`) -> the correlation id of the message that
        asked for it. `time_left`: what remains of the invocation, so discovery stops in time."""
        self._checker = checker
        self._discovery = discovery
        self._store = store
        self._now = now
        self._threads = max(1, threads)
        self._limit = AdaptiveLimit(self._threads)
        self._pause_reason = store.genviral_pause(now)
        self._lock = threading.Lock()
        self._correlations = correlations or {}
        self._time_left = time_left

    def run(
        self, requests: Sequence[CheckRequest], *, sweep: bool = False, discover: bool = False
    ) -> dict[str, Exception]:
        """Check every requested post once (and run the retry sweep and discovery if asked); answer the
        posts whose check failed unexpectedly (`SWEEP_KEY`, `DISCOVER_KEY` for those two)."""
        post_ids = list(dict.fromkeys(request.post_id for request in requests))
        if len(post_ids) < len(requests):
            emit(Metric.DUPLICATE_CHECK_REQUESTS, len(requests) - len(post_ids))
        if self._pause_reason is not None:
            logger.warning(
                "Genviral calls are paused; the batch's posts stay due", extra={"reason": self._pause_reason}
            )
            return {}
        errors: dict[str, Exception] = {}
        if discover:
            with correlated(self._correlations.get(DISCOVER_KEY)):
                self._discover(errors)
        if sweep:
            with correlated(self._correlations.get(SWEEP_KEY)):
                self._sweep(errors)
        watches = self._store.get_many(post_ids)
        if self._threads == 1:
            for post_id in post_ids:
                self._check_into(post_id, watches.get(post_id), errors)
            return errors
        with ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="check") as pool:
            futures = [pool.submit(self._check_into, post_id, watches.get(post_id), errors) for post_id in post_ids]
        for future in futures:
            future.result()  # re-raises what must end the invocation (anything that is not an Exception)
        return errors

    def _sweep(self, errors: dict[str, Exception]) -> None:
        try:
            with self._limit:
                outcomes = self._checker.sweep_retries()
        except Exception as error:  # the sweep's message goes back to the queue; the checks go on
            logger.exception("Retry sweep failed")
            errors[SWEEP_KEY] = error
            return
        for outcome in outcomes:
            if isinstance(outcome.error, GenviralConfigError):
                self.pause(outcome.error)

    def _discover(self, errors: dict[str, Exception]) -> None:
        if self._discovery is None:
            errors[DISCOVER_KEY] = RuntimeError("discovery was asked for but this worker has none")
            return
        try:
            with self._limit:
                report = self._discovery.run(time_left=self._time_left)
        except Exception as error:  # the request goes back to the queue; the checks go on
            logger.exception("Discover run failed")
            errors[DISCOVER_KEY] = error
            return
        for problem in [report.error, *(outcome.error for outcome in report.outcomes)]:
            if isinstance(problem, GenviralConfigError):
                self.pause(problem)

    def _check_into(self, post_id: str, watch: WatchRecord | None, errors: dict[str, Exception]) -> None:
        with correlated(self._correlations.get(post_id)):
            try:
                self._check(post_id, watch)
            except Exception as error:  # one post's failure must not fail the others; SQS retries that message
                logger.exception("Post check failed", extra={"post_id": post_id})
                emit(Metric.CHECK_FAILURES)
                with self._lock:
                    errors[post_id] = error

    def _check(self, post_id: str, watch: WatchRecord | None) -> CheckOutcome | None:
        if self._pause_reason is not None:
            return None
        with self._limit:
            outcome = self._checker.check_loaded(post_id, watch, trigger="due")
        if isinstance(outcome.error, GenviralConfigError):
            self.pause(outcome.error)
        elif isinstance(outcome.error, GenviralRateLimitedError):
            self._limit.shrink()
        return outcome

    def pause(self, error: GenviralConfigError) -> None:
        reason = describe_config_error(error)
        with self._lock:
            if self._pause_reason is not None:
                return
            self._pause_reason = reason
        self._store.pause_genviral(until=self._now + CONFIG_ERROR_PAUSE, reason=reason)
        logger.error("Genviral refused the key; pausing calls", extra={"reason": reason})
        emit(Metric.GENVIRAL_PAUSES)
