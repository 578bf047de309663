"""Transition detection: the pure heart of the relay.

(last-seen state, fetched post) -> (new state, events). No I/O, no clock: the caller passes
the detection time, so the same inputs always give the same output.

An account emits when its status changes *into* `posted` or `failed`, when it is already final
the first time the relay sees it (`previous_status: null`), and when it stays final but a new
attempt happened (a different non-null `last_attempted_at`: failed -> retry -> failed seen
between two checks). The caller names the accounts (`accounts`, from `checking/accounts.py`); one it
does not name is named by its id alone. Anything else (unknown provider statuses, a URL filled in later) updates
the stored state silently.

Two post-level signals come out of the same detection, keyed and numbered the same way so their
ids are as deterministic: an account awaited too long (`post.account.delayed`, `rules/delays.py`),
and a post whose every account is final (`post.completed`, `rules/completion.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from genviral_relay.clock import format_ts
from genviral_relay.models.domain import FAILED, FINAL_STATUSES, AccountSnapshot, WatchRecord
from genviral_relay.models.events import (
    EVENT_TYPE_BY_STATUS,
    AccountDelayedEvent,
    AccountOutcomeEvent,
    AccountRef,
    CompletedAccount,
    EventDocument,
    PostCompletedEvent,
    PostSummary,
)
from genviral_relay.models.upstream import AccountState, Post
from genviral_relay.rules.completion import completion_key, is_complete, outcome_of
from genviral_relay.rules.delays import awaited_since, delay_key, retry_seen_at
from genviral_relay.rules.failure_categories import failure_category

# Fixed namespace for event ids: changing it would re-key every event ever published.
EVENT_ID_NAMESPACE = uuid.UUID("6a4e2b8c-3f1d-5e7a-9c0b-1d2e3f4a5b6c")


@dataclass(frozen=True)
class Detection:
    accounts: dict[str, AccountSnapshot]
    occurrences: dict[str, int]
    events: tuple[EventDocument, ...]
    state_changed: bool
    next_delay_at: datetime | None = None
    """When the next delay of an account becomes reportable (None: none to come): check the post then."""


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


def snapshot(
    state: AccountState, *, outcome_event_id: str | None = None, retry_seen_at: str | None = None
) -> AccountSnapshot:
    return AccountSnapshot(
        status=state.status,
        published_at=state.published_at,
        error_message=state.error_message,
        last_attempted_at=state.last_attempted_at,
        published_url=state.published_url,
        outcome_event_id=outcome_event_id,
        retry_seen_at=retry_seen_at,
    )


class _SharedFields:
    """What the documents of one detection share, made only if one is (most checks emit nothing)."""

    def __init__(self, post: Post, detected_at: datetime) -> None:
        self._post = post
        self._detected_at = detected_at

    @cached_property
    def summary(self) -> PostSummary:
        return summarize_post(self._post)

    @cached_property
    def detected(self) -> str:
        return format_ts(self._detected_at)


def detect_transitions(
    previous: WatchRecord | None,
    post: Post,
    detected_at: datetime,
    accounts: Mapping[str, AccountRef] | None = None,
    *,
    delayed_after: timedelta | None = None,
) -> Detection:
    """`delayed_after`: how long an account may be awaited before it is reported delayed (None: never)."""
    names = accounts or {}
    known = previous.accounts if previous is not None else {}
    seen = dict(known)  # accounts missing from this answer keep their last-seen state
    occurrences = dict(previous.occurrences) if previous is not None else {}
    events: list[EventDocument] = []
    shared = _SharedFields(post, detected_at)

    def numbered(key: str) -> str:
        occurrence = occurrences.get(key, 0)
        occurrences[key] = occurrence + 1
        return make_event_id(post.id, key, occurrence)

    def named(account_id: str) -> AccountRef:
        return names.get(account_id) or AccountRef(id=account_id)

    next_delay_at: datetime | None = None
    for state in post.accounts.states:
        before = known.get(state.account_id)
        if is_new_outcome(before, state):
            event_id = numbered(outcome_key(state.account_id, state))
            events.append(_outcome_event(event_id, post.id, before, state, named(state.account_id), shared))
            seen[state.account_id] = snapshot(state, outcome_event_id=event_id)
            continue
        final = state.status in FINAL_STATUSES
        reported = before.outcome_event_id if final and before is not None else None
        current = snapshot(
            state, outcome_event_id=reported, retry_seen_at=retry_seen_at(before, state.status, detected_at)
        )
        seen[state.account_id] = current
        if delayed_after is not None and (since := awaited_since(post, current)) is not None:
            key, reportable_at = delay_key(state.account_id, since), since + delayed_after
            if key in occurrences:
                continue  # reported already
            if detected_at >= reportable_at:
                account = named(state.account_id)
                events.append(_delayed_event(numbered(key), post.id, before, state, account, since, shared))
            else:  # not yet: the post is checked again by then (`PollingPolicy.next_check`)
                next_delay_at = reportable_at if next_delay_at is None else min(next_delay_at, reportable_at)

    if is_complete(post):
        completion = completion_key(seen[state.account_id].outcome_event_id for state in post.accounts.states)
        if completion is not None and completion not in occurrences:
            events.append(_completion(numbered(completion), post, shared, named))

    state_changed = (
        previous is None
        or seen != previous.accounts
        or occurrences != previous.occurrences
        or post.status != previous.post_status
        or post.scheduled_at != previous.scheduled_at
    )
    return Detection(
        accounts=seen,
        occurrences=occurrences,
        events=tuple(events),
        state_changed=state_changed,
        next_delay_at=next_delay_at,
    )


def _account_fields(state: AccountState, account: AccountRef) -> dict[str, Any]:
    """What every document says of one account, as Genviral gave it (the completion's `accounts[]` too)."""
    return {
        "account_id": state.account_id,
        "account": account,
        "published_url": state.published_url,
        "published_at": state.published_at,
        "error_message": state.error_message,
        "error_category": failure_category(state.error_message) if state.status == FAILED else None,
        "last_attempted_at": state.last_attempted_at,
    }


def _outcome_event(
    event_id: str,
    post_id: str,
    before: AccountSnapshot | None,
    state: AccountState,
    account: AccountRef,
    shared: _SharedFields,
) -> AccountOutcomeEvent:
    return AccountOutcomeEvent(
        event_id=event_id,
        event_type=EVENT_TYPE_BY_STATUS[state.status],
        detected_at=shared.detected,
        post_id=post_id,
        status=state.status,  # type: ignore[arg-type]  # is_new_outcome admits final statuses only
        previous_status=before.status if before is not None else None,
        post=shared.summary,
        **_account_fields(state, account),
    )


def _delayed_event(
    event_id: str,
    post_id: str,
    before: AccountSnapshot | None,
    state: AccountState,
    account: AccountRef,
    since: datetime,
    shared: _SharedFields,
) -> AccountDelayedEvent:
    return AccountDelayedEvent(
        event_id=event_id,
        event_type="post.account.delayed",
        detected_at=shared.detected,
        post_id=post_id,
        status=state.status,
        previous_status=before.status if before is not None else None,
        delayed_since=format_ts(since),
        post=shared.summary,
        **_account_fields(state, account),
    )


def _completion(
    event_id: str, post: Post, shared: _SharedFields, named: Callable[[str], AccountRef]
) -> PostCompletedEvent:
    states = post.accounts.states
    outcome, posted, failed = outcome_of(states)
    return PostCompletedEvent(
        event_id=event_id,
        event_type="post.completed",
        detected_at=shared.detected,
        post_id=post.id,
        outcome=outcome,
        posted_count=posted,
        failed_count=failed,
        accounts=tuple(
            CompletedAccount(
                status=state.status,  # type: ignore[arg-type]  # a complete post's accounts are all final
                **_account_fields(state, named(state.account_id)),
            )
            for state in states
        ),
        post=shared.summary,
    )
