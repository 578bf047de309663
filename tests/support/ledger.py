"""Bookkeeping for fault runs: which transitions happened upstream, and what the subscribers got.

The ledger applies the relay's contract independently of its code: an account's observed state
entering `posted` or `failed`, or staying final at a new attempt, is one transition that every
target must receive under one event id; a post whose every account is final, with outcomes it was
not already reported complete with, is one completion, under the same rule. A posting the relay
reported without a URL (as the delivered `post.account.posted` shows) whose URL appeared upstream
later, at the same attempt, is one `post.account.url_resolved`, under the same rule. Delays depend
on the relay's clock, not on what happened upstream: they are left out of the audit.

A relay that polls reports the completions it reads. Told what the relay reads (`tracks_reads`, `read`), the
ledger does not owe a completion the post left (an account sent back to a retry, or completed otherwise) before
the relay read the post once: reported anyway, it must still reach every target.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

FINAL = frozenset({"posted", "failed"})
TARGETS = ("sns", "eventbridge")

# (post_id, account_id, status, attempt): what identifies one transition in a run where every
# attempt time is distinct.
OutcomeKey = tuple[str, str, str, str]


def outcome_of(document: dict[str, Any]) -> OutcomeKey:
    """What identifies the transition, completion, resolved URL or account change an event document reports."""
    if document.get("event_type") == "post.account.url_resolved":
        return url_resolution(_outcome_of_account(document["post_id"], document))
    if document.get("event_type", "").startswith("account."):
        return account_change(document["account_id"], document["event_type"], document["status"])
    if document.get("event_type") == "post.completed":
        return _completion(
            document["post_id"], [_outcome_of_account(document["post_id"], a) for a in document["accounts"]]
        )
    return _outcome_of_account(document["post_id"], document)


def _outcome_of_account(post_id: str, state: dict[str, Any]) -> OutcomeKey:
    attempt = state.get("last_attempted_at") or state.get("published_at") or ""
    return (post_id, state["account_id"], state["status"], attempt)


def _completion(post_id: str, outcomes: list[OutcomeKey]) -> OutcomeKey:
    return (post_id, "", "completed", " ".join(sorted("=".join(outcome[1:]) for outcome in outcomes)))


def url_resolution(posting: OutcomeKey) -> OutcomeKey:
    """The resolved URL of a posting."""
    return (posting[0], posting[1], "url_resolved", posting[3])


def account_change(account_id: str, event_type: str, status: str | None) -> OutcomeKey:
    """An account's change (`account.*`): one per (account, type, status) in a fault run."""
    return ("", account_id, event_type, status or "")


def is_completion(outcome: OutcomeKey) -> bool:
    return outcome[2] == "completed"


def is_url_resolution(outcome: OutcomeKey) -> bool:
    return outcome[2] == "url_resolved"


def audited(document: dict[str, Any]) -> bool:
    # Delays and the relay's own pauses (`relay.*`) follow the relay's clock and its calls, not upstream changes.
    event_type = document.get("event_type", "")
    return event_type != "post.account.delayed" and not event_type.startswith("relay.")


@dataclass
class Audit:
    expected: int
    """Transitions upstream (each completion is counted in `completions`, and audited like them)."""
    completions: int
    urls_resolved: int
    """Postings reported without a URL whose URL appeared later: each a `post.account.url_resolved`."""
    delivered: dict[str, int]
    lost: int
    duplicate_ids: int
    unexpected: int
    redelivered: int
    dead_lettered: int
    unobservable: int = 0
    """Completions the post left before the relay read it, and that no target received: not owed."""

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicate_ids == 0 and self.unexpected == 0


