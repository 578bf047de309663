"""The outbox on the real adapters: DynamoDB (moto) round trips and the items older releases wrote,
the SQS dead-letter queue, and checks racing on one post (Genviral on loopback).

The outbox's rules themselves (failed and crashed publishes, parking, the end of a watch, unwatch)
are specified on the in-memory doubles in tests/unit/test_outbox_delivery_spec.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genviral_relay.aws.dead_letters import SqsDeadLetters
from genviral_relay.aws.dynamodb_items import event_to_item, watch_from_item, watch_to_item
from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.checking.check import PostCheck
from genviral_relay.checking.ports import PostPage, PostSource
from genviral_relay.clock import utc_now
from genviral_relay.errors import StateConflictError
from genviral_relay.genviral.client import GenviralClient, StaticToken
from genviral_relay.models.domain import Target, WatchRecord
from genviral_relay.models.events import RelayEvent
from genviral_relay.models.upstream import Post
from genviral_relay.relay import compose_relay
from local.emulator import GenviralEmulator
from local.stack import MotoStack
from tests.conftest import TOKEN
from tests.support.doubles import RecordingPublisher


@pytest.fixture
def store(stack: MotoStack) -> DynamoDbStore:
    return DynamoDbStore(
        stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=30), clock=utc_now
    )


@pytest.fixture
def publishers() -> dict[Target, RecordingPublisher]:
    return {"sns": RecordingPublisher("sns"), "eventbridge": RecordingPublisher("eventbridge")}


@pytest.fixture
def checker(
    emulator: GenviralEmulator,
    stack: MotoStack,
    store: DynamoDbStore,
    publishers: dict[Target, RecordingPublisher],
) -> PostCheck:
    return compose_relay(
        store=store,
        state=store,
        source=GenviralClient(emulator.base_url, StaticToken(TOKEN), sleep=lambda _: None),
        publishers=list(publishers.values()),
        dead_letters=SqsDeadLetters(stack.client("sqs"), stack.ref("EventsDLQ"), clock=utc_now),
    ).checker


def posted_post(emulator: GenviralEmulator, checker: PostCheck) -> tuple[str, str]:
    post_id = emulator.create_post(accounts=2, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    checker.check(post_id, trigger="register")
    account_id = emulator.account_ids(post_id)[0]
    emulator.mark_posted(post_id, account_id)
    return post_id, account_id


RACERS = 4


class BarrierSource(PostSource):
    """Genviral, answering only once every racer has asked: each racer has read the watch by then, so all
    of them try to commit the same transition on the same version."""

    def __init__(self, inner: GenviralClient, barrier: threading.Barrier) -> None:
        self._inner = inner
        self._barrier = barrier

    def get_post(self, post_id: str) -> Post:
        self._barrier.wait()
        return self._inner.get_post(post_id)

    def posts_in_status(self, status: str, *, limit: int) -> PostPage:
        return self._inner.posts_in_status(status, limit=limit)

    def posts_created(self, since: datetime, until: datetime, *, limit: int) -> PostPage:
        return self._inner.posts_created(since, until, limit=limit)


class CheckThenPutStore(DynamoDbStore):
    """A store whose save is not atomic: it reads the version, waits for every racer to have read it too, then
    writes unconditionally. What a store over a backend that does not serialise transactions does."""

    def __init__(self, stack: MotoStack, barrier: threading.Barrier) -> None:
        super().__init__(
            stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=30), clock=utc_now
        )
        self._barrier = barrier

    def save(self, record: WatchRecord, *, expected_version: int, new_events: Sequence[RelayEvent]) -> bool:
        stored = self.get(record.post_id)
        if (stored.version if stored else 0) != expected_version:
            raise StateConflictError(record.post_id)
        self._barrier.wait()
        self._client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self._table, "Item": watch_to_item(record)}},
                *({"Put": {"TableName": self._table, "Item": event_to_item(event, 0)}} for event in new_events),
            ]
        )
        return True


def race(
    emulator: GenviralEmulator, stack: MotoStack, store: DynamoDbStore, checker: PostCheck
) -> tuple[list[str], dict[Target, RecordingPublisher], list[str]]:
    """RACERS checks of one post with one new transition, all reading the watch before any commits:
    (their results, what each target received, the event items stored for the post)."""
    post_id, _ = posted_post(emulator, checker)
    answering = threading.Barrier(RACERS)
    publishers = {"sns": RecordingPublisher("sns"), "eventbridge": RecordingPublisher("eventbridge")}
    racer = compose_relay(
        store=store,
        state=store,
        source=BarrierSource(GenviralClient(emulator.base_url, StaticToken(TOKEN), sleep=lambda _: None), answering),
        publishers=list(publishers.values()),
        dead_letters=SqsDeadLetters(stack.client("sqs"), stack.ref("EventsDLQ"), clock=utc_now),
    ).checker
    results: list[str] = []
    lock = threading.Lock()

    def check() -> None:
        result = racer.check(post_id).result
        with lock:
            results.append(result)

    threads = [threading.Thread(target=check) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = stack.client("dynamodb").query(
        TableName=stack.ref("StateTable"),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :event)",
        ExpressionAttributeValues={":pk": {"S": post_id}, ":event": {"S": "EVENT#"}},
    )["Items"]
    return sorted(results), publishers, [item["sk"]["S"] for item in stored]


def assert_one_commit(results: list[str], publishers: dict[Target, RecordingPublisher], stored: list[str]) -> None:
    # One racer commits the transition; every other one loses the conditional write and publishes nothing.
    assert results == ["changed", *["conflict"] * (RACERS - 1)]
    assert len(stored) == 1  # the registration's accounts were not final: one transition, one event item
    for target in ("sns", "eventbridge"):
        assert [event.event_id for event in publishers[target].published] == [stored[0].removeprefix("EVENT#")]


def test_concurrent_checks_commit_one_transition_once(
    emulator: GenviralEmulator, stack: MotoStack, store: DynamoDbStore, checker: PostCheck
) -> None:
    assert_one_commit(*race(emulator, stack, store, checker))


def test_the_one_commit_assertion_fails_when_the_store_is_not_atomic(
    emulator: GenviralEmulator, stack: MotoStack, checker: PostCheck
) -> None:
    """The assertion above can fail: on a save that checks the version and then writes, every racer commits."""
    racy = CheckThenPutStore(stack, threading.Barrier(RACERS))
    results, publishers, stored = race(emulator, stack, racy, checker)

    assert results == ["changed"] * RACERS
    with pytest.raises(AssertionError):
        assert_one_commit(results, publishers, stored)


def test_a_watch_written_before_changed_at_existed_reads_its_last_write_time() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    record = WatchRecord(post_id="11111111-1111-1111-1111-111111111111", version=1, registered_at=now, changed_at=now)
    item: dict[str, Any] = dict(watch_to_item(record))
    item["checked_at"] = item.pop("changed_at")  # as 0.2.0 stored it

    assert watch_from_item(item).changed_at == now


def test_store_round_trips_a_watch_and_rejects_a_stale_version(store: DynamoDbStore) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    record = WatchRecord(
        post_id="11111111-1111-1111-1111-111111111111",
        version=1,
        post_status="partial",
        scheduled_at="2026-01-02T03:00:00Z",
        occurrences={"a|posted|x": 1},
        next_check_at=now,
        settled_next_check_at=now + timedelta(minutes=5),
        registered_at=now,
        changed_at=now,
    )
    store.save(record, expected_version=0, new_events=())

    assert store.get(record.post_id) == record
    with pytest.raises(StateConflictError):
        store.save(record, expected_version=0, new_events=())
    with pytest.raises(StateConflictError):
        store.save(record.model_copy(update={"version": 3}), expected_version=2, new_events=())
    assert store.get(record.post_id) == record


def dead_letters(stack: MotoStack) -> list[dict[str, Any]]:
    answer = stack.client("sqs").receive_message(QueueUrl=stack.ref("EventsDLQ"), MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in answer.get("Messages", [])]


def test_an_event_refused_for_good_is_parked_on_the_sqs_queue_with_its_reason_and_leaves_the_outbox(
    emulator: GenviralEmulator,
    checker: PostCheck,
    stack: MotoStack,
    store: DynamoDbStore,
    publishers: dict[Target, RecordingPublisher],
) -> None:
    post_id, _ = posted_post(emulator, checker)
    publishers["eventbridge"].refusing = True

    outcome = checker.check(post_id)

    (parked,) = dead_letters(stack)
    assert parked["target"] == "eventbridge"
    assert "MalformedDetail" in parked["reason"]
    assert parked["event"] == outcome.events[0].model_dump(mode="json")
    assert TOKEN not in json.dumps(parked)
    assert [e.event_id for e in publishers["sns"].published] == [outcome.events[0].event_id]
    stored = store.get(post_id)
    assert stored is not None
    assert stored.outbox == frozenset()
