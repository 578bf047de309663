"""The outbox on the real adapters: DynamoDB (moto) round trips and the items older releases wrote,
the SQS dead-letter queue, and checks racing on one post (Genviral on loopback).

The outbox's rules themselves (failed and crashed publishes, parking, the end of a watch, unwatch)
are specified on the in-memory doubles in tests/unit/test_outbox_delivery_spec.py.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genviral_relay.aws.dead_letters import SqsDeadLetters
from genviral_relay.aws.dynamodb_store import DynamoDbStore, watch_from_item, watch_to_item
from genviral_relay.clock import utc_now
from genviral_relay.errors import StateConflictError
from genviral_relay.factories import compose_check_path
from genviral_relay.genviral.client import GenviralClient, StaticToken
from genviral_relay.logic.check import PostCheck
from genviral_relay.models.domain import Target, WatchRecord
from local.doubles import RecordingPublisher
from local.emulator import GenviralEmulator
from local.stack import MotoStack
from tests.conftest import TOKEN


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
    return compose_check_path(
        store=store,
        state=store,
        source=GenviralClient(emulator.base_url, StaticToken(TOKEN), sleep=lambda _: None),
        publishers=list(publishers.values()),
        dead_letters=SqsDeadLetters(stack.client("sqs"), stack.ref("EventsDLQ"), clock=utc_now),
    ).check


def posted_post(emulator: GenviralEmulator, checker: PostCheck) -> tuple[str, str]:
    post_id = emulator.create_post(accounts=2, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    checker.check(post_id, trigger="register")
    account_id = emulator.account_ids(post_id)[0]
    emulator.mark_posted(post_id, account_id)
    return post_id, account_id


def test_two_concurrent_checks_commit_one_set_of_events(
    emulator: GenviralEmulator, checker: PostCheck, publishers: dict[Target, RecordingPublisher]
) -> None:
    post_id, _ = posted_post(emulator, checker)
    barrier = threading.Barrier(4)
    results: list[str] = []

    def check() -> None:
        barrier.wait()
        results.append(checker.check(post_id).result)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # moto's conditional transaction is not atomic across threads (DynamoDB's is), so more than one
    # check may commit here; what must hold either way is one id per transition on each target.
    assert "changed" in results
    assert len({event.event_id for event in publishers["sns"].published}) == 1
    assert len({event.event_id for event in publishers["eventbridge"].published}) == 1


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
