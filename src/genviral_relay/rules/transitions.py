"""Transition detection: the pure heart of the relay.

(last-seen state, fetched post) -> (new state, events). No I/O, no clock: the caller passes
the detection time, so the same inputs always give the same output.

An account emits when its status changes *into* `posted` or `failed`, when it is already final
the first time the relay sees it (`previous_status: null`), and when it stays final but a new
attempt happened (a different non-null `last_attempted_at`: failed -> retry -> failed seen
between two checks). The caller names the accounts (`accounts`, from `checking/accounts.py`); one it
does not name is named by its id alone. Anything else (unknown provider statuses, a detail filled in later)
updates the stored state silently, except the URL of a posting reported without one
(`post.account.url_resolved`, `rules/late_urls.py`).

Two post-level signals come out of the same detection, keyed and numbered the same way so their
ids are as deterministic: an account awaited too long (`post.account.delayed`, `rules/delays.py`),
and a post whose every account is final (`post.completed`, `rules/completion.py`). Every account
document carries its `sequence` (`rules/numbering.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from genviral_relay.models.domain import FINAL_STATUSES, AccountSnapshot, WatchRecord
from genviral_relay.models.events import AccountRef, EventDocument
from genviral_relay.models.upstream import AccountState, Post
from genviral_relay.models.workspaces import workspace_of
from genviral_relay.rules.completion import completion_key, is_complete
from genviral_relay.rules.delays import awaited_since, delay_key, retry_seen_at
from genviral_relay.rules.documents import (
    SharedFields,
    completion_event,
    delayed_event,
    outcome_event,
    url_resolved_event,
)
from genviral_relay.rules.late_urls import resolves_url, url_awaited_since, url_key
from genviral_relay.rules.numbering import Numbering


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


def snapshot(
    state: AccountState,
    *,
    outcome_event_id: str | None = None,
    retry_seen_at: str | None = None,
    sequence: int | None = None,
    url_awaited_since: str | None = None,
) -> AccountSnapshot:
    return AccountSnapshot(
        status=state.status,
        published_at=state.published_at,
        error_message=state.error_message,
        last_attempted_at=state.last_attempted_at,
        published_url=state.published_url,
        outcome_event_id=outcome_event_id,
        retry_seen_at=retry_seen_at,
        sequence=sequence,
        url_awaited_since=url_awaited_since,
    )


def detect_transitions(
    previous: WatchRecord | None,
    post: Post,
    detected_at: datetime,
    accounts: Mapping[str, AccountRef] | None = None,
    *,
    delayed_after: timedelta | None = None,
    silent: bool = False,
) -> Detection:
    """`delayed_after`: how long an account may be awaited before it is reported delayed (None: never).
    `silent`: a baseline (`PostCheck.apply_answer`): what it sees counts as seen, but it reports nothing,
    numbers nothing and awaits no URL. The documents are the workspace's of `previous` (`default` without one)."""
    names = accounts or {}
    known = previous.accounts if previous is not None else {}
    seen = dict(known)  # accounts missing from this answer keep their last-seen state
    numbering = Numbering(post.id, previous, silent=silent)
    events: list[EventDocument] = []
    shared = SharedFields(post, detected_at, workspace_of(previous.workspace if previous is not None else None))
    reported_at = None if silent else shared.detected  # when a posting reported now started its URL wait

    def named(account_id: str) -> AccountRef:
        return names.get(account_id) or AccountRef(id=account_id)

    next_delay_at: datetime | None = None
    for state in post.accounts.states:
        account_id = state.account_id
        before = known.get(account_id)
        if is_new_outcome(before, state):
            event_id, sequence = numbering.account_event(account_id, outcome_key(account_id, state))
            events.append(outcome_event(event_id, sequence, post.id, before, state, named(account_id), shared))
            seen[account_id] = snapshot(
                state,
                outcome_event_id=event_id,
                sequence=numbering.sequence_of(account_id),
                url_awaited_since=url_awaited_since(before, state, reported_at=reported_at),
            )
            continue
        final = state.status in FINAL_STATUSES
        reported = before.outcome_event_id if final and before is not None else None
        if resolves_url(before, state) and (key := url_key(account_id, reported)) not in numbering.occurrences:
            event_id, sequence = numbering.account_event(account_id, key)
            events.append(url_resolved_event(event_id, sequence, post.id, reported, state, named(account_id), shared))
        current = snapshot(
            state,
            outcome_event_id=reported,
            retry_seen_at=retry_seen_at(before, state.status, detected_at),
            sequence=numbering.sequence_of(account_id),
            url_awaited_since=url_awaited_since(before, state, reported_at=None),
        )
        seen[account_id] = current
        if delayed_after is not None and (since := awaited_since(post, current)) is not None:
            key, reportable_at = delay_key(account_id, since), since + delayed_after
            if key in numbering.occurrences:
                continue  # reported already
            if detected_at >= reportable_at:
                event_id, sequence = numbering.account_event(account_id, key)
                account = named(account_id)
                events.append(delayed_event(event_id, sequence, post.id, before, state, account, since, shared))
                seen[account_id] = current.model_copy(update={"sequence": numbering.sequence_of(account_id)})
            else:  # not yet: the post is checked again by then (`PollingPolicy.next_check`)
                next_delay_at = reportable_at if next_delay_at is None else min(next_delay_at, reportable_at)

    if is_complete(post):
        completion = completion_key(seen[state.account_id].outcome_event_id for state in post.accounts.states)
        if completion is not None and completion not in numbering.occurrences:
            events.append(completion_event(numbering.event_id(completion), post, shared, named))

    occurrences = numbering.occurrences
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
        events=() if silent else tuple(events),
        state_changed=state_changed,
        next_delay_at=next_delay_at,
    )
