"""The pause rule: when Genviral refuses the key (401 after a fresh token, 402, 403, an unreadable
secret), every caller stops calling it for a while, then one tick probes again; consumers hear of it
once per pause (`relay.paused`, then `relay.resumed` when a call is answered again).

The one place that applies it: the check (whoever asks for it: the worker, the API, the CLI), the
retry sweep and discovery report a refusal here; the poller and the worker read it before calling.
Retrying a refused key cannot succeed until someone fixes the deployment, and hammering Genviral
with it looks like abuse.

The pause is a record of the notice outbox (`notices/`), committed with its notice under a version
condition: of several workers refused at once, one opens the pause and publishes `relay.paused`; the
others find it open. A probe refused as the pause's own refusal was moves `until` on, with no new notice;
a refusal with another cause (status, error code) opens a new pause. Only a caller that read the pause
open before its calls closes it: the worker reads it once per batch (a read it made before); the API's
register and check-now and the CLI read it once per check, a strongly consistent read 0.4 did not make
(they call Genviral whether paused or not: a person asked). The CLI with a key of its own
(`GENVIRAL_TOKEN`) neither opens nor closes it.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta

from genviral_relay.checking.ports import RelayState
from genviral_relay.clock import Clock, format_ts
from genviral_relay.errors import (
    GenviralConfigError,
    GenviralError,
    GenviralSubscriptionRequiredError,
    GenviralTierNotAllowedError,
    StateConflictError,
    TokenUnavailableError,
    echoed,
)
from genviral_relay.models.pause import PAUSE_RECORD, PauseRecord, PauseStatus
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.outbox import NoticeOutbox
from genviral_relay.notices.ports import NoticeDocument
from genviral_relay.observability import Metric, emit, genviral_error_metric, logger
from genviral_relay.rules.relay_pause import paused_notice, resumed_notice

PAUSE_AFTER_REFUSAL = timedelta(minutes=5)
"""After Genviral refuses the key, calls stop for this long; then one tick probes again."""
COMMIT_TRIES = 3
"""Version conflicts a pause write meets before giving up (each one means another process wrote it)."""


REASON_MESSAGE_LIMIT = 200
"""The most characters of Genviral's own message a pause's reason repeats (it is published)."""
_REFUSALS: tuple[tuple[type[GenviralConfigError], str], ...] = (
    (GenviralSubscriptionRequiredError, "Genviral refused the key for want of a plan with the Partner API"),
    (GenviralTierNotAllowedError, "Genviral refused the key as its plan's tier cannot use the Partner API"),
)
_AWS_CODE = re.compile(r"[A-Za-z0-9.]{1,64}")


def describe_refusal(error: GenviralConfigError) -> str:
    """Why the key cannot be used, in words fit to publish (`relay.paused`'s reason goes to third parties): the
    relay's own words, Genviral's status, error code and message (data, cut), and for an unreadable secret the AWS
    error code only (the SDK's message names the account, the role and the secret's ARN: logs keep it)."""
    if isinstance(error, TokenUnavailableError):
        code = error.aws_error_code
        return f"{error.summary} ({code})" if code and _AWS_CODE.fullmatch(code) else error.summary
    words = next((words for kind, words in _REFUSALS if isinstance(error, kind)), "Genviral refused the key")
    code = echoed(error.error_code, 64) if error.error_code else ""
    detail = " ".join(part for part in (f"HTTP {error.status}" if error.status else "", code) if part)
    message = echoed(" ".join(str(error).split()), REASON_MESSAGE_LIMIT)
    return f"{words} ({detail}): {message}" if detail else f"{words}: {message}"


class GenviralPause:
    def __init__(
        self,
        state: RelayState,
        clock: Clock,
        *,
        notices: NoticeOutbox | None = None,
        duration: timedelta = PAUSE_AFTER_REFUSAL,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        """`notices`: where the pause is committed and its notices published. None: a pause that is only read, never
        opened nor closed (the poller's; the CLI's with a key of its own, `GENVIRAL_TOKEN`, which says nothing about
        the deployment's key). `workspace`: whose key it pauses (`state` is that workspace's view); its notices name
        it."""
        self._workspace = workspace
        self._state = state
        self._clock = clock
        self._notices = notices
        self._duration = duration
        # One refusal at a time reads and writes the pause: a batch's threads refused together open it once.
        self._lock = threading.Lock()

    def status(self) -> PauseStatus:
        """The pause as stored now (one read: another process may have paused)."""
        return self._state.genviral_pause(self._clock())

    def reason(self) -> str | None:
        """Why calls are paused now, or None."""
        return self.status().reason

    def refused(self, error: GenviralConfigError) -> str:
        """Genviral refused the key: pause calls (once per pause) and answer why, for the caller's message."""
        reason = describe_refusal(error)
        if self._notices is None:
            return reason  # another key's refusal: the deployment's pause is not this caller's to open
        # No process-local shortcut: another process may have closed the pause this one stored (one read per
        # refusal, and a batch stops at its first refusal).
        now = self._clock()
        with self._lock:
            pause, wrote = self._store_refusal(error, reason, now)
        if not wrote:
            return reason  # another refusal's pause, running: it said so
        if pause.paused_at == now:
            logger.error("Genviral refused the key; pausing calls", extra={"reason": reason})
        else:
            logger.error("Genviral refused the key again; the pause goes on", extra={"reason": reason})
        emit(Metric.GENVIRAL_PAUSES)
        return reason

    def answered(self, before: PauseStatus) -> None:
        """Genviral answered a call made after `before` was read: a pause open then closes now, with `relay.resumed`
        (once: a conflict means another process wrote the pause; read again, it is closed or still open)."""
        if self._notices is None:
            return  # another key's answer: the deployment's key may still be refused
        status = before
        with self._lock:
            for _ in range(COMMIT_TRIES):
                pause = status.record
                if pause is None or pause.resumed_at is not None:
                    return
                now = self._clock()
                closed = pause.model_copy(update={"resumed_at": now, "until": min(pause.until, now)})
                try:
                    self._commit(status.version, closed, (resumed_notice(pause, now, self._workspace),))
                except StateConflictError:
                    status = self._state.genviral_pause(now)
                    continue
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
        """Open a pause (with `relay.paused`), or move an open one's `until` on when the probe is refused as it was
        (no notice); answers the pause as stored and whether this call wrote it (one open and still running is left
        as it is: the in-flight calls of the same burst).

        A refusal unlike the open pause's (another HTTP status or error code: the key was fixed, then the plan
        lapsed, with no call answered between) is a new pause with its own `relay.paused`, and no `relay.resumed`
        for the old one: consumers key a pause on its `paused_at`."""
        until = now + self._duration
        for _ in range(COMMIT_TRIES):
            status = self._state.genviral_pause(now)
            pause = status.record
            if status.open and pause is not None and pause.until > now:
                return pause, False
            if status.open and pause is not None and (pause.http_status, pause.error_code) == _cause(error):
                stored = pause.model_copy(update={"until": until})
                notices: tuple[NoticeDocument, ...] = ()
            else:
                status_code, error_code = _cause(error)
                stored = PauseRecord(
                    paused_at=now, until=until, reason=reason, http_status=status_code, error_code=error_code
                )
                notices = (paused_notice(stored, self._workspace),)
            try:
                self._commit(status.version, stored, notices)
            except StateConflictError:
                continue  # another process paused or extended first: read what it stored
            return stored, True
        raise StateConflictError(PAUSE_RECORD)

    def _commit(self, version: int, pause: PauseRecord, notices: tuple[NoticeDocument, ...]) -> None:
        if self._notices is None:  # guarded by the callers: a read-only pause writes nothing
            raise RuntimeError("this pause is only read: it has no notice outbox to store a pause in")
        self._notices.commit(
            PAUSE_RECORD,
            pause.model_dump_json(),
            expected_version=version,
            notices=notices,
            # The plain attributes the readers use (0.4's too): a closed pause's `until` is its end.
            attributes={"until": format_ts(pause.until), "reason": pause.reason},
        )


def _cause(error: GenviralConfigError) -> tuple[int | None, str | None]:
    """What tells one refusal from another: Genviral's status and error code (none for an unreadable secret)."""
    return error.status, error.error_code
