"""The two post-level signals of detection: an account awaited too long (`post.account.delayed`) and a post
whose every account is final (`post.completed`), as pure functions of what the relay saw and when."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from genviral_relay.clock import format_ts
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.events import AccountDelayedEvent, PostCompletedEvent
from genviral_relay.models.upstream import Post
from genviral_relay.rules.transitions import Detection, detect_transitions
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, outcomes, post

THRESHOLD = timedelta(minutes=15)
SCHEDULED = NOW  # the builders' posts are scheduled at NOW


class Relay:
    """What the relay remembers between checks: each `sees` is one check of the post at `at`."""

    def __init__(self, *, delayed_after: timedelta | None = THRESHOLD) -> None:
        self.watch: WatchRecord | None = None
        self.delayed_after = delayed_after

    def sees(self, answer: Post, at: datetime) -> Detection:
        detection = detect_transitions(self.watch, answer, at, delayed_after=self.delayed_after)
        self.watch = WatchRecord(
            post_id=POST_ID,
            version=(self.watch.version if self.watch else 0) + 1,
            post_status=answer.status,
            scheduled_at=answer.scheduled_at,
            accounts=detection.accounts,
            occurrences=detection.occurrences,
            registered_at=NOW,
        )
        return detection


def delays(detection: Detection) -> list[AccountDelayedEvent]:
    return [event for event in detection.events if isinstance(event, AccountDelayedEvent)]


def completions(detection: Detection) -> list[PostCompletedEvent]:
    return [event for event in detection.events if isinstance(event, PostCompletedEvent)]


def pending(account_id: str = ACCOUNT_A, **fields: Any) -> dict[str, Any]:
    return account(account_id, status="pending", **fields)


def posted(account_id: str = ACCOUNT_A, at: str = "2025-02-01T15:00:05.000Z") -> dict[str, Any]:
    return account(account_id, status="posted", last_attempted_at=at, published_url=f"https://x.example/{at}")


def failed(account_id: str = ACCOUNT_A, at: str = "2025-02-01T15:00:05.000Z", **fields: Any) -> dict[str, Any]:
    return account(account_id, status="failed", last_attempted_at=at, error_message="Video too short", **fields)


# ---------------------------------------------------------------------- delayed
def test_an_account_is_not_delayed_before_the_threshold_and_says_when_it_will_be() -> None:
    detection = Relay().sees(post(pending()), SCHEDULED + THRESHOLD - timedelta(seconds=1))

    assert delays(detection) == []
    assert detection.next_delay_at == SCHEDULED + THRESHOLD


def test_an_account_awaited_for_the_threshold_is_delayed_once() -> None:
    relay = Relay()
    relay.sees(post(pending()), SCHEDULED)

    (delayed,) = delays(relay.sees(post(pending()), SCHEDULED + THRESHOLD))
    again = relay.sees(post(pending()), SCHEDULED + THRESHOLD + timedelta(hours=2))

    assert (delayed.event_type, delayed.account_id, delayed.status) == ("post.account.delayed", ACCOUNT_A, "pending")
    assert (delayed.previous_status, delayed.error_category) == ("pending", None)
    assert delayed.delayed_since == format_ts(SCHEDULED)
    assert delayed.detail_type == "Post Account Delayed"
    assert delayed.sns_attributes()["status"] == "pending"
    assert (delays(again), again.next_delay_at) == ([], None)  # reported: nothing more to come for this attempt


def test_the_delay_id_is_deterministic() -> None:
    (first,) = delays(Relay().sees(post(pending()), SCHEDULED + THRESHOLD))
    (second,) = delays(Relay().sees(post(pending()), SCHEDULED + timedelta(hours=3)))

    assert first.event_id == second.event_id


def test_a_post_without_a_time_is_awaited_from_its_creation() -> None:
    created = SCHEDULED - timedelta(hours=1)
    answer = post(pending(), scheduled_at=None, created_at=format_ts(created))

    (delayed,) = delays(Relay().sees(answer, created + THRESHOLD))

    assert delayed.delayed_since == format_ts(created)


def test_a_retry_the_relay_saw_is_awaited_from_that_sighting_and_is_a_new_attempt() -> None:
    relay = Relay()
    (first,) = delays(relay.sees(post(pending()), SCHEDULED + THRESHOLD))
    relay.sees(post(failed()), SCHEDULED + timedelta(minutes=20))
    sighting = SCHEDULED + timedelta(hours=2)

    waiting = relay.sees(post(account(status="retry", last_attempted_at="2025-02-01T15:00:05.000Z")), sighting)
    assert delays(waiting) == []  # long after scheduled_at, but the new attempt only started now
    assert waiting.next_delay_at == sighting + THRESHOLD
    (second,) = delays(relay.sees(post(pending()), sighting + THRESHOLD))

    assert second.delayed_since == format_ts(sighting)
    assert second.event_id != first.event_id
    assert relay.watch is not None
    assert relay.watch.accounts[ACCOUNT_A].retry_seen_at == format_ts(sighting)


def test_a_retry_seen_on_a_later_check_keeps_its_first_sighting() -> None:
    relay = Relay()
    relay.sees(post(failed()), SCHEDULED)
    sighting = SCHEDULED + timedelta(hours=1)
    relay.sees(post(account(status="retry")), sighting)

    later = relay.sees(post(pending()), sighting + timedelta(minutes=5))

    assert later.accounts[ACCOUNT_A].retry_seen_at == format_ts(sighting)
    assert later.next_delay_at == sighting + THRESHOLD


def test_a_delayed_delivery_still_gets_its_outcome() -> None:
    relay = Relay()
    relay.sees(post(pending()), SCHEDULED + THRESHOLD)

    outcome = relay.sees(post(posted()), SCHEDULED + timedelta(minutes=40))

    assert [(event.event_type, event.previous_status) for event in outcomes(outcome.events)] == [
        ("post.account.posted", "pending")
    ]
    assert delays(outcome) == []


def test_a_rescheduled_post_is_a_new_attempt() -> None:
    relay = Relay()
    (first,) = delays(relay.sees(post(pending()), SCHEDULED + THRESHOLD))
    later = SCHEDULED + timedelta(hours=4)
    moved = post(pending(), scheduled_at=format_ts(later))

    assert delays(relay.sees(moved, later)) == []
    (second,) = delays(relay.sees(moved, later + THRESHOLD))
    assert second.delayed_since == format_ts(later)
    assert second.event_id != first.event_id


@pytest.mark.parametrize(
    "answer",
    [
        post(pending(), status="draft"),
        post(pending(), status="canceled"),
        post(account(status="deleted")),
        post(account(status="canceled")),
        post(account(status="draft")),
        post(posted()),
        post(pending(), scheduled_at=None, created_at=None),  # nothing to count from
    ],
    ids=["draft post", "canceled post", "deleted account", "canceled account", "draft account", "final", "no time"],
)
def test_nothing_is_awaited_of_what_is_not_heading_for_delivery(answer: Post) -> None:
    detection = Relay().sees(answer, SCHEDULED + timedelta(days=1))

    assert (delays(detection), detection.next_delay_at) == ([], None)


def test_an_unknown_status_is_awaited_like_any_unfinished_one() -> None:
    (delayed,) = delays(Relay().sees(post(account(status="processing-by-provider")), SCHEDULED + THRESHOLD))

    assert delayed.status == "processing-by-provider"


def test_the_signal_off_reports_nothing_and_schedules_nothing() -> None:
    detection = Relay(delayed_after=None).sees(post(pending()), SCHEDULED + timedelta(days=1))

    assert (delays(detection), detection.next_delay_at) == ([], None)


def test_each_account_is_delayed_on_its_own() -> None:
    relay = Relay()
    sighting = SCHEDULED + timedelta(hours=1)
    relay.sees(post(pending(), failed(ACCOUNT_B)), SCHEDULED)
    (a_delay,) = delays(relay.sees(post(pending(), account(ACCOUNT_B, status="retry")), sighting))

    assert a_delay.account_id == ACCOUNT_A
    (b_delay,) = delays(relay.sees(post(pending(), pending(ACCOUNT_B)), sighting + THRESHOLD))
    assert b_delay.account_id == ACCOUNT_B


# ---------------------------------------------------------------------- completed
@pytest.mark.parametrize(
    ("states", "outcome", "counts"),
    [
        ([posted(), posted(ACCOUNT_B)], "posted", (2, 0)),
        ([failed(), failed(ACCOUNT_B)], "failed", (0, 2)),
        ([posted(), failed(ACCOUNT_B)], "partial", (1, 1)),
    ],
)
def test_a_post_first_seen_complete_reports_its_outcomes_then_its_completion(
    states: list[dict[str, Any]], outcome: str, counts: tuple[int, int]
) -> None:
    detection = Relay().sees(post(*states), SCHEDULED)

    *transitions, completion = detection.events
    assert isinstance(completion, PostCompletedEvent)
    assert len(outcomes(transitions)) == 2
    assert (completion.outcome, (completion.posted_count, completion.failed_count)) == (outcome, counts)
    assert [(account.account_id, account.status) for account in completion.accounts] == [
        (state["account_id"], state["status"]) for state in states
    ]
    assert completion.sns_attributes() == {
        "event_type": "post.completed",
        "workspace": "default",
        "post_id": POST_ID,
        "outcome": outcome,
    }
    assert completion.detail_type == "Post Completed"


def test_the_completion_carries_each_accounts_outcome() -> None:
    (completion,) = completions(Relay().sees(post(posted(), failed(ACCOUNT_B)), SCHEDULED))

    by_id = {account.account_id: account for account in completion.accounts}
    assert by_id[ACCOUNT_A].published_url == "https://x.example/2025-02-01T15:00:05.000Z"
    assert by_id[ACCOUNT_A].error_category is None
    assert (by_id[ACCOUNT_B].error_message, by_id[ACCOUNT_B].error_category) == ("Video too short", "media_rejected")
    assert by_id[ACCOUNT_B].last_attempted_at == "2025-02-01T15:00:05.000Z"


def test_no_completion_while_an_account_is_unfinished() -> None:
    detection = Relay().sees(post(posted(), pending(ACCOUNT_B)), SCHEDULED)

    assert completions(detection) == []
    assert len(outcomes(detection.events)) == 1


def test_a_completion_is_reported_once_even_as_details_fill_in() -> None:
    relay = Relay()
    relay.sees(post(account(status="posted"), failed(ACCOUNT_B)), SCHEDULED)

    later = post(account(status="posted", published_url="https://x.example/late"), failed(ACCOUNT_B))
    filled_in = relay.sees(later, SCHEDULED + timedelta(minutes=1))

    # The URL of a posting reported without one is its own document (`rules/late_urls.py`), not a new completion.
    assert [event.event_type for event in filled_in.events] == ["post.account.url_resolved"]
    assert filled_in.state_changed


def test_a_retry_that_completes_the_post_again_is_a_new_completion() -> None:
    relay = Relay()
    (first,) = completions(relay.sees(post(posted(), failed(ACCOUNT_B)), SCHEDULED))
    retrying = relay.sees(post(posted(), account(ACCOUNT_B, status="retry")), SCHEDULED + timedelta(hours=1))
    assert completions(retrying) == []

    again = relay.sees(post(posted(), posted(ACCOUNT_B, at="2025-02-01T16:01:00.000Z")), SCHEDULED + timedelta(hours=2))

    (second,) = completions(again)
    assert (first.outcome, second.outcome) == ("partial", "posted")
    assert second.event_id != first.event_id
    assert [event.event_type for event in again.events] == ["post.account.posted", "post.completed"]


def test_a_retry_between_two_checks_completes_the_post_again() -> None:
    # failed@t1, then failed@t2 with no sighting of the retry in between
    relay = Relay()
    (first,) = completions(relay.sees(post(failed()), SCHEDULED))

    (second,) = completions(relay.sees(post(failed(at="2025-02-01T16:00:00.000Z")), SCHEDULED + timedelta(hours=1)))

    assert (second.outcome, second.accounts[0].last_attempted_at) == ("failed", "2025-02-01T16:00:00.000Z")
    assert second.event_id != first.event_id


def test_an_account_that_leaves_the_post_no_longer_holds_its_completion() -> None:
    relay = Relay()
    relay.sees(post(posted(), pending(ACCOUNT_B)), SCHEDULED)

    (completion,) = completions(relay.sees(post(posted()), SCHEDULED + timedelta(minutes=1)))

    assert [account.account_id for account in completion.accounts] == [ACCOUNT_A]
    assert (completion.outcome, completion.posted_count) == ("posted", 1)
    assert relay.sees(post(posted()), SCHEDULED + timedelta(minutes=2)).events == ()


def test_an_unknown_status_keeps_the_post_unfinished() -> None:
    detection = Relay().sees(post(posted(), account(ACCOUNT_B, status="processing-by-provider")), SCHEDULED)

    assert completions(detection) == []


def test_a_post_with_no_accounts_is_not_complete() -> None:
    assert completions(Relay().sees(post(), SCHEDULED)) == []


def test_a_post_that_completed_before_0_4_is_not_reported_late() -> None:
    # Stored by 0.3: final accounts, their outcome events reported, but no outcome event ids
    stored = WatchRecord.model_validate(
        {
            "post_id": POST_ID,
            "version": 3,
            "post_status": "partial",
            "accounts": {
                ACCOUNT_A: {"status": "posted", "last_attempted_at": "2025-02-01T15:00:05.000Z"},
                ACCOUNT_B: {"status": "failed", "last_attempted_at": "2025-02-01T15:00:05.000Z"},
            },
            "registered_at": NOW,
        }
    )

    detection = detect_transitions(stored, post(posted(), failed(ACCOUNT_B)), SCHEDULED, delayed_after=THRESHOLD)

    assert detection.events == ()


def test_completion_ids_are_deterministic() -> None:
    answer = post(posted(), failed(ACCOUNT_B))

    (first,) = completions(Relay().sees(answer, SCHEDULED))
    (second,) = completions(Relay().sees(answer, SCHEDULED + timedelta(minutes=5)))

    assert first.event_id == second.event_id
