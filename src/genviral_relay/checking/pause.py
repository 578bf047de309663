"""The pause rule: when Genviral refuses the key (401 after a fresh token, 402, 403, an unreadable
secret), every caller stops calling it for a while, then one tick probes again; consumers hear of it
once per pause (`relay.paused`, then `relay.resumed` when a call is answered again).

The one place that applies it: the check (whoever asks for it: the worker, the API, the CLI), the
retry sweep and discovery report a refusal here; the poller and the worker read it before calling.
Retrying a refused key cannot succeed until someone fixes the deployment, and hammering Genviral
with it looks like abuse.

The pause is a record of the notice outbox (`notices/`), committed with its notice under a version
condition: of several workers refused at once, one opens the pause and publishes `relay.paused`; the
others find it open. A probe refused again moves `until` on, with no new notice. Only a caller that
read the pause open before its calls (the worker, once per batch; the API and the CLI, once per
check) closes it, so a calm run reads nothing more than before.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from genviral_relay.checking.ports import RelayState
from genviral_relay.clock import Clock, format_ts
from genviral_relay.errors import GenviralConfigError, GenviralError, StateConflictError
from genviral_relay.models.pause import PAUSE_RECORD, PauseRecord, PauseStatus
from genviral_relay.notices.outbox import NoticeOutbox
from genviral_relay.notices.ports import NoticeDocument
from genviral_relay.observability import Metric, emit, genviral_error_metric, logger
from genviral_relay.rules.relay_pause import paused_notice, resumed_notice

PAUSE_AFTER_REFUSAL = timedelta(minutes=5)
"""After Genviral refuses the key, calls stop for this long; then one tick probes again."""
COMMIT_TRIES = 3
"""Version conflicts a pause write meets before giving up (each one means another process wrote it)."""


def describe_refusal(error: GenviralConfigError) -> str:
    detail = f"HTTP {error.status} {error.error_code or ''}".strip() if error.status else "no HTTP answer"
    return f"{type(error).__name__} ({detail}): {error}"


class GenviralPause:
    def __init__(
        self,
        state: RelayState,
        clock: Clock,
        *,
        notices: NoticeOutbox | None = None,
        duration: timedelta = PAUSE_AFTER_REFUSAL,
    ) -> None:
        """`notices`: where the pause is committed and its notices published (None: a pause that is only read,
        the poller's)."""
        self._state = state
        self._clock = clock
        self._notices = notices
        self._duration = duration
        self._lock = threading.Lock()
        self._paused_until: datetime | None = None
        """The end of the pause this process last stored: a batch's other refusals need not store it again."""

    def status(self) -> PauseStatus:
        """The pause as stored now (one read: another process may have paused)."""
        return self._state.genviral_pause(self._clock())

    def reason(self) -> str | None:
        """Why calls are paused now, or None."""
        return self.status().reason

    def refused(self, error: GenviralConfigError) -> str:
        """Genviral refused the key: pause calls (once per pause) and answer why, for the caller's message."""
        reason = describe_refusal(error)
        now = self._clock()
        # Held through the write: one pause per refusal burst, and remembered only once it is stored
        # (a failed write leaves the next refusal to store it).
        with self._lock:
            if self._paused_until is not None and now < self._paused_until:
                return reason
            pause, wrote = self._store_refusal(error, reason, now)
            self._paused_until = pause.until
        if not wrote:
            return reason  # another process's pause, running: it said so
        if pause.paused_at == now:
            logger.error("Genviral refused the key; pausing calls", extra={"reason": reason})
        else:
            logger.error("Genviral refused the key again; the pause goes on", extra={"reason": reason})
        emit(Metric.GENVIRAL_PAUSES)
        return reason

    def answered(self, before: PauseStatus) -> None:
        """Genviral answered a call made after `before` was read: a pause open then closes now, with `relay.resumed`
        (once: a conflict means another process wrote the pause; read again, it is closed or still open)."""
        status = before
        with self._lock:
            for _ in range(COMMIT_TRIES):
                pause = status.record
                if pause is None or pause.resumed_at is not None:
                    return
                now = self._clock()
                closed = pause.model_copy(update={"resumed_at": now, "until": min(pause.until, now)})
                try:
                    self._commit(status.version, closed, (resumed_notice(pause, now),))
                except StateConflictError:
                    status = self._state.genviral_pause(now)
                    continue
                self._paused_until = None
                logger.info(
                    "Genviral answers again; the pause is over", extra={"paused_at": format_ts(pause.paused_at)}
                )
                return
        raise StateConflictError(PAUSE_RECORD)

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

    def _store_refusal(self, error: GenviralConfigError, reason: str, now: datetime) -> tuple[PauseRecord, bool]:
        """Open a pause (with `relay.paused`), or move an open one's `until` on (no notice); answers the pause as
        stored and whether this call wrote it (one open and still running, another process's, is left as it is)."""
        until = now + self._duration
        for _ in range(COMMIT_TRIES):
            status = self._state.genviral_pause(now)
            pause = status.record
            if status.open and pause is not None:
                if pause.until > now:
                    return pause, False
                extended = pause.model_copy(update={"until": until})
                notices: tuple[NoticeDocument, ...] = ()
            else:
                extended = PauseRecord(paused_at=now, until=until, reason=reason, http_status=error.status)
                notices = (paused_notice(extended),)
            try:
                self._commit(status.version, extended, notices)
            except StateConflictError:
                continue  # another process paused or extended first: read what it stored
            return extended, True
        raise StateConflictError(PAUSE_RECORD)

    def _commit(self, version: int, pause: PauseRecord, notices: tuple[NoticeDocument, ...]) -> None:
        if self._notices is None:
            raise RuntimeError("this pause is only read: it has no notice outbox to store a pause in")
        self._notices.commit(
            PAUSE_RECORD,
            pause.model_dump_json(),
            expected_version=version,
            notices=notices,
            # The plain attributes the readers use (0.4's too): a closed pause's `until` is its end.
            attributes={"until": format_ts(pause.until), "reason": pause.reason},
        )
