"""The fault runs' ledger: what the relay owes its subscribers, judged from upstream and from what the relay read."""

from __future__ import annotations

from typing import Any

from tests.support.ledger import Ledger, outcome_of

POST = "post-1"


def _post(*states: tuple[str, str, str | None]) -> dict[str, Any]:
    return {
        "id": POST,
        "accounts": {
            "states": [
                {"account_id": account, "status": status, "last_attempted_at": attempt, "published_url": None}
                for account, status, attempt in states
            ]
        },
    }


def _delivered(*documents: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {"sns": list(documents), "eventbridge": list(documents)}


def _event(event_id: str, state: tuple[str, str, str | None]) -> dict[str, Any]:
    account, status, attempt = state
    return {
        "event_id": event_id,
        "event_type": f"post.account.{status}",
        "post_id": POST,
        "account_id": account,
        "status": status,
        "last_attempted_at": attempt,
        "published_url": None,
    }


def _completion(event_id: str, *states: tuple[str, str, str | None]) -> dict[str, Any]:
    accounts = [{"account_id": a, "status": s, "last_attempted_at": t} for a, s, t in states]
    return {"event_id": event_id, "event_type": "post.completed", "post_id": POST, "accounts": accounts}


FAILED = ("a", "failed", "2026-03-04T22:53:00.000Z")
POSTED = ("b", "posted", "2026-03-05T02:12:00.000Z")
RETRIED = ("a", "retry", "2026-03-04T22:53:00.000Z")
POSTED_AGAIN = ("a", "posted", "2026-03-05T02:26:00.000Z")


def _week(ledger: Ledger, *, read_while_complete: bool) -> None:
    """Complete (one failed, one posted), sent back to a retry, complete again."""
    ledger.observe(_post(FAILED, ("b", "scheduled", None)))
    ledger.read(POST)
    ledger.observe(_post(FAILED, POSTED))
    if read_while_complete:
        ledger.read(POST)
    ledger.observe(_post(RETRIED, POSTED))
    ledger.read(POST)
    ledger.observe(_post(POSTED_AGAIN, POSTED))


# What the relay reads while the retry is under way: the failure, then both postings and the last completion.
SEEN_AFTER_THE_RETRY = _delivered(
    _event("1", FAILED), _event("2", POSTED), _event("3", POSTED_AGAIN), _completion("4", POSTED_AGAIN, POSTED)
)


def test_a_completion_the_post_left_before_the_relay_read_it_again_is_not_owed() -> None:
    ledger = Ledger(tracks_reads=True)
    _week(ledger, read_while_complete=False)

    audit = ledger.audit(SEEN_AFTER_THE_RETRY, [])

    assert (audit.lost, audit.unexpected, audit.completions, audit.unobservable) == (0, 0, 1, 1)


def test_a_completion_the_relay_read_is_owed() -> None:
    ledger = Ledger(tracks_reads=True)
    _week(ledger, read_while_complete=True)

    assert ledger.audit(SEEN_AFTER_THE_RETRY, []).lost == 2  # the first completion, on both targets


def test_an_unobservable_completion_reported_anyway_is_no_surprise_and_must_reach_every_target() -> None:
    ledger = Ledger(tracks_reads=True)
    _week(ledger, read_while_complete=False)
    first = _completion("5", FAILED, POSTED)

    both = ledger.audit({t: [*docs, first] for t, docs in SEEN_AFTER_THE_RETRY.items()}, [])
    one = ledger.audit({"sns": [*SEEN_AFTER_THE_RETRY["sns"], first], "eventbridge": SEEN_AFTER_THE_RETRY["sns"]}, [])

    assert (both.lost, both.unexpected, both.completions) == (0, 0, 2)
    assert one.lost == 1


def test_without_reads_every_completion_upstream_is_owed() -> None:
    ledger = Ledger()
    _week(ledger, read_while_complete=False)

    assert ledger.audit(SEEN_AFTER_THE_RETRY, []).lost == 2
    assert outcome_of(_completion("4", FAILED, POSTED)) in ledger.expected
