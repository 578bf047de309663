"""Transition detection: the pure heart of the relay.

(last-seen state, fetched post) -> (new state, events). No I/O, no clock: the caller passes
the detection time, so the same inputs always give the same output.

An account emits when its status changes *into* `posted` or `failed`, when it is already final
the first time the relay sees it (`previous_status: null`), and when it stays final but a new
attempt happened (a different non-null `last_attempted_at`: failed -> retry -> failed seen
between two checks). The caller names the accounts (`accounts`, from `logic/accounts.py`); one it
does not name is named by its id alone. Anything else (unknown provider statuses, a URL filled in later) updates
the stored state silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from genviral_relay.clock import format_ts
from genviral_relay.logic.failure_categories import failure_category
from genviral_relay.models.domain import FAILED, FINAL_STATUSES, AccountSnapshot, WatchRecord
from genviral_relay.models.events import EVENT_TYPE_BY_STATUS, AccountRef, PostSummary, RelayEvent
from genviral_relay.models.upstream import AccountState, Post

# Fixed namespace for event ids: changing it would re-key every event ever published.
EVENT_ID_NAMESPACE = uuid.UUID("6a4e2b8c-3f1d-5e7a-9c0b-1d2e3f4a5b6c")


@dataclass(frozen=True)
class Detection:
    accounts: dict[str, AccountSnapshot]
    occurrences: dict[str, int]
    events: tuple[RelayEvent, ...]
    state_changed: bool


def is_new_outcome(previous: AccountSnapshot | None, current: AccountState) -> bool:
    """Whether `current` is a transition into a final status that has not been reported yet."""
    if current.status not in FINAL_STATUSES:
        return False
    if previous is None or previous.status != current.status:
        return True
    return (
        previous.last_attempted_at is not None
        and current.last_attempted_at is not None
        and previous.last_attempted_at != current.last_attempted_at
    )


def outcome_key(account_id: str, state: AccountState) -> str:
    """What makes one outcome distinct: the account, its final status and the attempt it belongs to."""
    attempt = state.last_attempted_at or state.published_at or ""
    return f"{account_id}|{state.status}|{attempt}"


def make_event_id(post_id: str, key: str, occurrence: int) -> str:
    """Deterministic id: same post, outcome and occurrence -> same id; anything else -> another id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{post_id}|{key}|{occurrence}"))


def summarize_post(post: Post) -> PostSummary:
    return PostSummary(
        caption=post.caption,
        status=post.status,
        scheduled_at=post.scheduled_at,
        created_at=post.created_at,
        media=post.media.model_dump() if post.media is not None else None,
        music_url=post.music_url,
        external_id=post.external_id,
    )


def snapshot(state: AccountState) -> AccountSnapshot:
    return AccountSnapshot(
        status=state.status,
        published_at=state.published_at,
        error_message=state.error_message,
        last_attempted_at=state.last_attempted_at,
        published_url=state.published_url,
    )


def detect_transitions(
    previous: WatchRecord | None,
    post: Post,
    detected_at: datetime,
    accounts: Mapping[str, AccountRef] | None = None,
) -> Detection:
    names = accounts or {}
    known = previous.accounts if previous is not None else {}
    seen = dict(known)  # accounts missing from this answer keep their last-seen state
    occurrences = dict(previous.occurrences) if previous is not None else {}
    events: list[RelayEvent] = []
    summary = summarize_post(post)
    detected = format_ts(detected_at)

    for state in post.accounts.states:
        before = known.get(state.account_id)
        seen[state.account_id] = snapshot(state)
        if not is_new_outcome(before, state):
            continue
        key = outcome_key(state.account_id, state)
        occurrence = occurrences.get(key, 0)
        occurrences[key] = occurrence + 1
        events.append(
            RelayEvent(
                event_id=make_event_id(post.id, key, occurrence),
                event_type=EVENT_TYPE_BY_STATUS[state.status],
                detected_at=detected,
                post_id=post.id,
                account_id=state.account_id,
                account=names.get(state.account_id) or AccountRef(id=state.account_id),
                status=state.status,  # type: ignore[arg-type]  # is_new_outcome admits final statuses only
                previous_status=before.status if before is not None else None,
                published_url=state.published_url,
                published_at=state.published_at,
                error_message=state.error_message,
                error_category=failure_category(state.error_message) if state.status == FAILED else None,
                last_attempted_at=state.last_attempted_at,
                post=summary,
            )
        )

    state_changed = (
        previous is None
        or seen != previous.accounts
        or occurrences != previous.occurrences
        or post.status != previous.post_status
        or post.scheduled_at != previous.scheduled_at
    )
    return Detection(accounts=seen, occurrences=occurrences, events=tuple(events), state_changed=state_changed)
