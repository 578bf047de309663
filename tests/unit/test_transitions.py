"""The transition table, event ids and the event document."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genviral_relay.rules.numbering import make_event_id
from genviral_relay.rules.transitions import detect_transitions, outcome_key
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, outcomes, post, watch

DOCUMENTED = ["draft", "pending", "scheduled", "posted", "failed", "partial", "retry", "canceled", "deleted", "void"]
UNKNOWN = "processing-by-provider"
STATUSES = [*DOCUMENTED, UNKNOWN]
FINAL = {"posted", "failed"}
ATTEMPT = "2025-02-01T15:00:05.000Z"


@pytest.mark.parametrize(("before", "after"), list(itertools.product([None, *STATUSES], STATUSES)))
def test_transition_table_emits_exactly_on_entry_into_posted_or_failed(before: str | None, after: str) -> None:
    # Given an account last seen in `before` (None: never seen) and now in `after`, same attempt
    previous = watch(account(status=before, last_attempted_at=ATTEMPT)) if before else None
    current = post(account(status=after, last_attempted_at=ATTEMPT))

    # When
    detection = detect_transitions(previous, current, NOW)

    # Then
    should_emit = after in FINAL and before != after
    assert [event.status for event in outcomes(detection.events)] == ([after] if should_emit else [])
    if should_emit:
        event = outcomes(detection.events)[0]
        assert event.previous_status == before
        assert event.event_type == f"post.account.{after}"
    assert detection.accounts[ACCOUNT_A].status == after
    assert detection.state_changed is (before != after)


@pytest.mark.parametrize("status", sorted(FINAL))
def test_a_new_attempt_into_the_same_final_status_is_a_new_transition(status: str) -> None:
    # Given failed (or posted) at one attempt, then the same status at a later attempt (a retry between checks)
    previous = watch(account(status=status, last_attempted_at="2025-02-01T15:00:05.000Z"))
    current = post(account(status=status, last_attempted_at="2025-02-01T15:30:05.000Z"))

    detection = detect_transitions(previous, current, NOW)

    assert len(outcomes(detection.events)) == 1
    assert outcomes(detection.events)[0].previous_status == status


def test_an_attempt_time_filled_in_later_is_not_a_new_transition() -> None:
    previous = watch(account(status="posted", last_attempted_at=None))
    current = post(account(status="posted", last_attempted_at=ATTEMPT, published_url="https://x.example/1"))

    detection = detect_transitions(previous, current, NOW)

    assert detection.events == ()
    assert detection.state_changed
    assert detection.accounts[ACCOUNT_A].published_url == "https://x.example/1"


def test_unchanged_post_changes_nothing() -> None:
    states = [account(status="posted", last_attempted_at=ATTEMPT), account(ACCOUNT_B, status="scheduled")]
    first = detect_transitions(None, post(*states), NOW)
    stored = watch(*states, occurrences=first.occurrences).model_copy(update={"post_status": "scheduled"})

    again = detect_transitions(stored, post(*states), NOW)

    assert again.events == ()
    assert not again.state_changed


def test_first_sight_of_final_accounts_emits_with_null_previous_status() -> None:
    current = post(
        account(status="posted", last_attempted_at=ATTEMPT, published_url="https://x.example/p"),
        account(ACCOUNT_B, status="failed", last_attempted_at=ATTEMPT, error_message="token expired"),
    )

    detection = detect_transitions(None, current, NOW)

    assert [(event.account_id, event.status, event.previous_status) for event in outcomes(detection.events)] == [
        (ACCOUNT_A, "posted", None),
        (ACCOUNT_B, "failed", None),
    ]
    posted, failed = outcomes(detection.events)
    assert posted.published_url == "https://x.example/p"
    assert failed.error_message == "token expired"


def test_failed_retry_failed_posted_gives_three_events_with_three_ids() -> None:
    # Given the sequence of observations failed@t1 -> retry -> failed@t2 -> posted@t3
    observations = [
        account(status="failed", last_attempted_at="2025-02-01T15:00:01.000Z", error_message="first"),
        account(status="retry", last_attempted_at="2025-02-01T15:00:01.000Z"),
        account(status="failed", last_attempted_at="2025-02-01T15:10:01.000Z", error_message="second"),
        account(status="posted", last_attempted_at="2025-02-01T15:20:01.000Z", published_url="https://x/1"),
    ]
    stored = None
    events = []
    for observation in observations:
        detection = detect_transitions(stored, post(observation), NOW)
        events.extend(outcomes(detection.events))
        stored = watch(observation, occurrences=detection.occurrences)

    assert [(event.previous_status, event.status) for event in events] == [
        (None, "failed"),
        ("retry", "failed"),
        ("failed", "posted"),
    ]
    assert len({event.event_id for event in events}) == 3


def test_same_observation_twice_yields_the_same_event_id() -> None:
    # A crash before the commit means the next check sees the same transition again.
    previous = watch(account(status="pending"))
    current = post(account(status="failed", last_attempted_at=ATTEMPT, error_message="x"))

    first = detect_transitions(previous, current, NOW)
    second = detect_transitions(previous, current, NOW)

    assert outcomes(first.events)[0].event_id == outcomes(second.events)[0].event_id
    assert outcomes(first.events) == outcomes(second.events)


def test_a_repeated_outcome_without_attempt_times_still_gets_a_new_id() -> None:
    # failed -> retry -> failed with no last_attempted_at at all: two transitions, two ids
    failed = account(status="failed")
    first = detect_transitions(None, post(failed), NOW)
    after_retry = watch(account(status="retry"), occurrences=first.occurrences)
    second = detect_transitions(after_retry, post(failed), NOW)

    assert len(outcomes(first.events)) == len(outcomes(second.events)) == 1
    assert outcomes(first.events)[0].event_id != outcomes(second.events)[0].event_id


def test_event_ids_differ_by_post_account_status_attempt_and_occurrence() -> None:
    key = outcome_key(ACCOUNT_A, post(account(status="posted", last_attempted_at=ATTEMPT)).accounts.states[0])
    base = make_event_id(POST_ID, key, 0)
    variants = {
        make_event_id("22222222-2222-2222-2222-222222222222", key, 0),
        make_event_id(POST_ID, key.replace(ACCOUNT_A, ACCOUNT_B), 0),
        make_event_id(POST_ID, key.replace("posted", "failed"), 0),
        make_event_id(POST_ID, key.replace(ATTEMPT, "2025-02-01T16:00:00.000Z"), 0),
        make_event_id(POST_ID, key, 1),
    }
    assert base == make_event_id(POST_ID, key, 0)
    assert base not in variants
    assert len(variants) == 5


def test_accounts_missing_from_an_answer_keep_their_last_seen_state() -> None:
    previous = watch(account(status="posted", last_attempted_at=ATTEMPT), account(ACCOUNT_B, status="scheduled"))
    current = post(account(ACCOUNT_B, status="scheduled"))

    detection = detect_transitions(previous, current, NOW)

    assert detection.accounts[ACCOUNT_A].status == "posted"
    assert detection.events == ()


def test_event_document_carries_the_post_summary() -> None:
    current = post(account(status="posted", last_attempted_at=ATTEMPT), status="posted", music_url=None)

    event = outcomes(detect_transitions(None, current, NOW).events)[0]

    assert event.schema_version == "1"
    assert event.detected_at == "2025-02-01T15:00:00.000Z"
    assert event.post.model_dump() == {
        "caption": "Holiday drops start Monday!",
        "status": "posted",
        "scheduled_at": "2025-02-01T15:00:00Z",
        "created_at": "2025-01-20T12:05:11.205Z",
        "media": {"type": "video", "url": "https://cdn.example.com/video.mp4"},
        "music_url": None,
        "external_id": None,
    }
    assert event.sns_attributes() == {
        "event_type": "post.account.posted",
        "workspace": "default",
        "status": "posted",
        "post_id": POST_ID,
        "account_id": ACCOUNT_A,
    }
    assert event.detail_type == "Post Account Posted"


observation_strategy = st.tuples(
    st.sampled_from(["scheduled", "pending", "retry", "posted", "failed", "void"]),
    st.sampled_from([None, "2025-02-01T15:00:00.000Z", "2025-02-01T16:00:00.000Z", "2025-02-01T17:00:00.000Z"]),
)


@given(st.lists(observation_strategy, min_size=1, max_size=12))
def test_any_observation_sequence_emits_once_per_entry_with_unique_ids(
    observations: list[tuple[str, str | None]],
) -> None:
    # Reference model: emit when the status enters posted/failed, or stays final at a new known attempt.
    expected = 0
    last: tuple[str, str | None] | None = None
    for status, attempt in observations:
        if status in FINAL and (
            last is None or last[0] != status or (last[1] is not None and attempt is not None and last[1] != attempt)
        ):
            expected += 1
        last = (status, attempt)

    stored = None
    ids: list[str] = []
    for status, attempt in observations:
        observed = account(status=status, last_attempted_at=attempt)
        detection = detect_transitions(stored, post(observed), NOW)
        assert detection == detect_transitions(stored, post(observed), NOW)  # pure and deterministic
        ids.extend(event.event_id for event in outcomes(detection.events))
        stored = watch(observed, occurrences=detection.occurrences)

    assert len(ids) == expected
    assert len(set(ids)) == len(ids)


def test_the_post_summary_carries_the_external_id_when_genviral_gives_one() -> None:
    with_key = detect_transitions(None, post(account(status="posted"), external_id="crm-42"), NOW).events
    without = detect_transitions(None, post(account(status="posted")), NOW).events
    # Every document carries the post summary: the transition and the completion alike.
    assert [(event.event_type, event.post.external_id) for event in with_key] == [
        ("post.account.posted", "crm-42"),
        ("post.completed", "crm-42"),
    ]
    assert {event.post.external_id for event in without} == {None}