@dataclass
class Ledger:
    expected: list[OutcomeKey] = field(default_factory=list)
    _last: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    _reported: dict[tuple[str, str], OutcomeKey] = field(default_factory=dict)
    """By (post, account): the transition that reported its current final status."""
    _completed: dict[str, OutcomeKey] = field(default_factory=dict)
    _urls: set[OutcomeKey] = field(default_factory=set)
    """The postings whose URL was seen upstream."""
    tracks_reads: bool = False
    """The harness reports every read of a post by the relay (`read`): a completion it could not read is not owed."""
    _reads: Counter[str] = field(default_factory=Counter)
    _open: dict[str, tuple[OutcomeKey, int]] = field(default_factory=dict)
    """By post: its current completion upstream, and how many reads of the post came before it."""
    _unread: set[OutcomeKey] = field(default_factory=set)
    """Completions the post left before any read of it."""

    def read(self, post_id: str) -> None:
        """The relay read the post (its GET, or a list holding it): what the post shows now is observable."""
        self._reads[post_id] += 1

    def observe(self, post_json: dict[str, Any]) -> None:
        """Record the upstream state of a post (call after every change made to it)."""
        post_id, states = post_json["id"], post_json["accounts"]["states"]
        for state in states:
            key = (post_id, state["account_id"])
            status, attempt = state["status"], state["last_attempted_at"]
            before = self._last.get(key)
            entered = before is None or before[0] != status
            new_attempt = before is not None and before[1] is not None and attempt is not None and before[1] != attempt
            if status in FINAL and (entered or new_attempt):
                self.expected.append(outcome_of({"post_id": post_id, "account_id": key[1], **state}))
                self._reported[key] = self.expected[-1]
            if status == "posted" and state["published_url"] is not None:
                self._urls.add(_outcome_of_account(post_id, state))
            self._last[key] = (status, attempt)
        current = None
        if states and all(state["status"] in FINAL for state in states):
            current = _completion(post_id, [self._reported[(post_id, state["account_id"])] for state in states])
            if self._completed.get(post_id) != current:
                self.expected.append(current)
                self._completed[post_id] = current
        self._close(post_id, current)

    def _close(self, post_id: str, current: OutcomeKey | None) -> None:
        """The post's completion upstream is `current` (None: it is not complete) from now on."""
        opened = self._open.get(post_id)
        if opened is not None and opened[0] == current:
            return
        if opened is not None and self._reads[post_id] == opened[1]:
            self._unread.add(opened[0])
        if current is None:
            self._open.pop(post_id, None)
        else:
            self._open[post_id] = (current, self._reads[post_id])

    def expect_account_change(self, account_id: str, event_type: str, status: str | None) -> None:
        """Genviral's listing changed so that the relay must announce it (an account watched posts target)."""
        self.expected.append(account_change(account_id, event_type, status))

    def audit(self, delivered: dict[str, list[dict[str, Any]]], dead_lettered: list[dict[str, Any]]) -> Audit:
        expected = set(self.expected)
        if len(expected) != len(self.expected):
            raise ValueError("two transitions share an attempt time; give the emulator a ticking clock")
        late_urls = {
            url_resolution(posting)
            for target in TARGETS
            for document in delivered.get(target, [])
            if document.get("event_type") == "post.account.posted" and document["published_url"] is None
            if (posting := outcome_of(document)) in self._urls
        }
        expected |= late_urls
        parked = {(outcome_of(letter["event"]), letter["target"]) for letter in dead_lettered}
        ids: dict[OutcomeKey, set[str]] = defaultdict(set)
        received: dict[str, set[OutcomeKey]] = {}
        unexpected = 0
        redelivered = 0
        for target in TARGETS:
            documents = [document for document in delivered.get(target, []) if audited(document)]
            received[target] = {outcome_of(document) for document in documents}
            pairs = [(document["event_id"], target) for document in documents]
            redelivered += len(pairs) - len(set(pairs))
            for document in documents:
                ids[outcome_of(document)].add(document["event_id"])
                unexpected += outcome_of(document) not in expected
        for letter in dead_lettered:
            ids[outcome_of(letter["event"])].add(letter["event"]["event_id"])
        unobservable = set()
        if self.tracks_reads:  # reported by no target: the relay never read them (`read`)
            unobservable = {c for c in self._unread if all(c not in received[t] for t in TARGETS)} - set(ids)
        expected -= unobservable
        lost = sum(
            1
            for target in TARGETS
            for outcome in expected
            if outcome not in received[target] and (outcome, target) not in parked
        )
        completions = sum(is_completion(outcome) for outcome in expected)
        return Audit(
            expected=len(expected) - completions - len(late_urls),
            completions=completions,
            urls_resolved=len(late_urls),
            delivered={target: len(received[target] & expected) for target in TARGETS},
            lost=lost,
            duplicate_ids=sum(1 for event_ids in ids.values() if len(event_ids) > 1),
            unexpected=unexpected,
            redelivered=redelivered,
            dead_lettered=len(dead_lettered),
            unobservable=len(unobservable),
        )
