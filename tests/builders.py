"""Small builders for upstream posts and stored watches, shared by the unit tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from genviral_relay.models.domain import AccountSnapshot, WatchRecord
from genviral_relay.models.events import AccountOutcomeEvent, RelayEvent, parse_event
from genviral_relay.models.upstream import Post

POST_ID = "11111111-1111-1111-1111-111111111111"
ACCOUNT_A = "0f4f54d4-8cce-4fb7-8c7b-befbcb8af812"
ACCOUNT_B = "6b0c8c9c-55ac-4fcb-85ec-70b5a8b0d089"
NOW = datetime(2025, 2, 1, 15, 0, tzinfo=UTC)


def account(account_id: str = ACCOUNT_A, status: str = "scheduled", **fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "account_id": account_id,
        "status": status,
        "published_at": None,
        "error_message": None,
        "last_attempted_at": None,
        "published_url": None,
    }
    state.update(fields)
    return state


def post(*states: dict[str, Any], post_id: str = POST_ID, **fields: Any) -> Post:
    document: dict[str, Any] = {
        "id": post_id,
        "caption": "Holiday drops start Monday!",
        "status": "scheduled",
        "scheduled_at": "2025-02-01T15:00:00Z",
        "created_at": "2025-01-20T12:05:11.205Z",
        "media": {"type": "video", "url": "https://cdn.example.com/video.mp4"},
        "music_url": None,
        "tiktok": None,
        "pinterest": None,
        "accounts": {"total": len(states), "states": list(states)},
    }
    document.update(fields)
    return Post.model_validate(document)


def watch(*states: dict[str, Any], version: int = 1, occurrences: dict[str, int] | None = None) -> WatchRecord:
    """A stored watch whose last-seen accounts are `states`."""
    return WatchRecord(
        post_id=POST_ID,
        version=version,
        post_status="scheduled",
        scheduled_at="2025-02-01T15:00:00Z",
        accounts={
            state["account_id"]: AccountSnapshot.model_validate({k: v for k, v in state.items() if k != "account_id"})
            for state in states
        },
        occurrences=occurrences or {},
        registered_at=NOW,
    )


def outcomes(events: Iterable[RelayEvent]) -> list[AccountOutcomeEvent]:
    """The account transitions among `events` (a check may also report delays and the post's completion)."""
    return [event for event in events if isinstance(event, AccountOutcomeEvent)]


def one_event_of_each_type(workspace: str | None = None) -> dict[str, RelayEvent]:
    """By `event_type`: an event of every type the relay publishes, as detection makes them (about watches of
    `workspace`: None, as 0.4 stored them, is `default`)."""
    from genviral_relay.rules.transitions import detect_transitions

    def new_watch() -> WatchRecord:
        return WatchRecord(post_id=POST_ID, version=0, registered_at=NOW, workspace=workspace)

    finished = post(
        account(status="posted", published_url="https://x.example/p", published_at="2025-02-01T15:00:04.000Z"),
        account(ACCOUNT_B, status="failed", error_message="Video too short", last_attempted_at="2025-02-01T15:00:05Z"),
    )
    late = detect_transitions(
        new_watch(), post(account(status="pending")), NOW + timedelta(minutes=20), delayed_after=timedelta(minutes=15)
    )
    # A posting first seen without its URL, then with it: the URL's own document
    stamp = "2025-02-01T15:00:04.000Z"
    posting = account(status="posted", published_at=stamp, last_attempted_at=stamp)
    first = detect_transitions(new_watch(), post(posting), NOW)
    seen = new_watch().model_copy(update={"version": 1, "accounts": first.accounts, "occurrences": first.occurrences})
    with_url = post({**posting, "published_url": "https://www.tiktok.com/@brand.shop/video/7300000000000000001"})
    resolved = detect_transitions(seen, with_url, NOW + timedelta(minutes=10)).events
    events = [*detect_transitions(new_watch(), finished, NOW).events, *late.events, *resolved]
    return {event.event_type: event for event in events}


SAMPLES = Path(__file__).resolve().parents[1] / "events" / "outbound"


def relay_event(event_type: str = "post.account.failed", event_id: str = "e1") -> RelayEvent:
    """A document of that type from the committed samples, under `event_id`."""
    sample = json.loads((SAMPLES / f"eventbridge-{event_type.replace('.', '-')}.json").read_text())["detail"]
    return parse_event({**sample, "event_id": event_id})
