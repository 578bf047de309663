"""The DynamoDB store (on moto) and the in-memory store the benchmark uses behave alike and make
the same DynamoDB calls for the same work."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.clock import utc_now
from genviral_relay.errors import StateConflictError
from genviral_relay.logic.ports import EventSelection, WatchStore
from genviral_relay.logic.transitions import detect_transitions
from genviral_relay.models.domain import CreatedWindow, DiscoverState, PendingDelivery, WatchRecord
from local.counting import CountingClient
from local.doubles import InMemoryStore
from local.stack import LocalStack
from tests.builders import ACCOUNT_A, ACCOUNT_B, account, post

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POSTS = [f"00000000-0000-4000-8000-{index:012d}" for index in range(1, 4)]


@pytest.fixture(params=["dynamodb", "memory"])
def store_and_calls(request: pytest.FixtureRequest, stack: LocalStack) -> tuple[WatchStore, Counter[str]]:
    if request.param == "memory":
        memory = InMemoryStore()
        return memory, memory.calls
    calls: Counter[str] = Counter()
    client = CountingClient(stack.client("dynamodb"), calls)
    return DynamoDbStore(client, stack.ref("StateTable"), event_retention=timedelta(days=1), clock=utc_now), calls


def watch(post_id: str, version: int, **fields: object) -> WatchRecord:
    return WatchRecord(post_id=post_id, version=version, registered_at=NOW, **fields)  # type: ignore[arg-type]


def test_store_contract(store_and_calls: tuple[WatchStore, Counter[str]]) -> None:
    store, calls = store_and_calls
    events = detect_transitions(None, post(account(status="posted"), post_id=POSTS[0]), NOW).events
    outbox = frozenset(PendingDelivery(event_id=e.event_id, target=t) for e in events for t in ("sns", "eventbridge"))

    # Registrations, one due now, one due later, one with pending events
    store.save(watch(POSTS[0], 1, next_check_at=NOW, outbox=outbox, settled_next_check_at=None), expected_version=0,
               new_events=events)  # fmt: skip
    store.save(watch(POSTS[1], 1, next_check_at=NOW + timedelta(hours=1)), expected_version=0, new_events=())
    store.save(watch(POSTS[2], 1, next_check_at=NOW - timedelta(minutes=5)), expected_version=0, new_events=())
    with pytest.raises(StateConflictError):
        store.save(watch(POSTS[1], 1), expected_version=0, new_events=())

    assert set(store.get_many([*POSTS, POSTS[0], "99999999-0000-4000-8000-000000000000"])) == set(POSTS)
    assert list(store.due_post_ids(NOW)) == [POSTS[2], POSTS[0]]
    assert [e.event_id for e in store.load_events(POSTS[0], [events[0].event_id, "missing"])] == [events[0].event_id]

    # A partial acknowledgement keeps the rest; a settle on a stale version only takes deliveries off
    first, second = sorted(outbox, key=lambda entry: entry.target)
    store.acknowledge(POSTS[0], [first])
    store.acknowledge(POSTS[0], [second], settle_version=1, settled_next_check_at=None)
    after = store.get(POSTS[0])
    assert after is not None
    assert (after.outbox, after.version, after.next_check_at) == (frozenset(), 3, NOW)

    # A settle on the current version restores the schedule
    store.save(after.model_copy(update={"version": 4, "outbox": outbox}), expected_version=3, new_events=())
    store.acknowledge(POSTS[0], outbox, settle_version=4, settled_next_check_at=None)
    settled = store.get(POSTS[0])
    assert settled is not None
    assert settled.next_check_at is None
    assert POSTS[0] not in list(store.due_post_ids(NOW + timedelta(days=1)))

    with pytest.raises(StateConflictError):
        store.delete(POSTS[1], expected_version=7)
    store.delete(POSTS[1], expected_version=1)
    assert store.get(POSTS[1]) is None

    # A watch the retry sweep covers is due only when its window ends
    window_ends = NOW + timedelta(hours=20)
    store.save(watch(POSTS[1], 1, next_check_at=window_ends, awaiting_retry=True), expected_version=0, new_events=())
    assert list(store.awaiting_retry(NOW, limit=1)) == [POSTS[1]]
    assert POSTS[1] not in list(store.due_post_ids(NOW))
    assert POSTS[1] in list(store.due_post_ids(window_ends))
    assert list(store.awaiting_retry(window_ends)) == []

    store.pause_genviral(until=NOW + timedelta(minutes=5), reason="402")
    assert store.genviral_pause(NOW) == "402"
    assert store.genviral_pause(NOW + timedelta(minutes=6)) is None

    assert calls == Counter(
        {
            "transact_write_items": 6,
            "get_item": 5,
            "batch_get_item": 2,
            "query": 22,
            "update_item": 4,
            "delete_item": 2,
            "put_item": 1,
        }
    )


def test_discover_state_is_saved_once_per_version(store_and_calls: tuple[WatchStore, Counter[str]]) -> None:
    store, calls = store_and_calls
    assert store.discover_state() is None

    walking = DiscoverState(
        version=1,
        baseline_before=NOW,
        walk_started_at=NOW,
        pending=(CreatedWindow(since=NOW - timedelta(days=1), until=NOW),),
    )
    store.save_discover_state(walking, expected_version=0)
    with pytest.raises(StateConflictError):
        store.save_discover_state(walking, expected_version=0)
    assert store.discover_state() == walking

    walked = walking.model_copy(update={"version": 2, "pending": (), "walk_started_at": None, "listed_until": NOW})
    with pytest.raises(StateConflictError):
        store.save_discover_state(walked.model_copy(update={"version": 3}), expected_version=2)
    store.save_discover_state(walked, expected_version=1)
    assert store.discover_state() == walked
    # The watches are not touched: the state is not a watch, and nothing is due
    assert list(store.due_post_ids(NOW + timedelta(days=365))) == []
    assert calls == Counter({"get_item": 3, "put_item": 4, "query": 5})


def test_operator_reads_list_watches_and_select_stored_events(
    store_and_calls: tuple[WatchStore, Counter[str]],
) -> None:
    store, calls = store_and_calls
    early = detect_transitions(None, post(account(status="posted"), post_id=POSTS[0]), NOW).events
    later = detect_transitions(
        None,
        post(account(ACCOUNT_A, status="posted"), account(ACCOUNT_B, status="failed"), post_id=POSTS[1]),
        NOW + timedelta(hours=1),
    ).events
    store.save(watch(POSTS[0], 1), expected_version=0, new_events=early)
    store.save(watch(POSTS[1], 1, watching=False, ended_reason="finished"), expected_version=0, new_events=later)
    store.pause_genviral(until=NOW, reason="not a watch")
    calls.clear()

    listed = {record.post_id: record for record in store.watches()}
    assert set(listed) == {POSTS[0], POSTS[1]}
    assert listed[POSTS[1]].ended_reason == "finished"

    def ids(selection: EventSelection) -> list[str]:
        return [event.event_id for event in store.find_events(selection)]

    every = [event.event_id for event in (*early, *later)]
    assert ids(EventSelection(post_id=POSTS[1])) == [
        event.event_id for event in sorted(later, key=lambda e: e.event_id)
    ]
    assert ids(EventSelection(event_ids=frozenset({later[0].event_id, "no-such-event"}))) == [later[0].event_id]
    assert ids(EventSelection(post_id=POSTS[0], event_ids=frozenset({later[0].event_id}))) == []
    assert ids(EventSelection(since=NOW + timedelta(minutes=30))) == ids(EventSelection(post_id=POSTS[1]))
    assert ids(EventSelection(until=NOW + timedelta(hours=1))) == [early[0].event_id]
    assert ids(EventSelection(since=NOW, until=NOW + timedelta(hours=2))) == [
        every[0],
        *ids(EventSelection(post_id=POSTS[1])),
    ]
    assert ids(EventSelection(since=NOW + timedelta(hours=2))) == []
    assert calls == Counter({"scan": 6, "query": 4})
