"""When a failing webhook endpoint is turned off (issue 22, item 7): one whose every delivery has failed for
`WebhookDisableAfterHours` is disabled, so nothing more is queued for it and its operator hears of it once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from genviral_relay.clock import format_ts

DEFAULT_DISABLE_AFTER_HOURS = 120
NOTICE_NAMESPACE = uuid.UUID("5b0d7c3e-9f7a-5c43-8a51-2f3d6f0e4a21")
"""The namespace of the notices' ids (uuid5): fixed, so one disabling always has the same id."""


def disable_after(hours: int) -> timedelta | None:
    """The failing time that disables an endpoint; None (never) for 0."""
    return timedelta(hours=hours) if hours > 0 else None


def due_for_disabling(failing_since: datetime | None, now: datetime, after: timedelta | None) -> bool:
    """After a failed attempt at `now`: every delivery since `failing_since` failed, for at least `after`."""
    return after is not None and failing_since is not None and now - failing_since >= after


def disabled_reason(failing_since: datetime, now: datetime) -> str:
    hours = (now - failing_since).total_seconds() / 3600
    return f"every delivery failed for {hours:.0f} hours (since {format_ts(failing_since)})"


def notice_event_id(webhook_id: str, disabled_at: datetime) -> str:
    """Deterministic: the same disabling is the same event wherever it is published from."""
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"{webhook_id}#{format_ts(disabled_at)}"))
