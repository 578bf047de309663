"""The documents a detection makes (`rules/transitions.py`), from Genviral's answer: pure constructors, so
detection reads as the decisions alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import Any

from genviral_relay.clock import format_ts
from genviral_relay.models.domain import FAILED, AccountSnapshot
from genviral_relay.models.events import (
    EVENT_TYPE_BY_STATUS,
    AccountDelayedEvent,
    AccountOutcomeEvent,
    AccountRef,
    AccountUrlResolvedEvent,
    CompletedAccount,
    PostCompletedEvent,
    PostSummary,
)
from genviral_relay.models.upstream import AccountState, Post
from genviral_relay.rules.completion import outcome_of
from genviral_relay.rules.failure_categories import failure_category


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


class SharedFields:
    """What the documents of one detection share, made only if one is (most checks emit nothing)."""

    def __init__(self, post: Post, detected_at: datetime, workspace: str) -> None:
        self._post = post
        self._detected_at = detected_at
        self.workspace = workspace

    @cached_property
    def summary(self) -> PostSummary:
        return summarize_post(self._post)

    @cached_property
    def detected(self) -> str:
        return format_ts(self._detected_at)


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


def outcome_event(
    event_id: str,
    sequence: int | None,
    post_id: str,
    before: AccountSnapshot | None,
    state: AccountState,
    account: AccountRef,
    shared: SharedFields,
) -> AccountOutcomeEvent:
    return AccountOutcomeEvent(
        event_id=event_id,
        workspace=shared.workspace,
        event_type=EVENT_TYPE_BY_STATUS[state.status],
        detected_at=shared.detected,
        post_id=post_id,
        status=state.status,  # type: ignore[arg-type]  # is_new_outcome admits final statuses only
        previous_status=before.status if before is not None else None,
        sequence=sequence,
        post=shared.summary,
        **_account_fields(state, account),
    )


def url_resolved_event(
    event_id: str,
    sequence: int | None,
    post_id: str,
    posted_event_id: str | None,
    state: AccountState,
    account: AccountRef,
    shared: SharedFields,
) -> AccountUrlResolvedEvent:
    return AccountUrlResolvedEvent(
        event_id=event_id,
        workspace=shared.workspace,
        event_type="post.account.url_resolved",
        detected_at=shared.detected,
        post_id=post_id,
        status="posted",
        previous_status="posted",
        posted_event_id=posted_event_id,
        sequence=sequence,
        post=shared.summary,
        **_account_fields(state, account),
    )


def delayed_event(
    event_id: str,
    sequence: int | None,
    post_id: str,
    before: AccountSnapshot | None,
    state: AccountState,
    account: AccountRef,
    since: datetime,
    shared: SharedFields,
) -> AccountDelayedEvent:
    return AccountDelayedEvent(
        event_id=event_id,
        workspace=shared.workspace,
        event_type="post.account.delayed",
        detected_at=shared.detected,
        post_id=post_id,
        status=state.status,
        previous_status=before.status if before is not None else None,
        delayed_since=format_ts(since),
        sequence=sequence,
        post=shared.summary,
        **_account_fields(state, account),
    )


def completion_event(
    event_id: str, post: Post, shared: SharedFields, named: Callable[[str], AccountRef]
) -> PostCompletedEvent:
    states = post.accounts.states
    outcome, posted, failed = outcome_of(states)
    return PostCompletedEvent(
        event_id=event_id,
        workspace=shared.workspace,
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
