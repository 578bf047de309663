"""What goes with each event type the relay publishes about posts (detail-type, model, metric, log line): one
registry, so adding a type is one case here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never, get_args

from genviral_relay.models.events import (
    AccountDelayedEvent,
    AccountOutcomeEvent,
    AccountUrlResolvedEvent,
    EventType,
    PostCompletedEvent,
    RelayEvent,
)


@dataclass(frozen=True)
class EventKind:
    """What goes with one event type, wherever the relay needs it: adding a type means one case below, and mypy
    refuses `event_kind` until it has one."""

    event_type: EventType
    model: type[RelayEvent]
    metric: str
    """The metric it counts in (a value of `observability.Metric`)."""
    log_line: str
    """What a check that finds one logs (0.3's line for transitions, unchanged: `transition-log-line` in
    docs/compatibility.md)."""

    @property
    def detail_type(self) -> str:
        """EventBridge's detail-type (and the registry schema's name), as its model names it."""
        return self.model.DETAIL_TYPES[self.event_type]


def event_kind(event_type: EventType) -> EventKind:
    match event_type:
        # shim: transition-log-line (docs/compatibility.md)
        case "post.account.posted":
            return EventKind(event_type, AccountOutcomeEvent, "TransitionsPosted", "Transition detected")
        case "post.account.failed":
            return EventKind(event_type, AccountOutcomeEvent, "TransitionsFailed", "Transition detected")
        case "post.account.delayed":
            return EventKind(event_type, AccountDelayedEvent, "DeliveriesDelayed", "Delayed delivery detected")
        case "post.account.url_resolved":
            return EventKind(event_type, AccountUrlResolvedEvent, "UrlsResolved", "Late published URL detected")
        case "post.completed":
            return EventKind(event_type, PostCompletedEvent, "PostsCompleted", "Post completion detected")
        case _:
            assert_never(event_type)


EVENT_KINDS: dict[EventType, EventKind] = {event_type: event_kind(event_type) for event_type in get_args(EventType)}
"""Every event type the relay publishes, in the contract's order."""
DETAIL_TYPE_BY_EVENT_TYPE: dict[EventType, str] = {
    event_type: kind.detail_type for event_type, kind in EVENT_KINDS.items()
}
MODEL_BY_EVENT_TYPE: dict[EventType, type[RelayEvent]] = {
    event_type: kind.model for event_type, kind in EVENT_KINDS.items()
}
