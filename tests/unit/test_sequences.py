"""`sequence` on account documents (`rules/numbering.py`): 1, 2, 3, ... per (post, account) in the order the relay
made them, the same number for the same event whatever is run again."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.events import AccountEvent
from genviral_relay.models.upstream import Post
from genviral_relay.rules.transitions import Detection, detect_transitions
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, post, watch
from tests.unit.world import World

DELAYED_AFTER = timedelta(minutes=15)


def stored_after(previous: WatchRecord | None, answer: Post, detection: Detection) -> WatchRecord:
    """The watch a check commits with `detection`."""
    return WatchRecord(
        post_id=POST_ID,
        version=(previous.version if previous else 0) + 1,
        post_status=answer.status,
        scheduled_at=answer.scheduled_at,
        accounts=detection.accounts,
        occurrences=detection.occurrences,
        registered_at=NOW,
    )


def account_documents(detection: Detection) -> list[AccountEvent]:
    return [event for event in detection.events if isinstance(event, AccountEvent)]


answer_of_one_account = st.tuples(
    st.sampled_from(["scheduled", "pending", "retry", "posted", "failed"]),
    st.sampled_from([None, "2025-02-01T15:00:05.000Z", "2025-02-01T16:00:05.000Z"]),  # last_attempted_at
    st.sampled_from([None, "https://x.example/1"]),  # published_url (posted only)
)
run_of_answers = st.lists(
    st.tuples(answer_of_one_account, answer_of_one_account, st.integers(min_value=0, max_value=40)),
    min_size=1,
    max_size=12,
)


def answer(a: tuple[str, str | None, str | None], b: tuple[str, str | None, str | None]) -> Post:
    def state(account_id: str, seen: tuple[str, str | None, str | None]) -> dict[str, Any]:
        status, attempt, url = seen
        return account(
            account_id, status=status, last_attempted_at=attempt, published_url=url if status == "posted" else None
        )

    return post(state(ACCOUNT_A, a), state(ACCOUNT_B, b))


@given(run_of_answers)
def test_each_accounts_documents_are_numbered_one_to_n_and_a_rerun_gives_the_same_documents(
    answers: list[tuple[Any, Any, int]],
) -> None:
    stored: WatchRecord | None = None
    at: datetime = NOW
    numbers: dict[str, list[int]] = defaultdict(list)
    for a, b, minutes in answers:
        at += timedelta(minutes=minutes)  # time passes: delays become reportable
        current = answer(a, b)
        detection = detect_transitions(stored, current, at, delayed_after=DELAYED_AFTER)
        # A crash before the commit: the next check runs the same detection on the same stored watch.
        assert detect_transitions(stored, current, at, delayed_after=DELAYED_AFTER) == detection
        for event in account_documents(detection):
            assert event.sequence is not None
            numbers[event.account_id].append(event.sequence)
        stored = stored_after(stored, current, detection)

    for account_id, taken in numbers.items():
        assert taken == list(range(1, len(taken) + 1)), account_id


def test_the_account_keeps_its_last_number_with_its_state() -> None:
    first = detect_transitions(None, post(account(status="failed", last_attempted_at="2025-02-01T15:00:05.000Z")), NOW)
    assert [event.sequence for event in account_documents(first)] == [1]
    assert first.accounts[ACCOUNT_A].sequence == 1

    later = post(account(status="posted", last_attempted_at="2025-02-01T16:00:05.000Z", published_url="https://x/1"))
    second = detect_transitions(stored_after(None, later, first), later, NOW + timedelta(hours=1))

    assert [event.sequence for event in account_documents(second)] == [2]
    assert second.accounts[ACCOUNT_A].sequence == 2


def test_a_watch_stored_by_0_4_numbers_on_from_the_accounts_earlier_outcomes_and_delays() -> None:
    # Given a 0.4 watch: ACCOUNT_A failed once and was reported delayed once, ACCOUNT_B posted; no numbers kept
    occurrences = {
        f"{ACCOUNT_A}|failed|2025-02-01T15:00:05.000Z": 1,
        f"{ACCOUNT_A}|delayed|2025-02-01T15:00:00.000Z": 1,
        f"{ACCOUNT_B}|posted|2025-02-01T15:00:05.000Z": 1,
        "completed|0123456789abcdef": 1,
    }
    stored = watch(
        account(status="retry", last_attempted_at="2025-02-01T15:00:05.000Z"),
        account(ACCOUNT_B, status="posted", last_attempted_at="2025-02-01T15:00:05.000Z", published_url="https://x/b"),
        occurrences=occurrences,
    )
    assert stored.accounts[ACCOUNT_A].sequence is None

    # When ACCOUNT_A fails again
    again = post(
        account(status="failed", last_attempted_at="2025-02-01T16:00:05.000Z"),
        account(ACCOUNT_B, status="posted", last_attempted_at="2025-02-01T15:00:05.000Z", published_url="https://x/b"),
    )
    detection = detect_transitions(stored, again, NOW + timedelta(hours=1))

    # Then its number follows its two earlier documents; ACCOUNT_B's state is untouched
    assert [(event.account_id, event.sequence) for event in account_documents(detection)] == [(ACCOUNT_A, 3)]
    assert detection.accounts[ACCOUNT_B].sequence is None


def test_an_upgraded_watch_with_nothing_new_is_not_a_change() -> None:
    # Numbers are only written with a document: reading a 0.4 watch does not make every check write.
    states = [account(status="posted", last_attempted_at="2025-02-01T15:00:05.000Z", published_url="https://x/1")]
    stored = watch(*states, occurrences={f"{ACCOUNT_A}|posted|2025-02-01T15:00:05.000Z": 1}).model_copy(
        update={"post_status": "scheduled"}
    )

    assert not detect_transitions(stored, post(*states), NOW).state_changed


def test_a_silent_baseline_takes_no_number(world: World) -> None:
    # Given a post recorded silently (discover mode's baseline) with ACCOUNT_A failed
    failed = account(status="failed", last_attempted_at="2025-02-01T15:00:05.000Z")
    world.source.put(post(failed, account(ACCOUNT_B, status="pending")))
    world.check.apply_answer(post(failed, account(ACCOUNT_B, status="pending")), None, silent=True)
    assert world.stored().accounts[ACCOUNT_A].sequence == 0

    # When the account is retried and fails again, and ACCOUNT_B posts
    world.later(timedelta(minutes=5))
    world.source.put(
        post(
            account(status="failed", last_attempted_at="2025-02-01T15:30:05.000Z"),
            account(
                ACCOUNT_B, status="posted", last_attempted_at="2025-02-01T15:30:05.000Z", published_url="https://x"
            ),
        )
    )
    outcome = world.check.check(POST_ID)

    # Then each account's first published document is its number 1
    assert sorted((event.account_id, event.sequence) for event in account_documents_of(outcome.events)) == [
        (ACCOUNT_A, 1),
        (ACCOUNT_B, 1),
    ]


def account_documents_of(events: Any) -> list[AccountEvent]:
    return [event for event in events if isinstance(event, AccountEvent)]


def test_the_outbox_republishes_the_stored_document_with_its_number(world: World) -> None:
    # Given a check that committed a posting but whose publishing failed
    world.register(post(account(status="pending")))
    world.publishers["sns"].failing = True
    world.later(timedelta(minutes=1))
    world.source.put(post(account(status="posted", last_attempted_at="2025-02-01T15:01:05.000Z", published_url="u")))
    first = world.check.check(POST_ID)
    (posting,) = account_documents_of(first.events)
    assert world.publishers["sns"].published == []

    # When a later check republishes it (Genviral's answer unchanged)
    world.publishers["sns"].failing = False
    world.later(timedelta(minutes=3))
    world.check.check(POST_ID)

    # Then SNS gets the very document the check made, number included
    (republished,) = account_documents_of(world.publishers["sns"].published)
    assert republished == posting
    assert republished.sequence == 1
