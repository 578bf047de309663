"""What the Genviral pause tells consumers: `relay.paused` when a refused key opens a pause, `relay.resumed` when the
first answer after it closes it. Once per pause: both ids are derived from the moment the pause began (and the
workspace whose key was refused), so whichever process commits them (and however often it retries) they are the same
two events."""

from __future__ import annotations

import uuid
from datetime import datetime

from genviral_relay.clock import format_ts
from genviral_relay.models.pause import PauseRecord
from genviral_relay.models.relay_notices import RelayStateEvent, RelayStateType
from genviral_relay.models.workspaces import scoped
from genviral_relay.rules.endpoint_health import NOTICE_NAMESPACE


def relay_notice_id(event_type: RelayStateType, paused_at: datetime, workspace: str) -> str:
    """The default workspace's ids are 0.4's; another's name it, so two keys refused at one moment (a bad secret
    pauses every workspace at once) are two pauses, each announced."""
    return str(uuid.uuid5(NOTICE_NAMESPACE, scoped(f"{event_type}#{format_ts(paused_at)}", workspace)))


def paused_notice(pause: PauseRecord, workspace: str) -> RelayStateEvent:
    """The pause of `workspace` just opened (detected when it began)."""
    return _notice("relay.paused", pause, pause.paused_at, workspace, until=format_ts(pause.until))


def resumed_notice(pause: PauseRecord, resumed_at: datetime, workspace: str) -> RelayStateEvent:
    """The pause of `workspace` closed at `resumed_at`: the same reason and status, no `until`."""
    return _notice("relay.resumed", pause, resumed_at, workspace, until=None)


def _notice(
    event_type: RelayStateType, pause: PauseRecord, detected_at: datetime, workspace: str, *, until: str | None
) -> RelayStateEvent:
    return RelayStateEvent(
        event_id=relay_notice_id(event_type, pause.paused_at, workspace),
        event_type=event_type,
        workspace=workspace,
        detected_at=format_ts(detected_at),
        reason=pause.reason,
        http_status=pause.http_status,
        until=until,
        paused_at=format_ts(pause.paused_at),
    )
