"""Completed posts: every account of the post is `posted` or `failed`.

Pure. "Every account" is every account of Genviral's answer: one that left the post (missing from
the answer) no longer holds it back. A completion is the set of its accounts' outcomes, each named
by the event that reported it (`AccountSnapshot.outcome_event_id`), so it is reported once, a
detail filled in later (a URL, an attempt time) is no new completion, and a retry that completes
the post again (a new outcome event) is a new completion, under a new id.

A post whose every outcome was reported before 0.4 (no outcome event ids) completed before
completions existed: it is not reported late.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from genviral_relay.models.domain import FAILED, FINAL_STATUSES, POSTED
from genviral_relay.models.events import CompletionOutcome
from genviral_relay.models.upstream import AccountState, Post


def is_complete(post: Post) -> bool:
    states = post.accounts.states
    return bool(states) and all(state.status in FINAL_STATUSES for state in states)


def completion_key(outcome_event_ids: Iterable[str | None]) -> str | None:
    """One key for a set of outcomes, short whatever the number of accounts; None when none was reported by 0.4."""
    named = sorted(event_id or "" for event_id in outcome_event_ids)
    if not any(named):
        return None
    return "completed|" + hashlib.sha256("\n".join(named).encode()).hexdigest()[:32]


def outcome_of(states: Sequence[AccountState]) -> tuple[CompletionOutcome, int, int]:
    """(`outcome`, posted count, failed count) of a complete post."""
    posted = sum(state.status == POSTED for state in states)
    failed = sum(state.status == FAILED for state in states)
    outcome: CompletionOutcome = "posted" if failed == 0 else "failed" if posted == 0 else "partial"
    return outcome, posted, failed
