"""The outbox: state and events committed together, published after, acknowledged last.

Runs the real check against Genviral on loopback and DynamoDB on moto, with publishers that
fail or crash on purpose.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genviral_relay.aws.dead_letters import SqsDeadLetters
from genviral_relay.aws.dynamodb_store import DynamoDbWatchStore, watch_from_item, watch_to_item
from genviral_relay.cli.deployment import StaticToken
from genviral_relay.clock import utc_now
from genviral_relay.errors import StateConflictError
from genviral_relay.genviral.client import GenviralClient
from genviral_relay.logic.check_post import PostChecker
from genviral_relay.logic.ports import EventPublisher, PublishFailure, PublishResult
from genviral_relay.models.domain import Target, WatchRecord
from genviral_relay.models.events import RelayEvent
from local.emulator import GenviralEmulator
from local.stack import LocalStack
from tests.conftest import TOKEN


class RecordingPublisher(EventPublisher):
    """Publishes by recording; can be told to fail every event or to crash mid-call."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.published: list[RelayEvent] = []
        self.failing = False
        self.refusing = False
        self.crashing = False

    def publish(self, events: Sequence[RelayEvent]) -> PublishResult:
        if self.crashing:
            raise SystemExit("process killed while publishing")
        if self.failing:
            return PublishResult(failed={e.event_id: PublishFailure("ThrottlingException", True) for e in events})
        if self.refusing:
            return PublishResult(failed={e.event_id: PublishFailure("MalformedDetail: no", False) for e in events})
        self.published.extend(events)
        return PublishResult(delivered={event.event_id for event in events})


@pytest.fixture
def store(stack: LocalStack) -> DynamoDbWatchStore:
    return DynamoDbWatchStore(
        stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=30), clock=utc_now
    )


@pytest.fixture
def publishers() -> dict[Target, RecordingPublisher]:
    return {"sns": RecordingPublisher("sns"), "eventbridge": RecordingPublisher("eventbridge")}


def make_checker(
    emulator: GenviralEmulator,
    stack: LocalStack,
    store: DynamoDbWatchStore,
    publishers: list[RecordingPublisher],
    *,
    dead_letter_queue: str | None = None,
) -> PostChecker:
    return PostChecker(
        store=store,
        source=GenviralClient(emulator.base_url, StaticToken(TOKEN), sleep=lambda _: None),
        publishers=publishers,
        dead_letters=SqsDeadLetters(stack.client("sqs"), dead_letter_queue or stack.ref("EventsDLQ"), clock=utc_now),
        clock=utc_now,
    )


@pytest.fixture
def checker(
    emulator: GenviralEmulator,
    stack: LocalStack,
    store: DynamoDbWatchStore,
    publishers: dict[Target, RecordingPublisher],
) -> PostChecker:
    return make_checker(emulator, stack, store, list(publishers.values()))


def posted_post(emulator: GenviralEmulator, checker: PostChecker) -> tuple[str, str]:
    post_id = emulator.create_post(accounts=2, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    checker.check(post_id, trigger="register")
    account_id = emulator.account_ids(post_id)[0]
    emulator.mark_posted(post_id, account_id)
    return post_id, account_id


def test_failed_publish_keeps_events_pending_and_the_next_check_sends_the_same_ids(
    emulator: GenviralEmulator,
    checker: PostChecker,
    store: DynamoDbWatchStore,
    publishers: dict[Target, RecordingPublisher],
) -> None:
    post_id, _ = posted_post(emulator, checker)
    publishers["eventbridge"].failing = True

    first = checker.check(post_id)

    assert first.undelivered == 1
    assert [e.event_id for e in publishers["sns"].published] == [first.events[0].event_id]
    pending = store.get(post_id)
    assert pending is not None
    assert {(entry.target, entry.event_id) for entry in pending.outbox} == {("eventbridge", first.events[0].event_id)}
    assert pending.next_check_at is not None
    assert pending.next_check_at <= utc_now() + checker._policy.outbox_retry_delay

    publishers["eventbridge"].failing = False
    second = checker.check(post_id)

    assert second.events == ()  # no new transition...
    assert [e.event_id for e in publishers["eventbridge"].published] == [first.events[0].event_id]  # ...same id
    assert [e.event_id for e in publishers["sns"].published] == [first.events[0].event_id]  # not sent twice
    settled = store.get(post_id)
    assert settled is not None
    assert settled.outbox == frozenset()


def test_crash_after_commit_before_publish_is_repaired_with_the_same_ids(
    emulator: GenviralEmulator,
    checker: PostChecker,
    store: DynamoDbWatchStore,
    publishers: dict[Target, RecordingPublisher],
) -> None:
    post_id, account_id = posted_post(emulator, checker)
    publishers["sns"].crashing = True

    with pytest.raises(SystemExit):
        checker.check(post_id)

    crashed = store.get(post_id)
    assert crashed is not None
    assert len(crashed.outbox) == 2  # committed, nothing acknowledged
    publishers["sns"].crashing = False
    checker.check(post_id)

    ids = {event.event_id for event in publishers["sns"].published + publishers["eventbridge"].published}
    assert len(ids) == 1
    assert len(publishers["sns"].published) == len(publishers["eventbridge"].published) == 1
    assert publishers["sns"].published[0].account_id == account_id


def test_pending_events_survive_the_end_of_the_watch(
    emulator: GenviralEmulator,
    checker: PostChecker,
    store: DynamoDbWatchStore,
    publishers: dict[Target, RecordingPublisher],
) -> None:
    # Given every account finished (the watch ends) while a target is down
    post_id, _ = posted_post(emulator, checker)
    emulator.mark_posted(post_id, emulator.account_ids(post_id)[1])
    publishers["sns"].failing = True
    checker.check(post_id)
    ended = store.get(post_id)
    assert ended is not None
    assert not ended.watching
    assert ended.outbox
    assert post_id in set(store.due_post_ids(utc_now() + timedelta(minutes=5)))  # still due, for the outbox
    calls = emulator.calls(post_id)

    # When the target is back and the poller comes round
    publishers["sns"].failing = False
    outcome = checker.check(post_id)

    # Then the events are published without asking Genviral again, and the watch leaves the due index
    assert outcome.result == "flushed"
    assert emulator.calls(post_id) == calls
    assert len(publishers["sns"].published) == 2
    assert post_id not in set(store.due_post_ids(utc_now() + timedelta(days=365)))


def test_unwatch_refuses_while_events_are_pending(
    emulator: GenviralEmulator, checker: PostChecker, publishers: dict[Target, RecordingPublisher]
) -> None:
    from genviral_relay.logic.check_post import OutboxNotEmptyError

    post_id, _ = posted_post(emulator, checker)
    publishers["sns"].failing = True
    checker.check(post_id)

    with pytest.raises(OutboxNotEmptyError):
        checker.unwatch(post_id)
    publishers["sns"].failing = False
    checker.unwatch(post_id)
    assert len(publishers["sns"].published) == 1


def test_two_concurrent_checks_commit_one_set_of_events(
    emulator: GenviralEmulator, checker: PostChecker, publishers: dict[Target, RecordingPublisher]
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


def test_a_watch_written_before_changed_at_existed_reads_its_last_write_time(store: DynamoDbWatchStore) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    record = WatchRecord(post_id="11111111-1111-1111-1111-111111111111", version=1, registered_at=now, changed_at=now)
    item: dict[str, Any] = dict(watch_to_item(record))
    item["checked_at"] = item.pop("changed_at")  # as 0.2.0 stored it

    assert watch_from_item(item).changed_at == now


def test_store_round_trips_a_watch_and_rejects_a_stale_version(store: DynamoDbWatchStore) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    record = WatchRecord(
        post_id="11111111-1111-1111-1111-111111111111",
        version=1,
        post_status="partial",
        scheduled_at="2026-01-02T03:00:00Z",
        emitted={"a|posted|x": 1},
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


def dead_letters(stack: LocalStack) -> list[dict[str, Any]]:
    answer = stack.client("sqs").receive_message(QueueUrl=stack.ref("EventsDLQ"), MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in answer.get("Messages", [])]


def test_an_event_refused_for_good_is_parked_with_its_reason_and_leaves_the_outbox(
    emulator: GenviralEmulator,
    checker: PostChecker,
    stack: LocalStack,
    store: DynamoDbWatchStore,
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


def test_an_event_stays_in_the_outbox_when_even_parking_fails(
    emulator: GenviralEmulator,
    store: DynamoDbWatchStore,
    stack: LocalStack,
    publishers: dict[Target, RecordingPublisher],
) -> None:
    missing_queue = stack.ref("EventsDLQ") + "-gone"
    checker = make_checker(emulator, stack, store, list(publishers.values()), dead_letter_queue=missing_queue)
    post_id, _ = posted_post(emulator, checker)
    publishers["sns"].refusing = True

    outcome = checker.check(post_id)

    assert outcome.undelivered == 1
    stored = store.get(post_id)
    assert stored is not None
    assert {entry.target for entry in stored.outbox} == {"sns"}


def test_events_for_a_target_switched_off_are_parked_not_dropped(
    emulator: GenviralEmulator,
    checker: PostChecker,
    stack: LocalStack,
    store: DynamoDbWatchStore,
    publishers: dict[Target, RecordingPublisher],
) -> None:
    post_id, _ = posted_post(emulator, checker)
    publishers["sns"].failing = True
    checker.check(post_id)
    sns_only_off = make_checker(emulator, stack, store, [publishers["eventbridge"]])

    sns_only_off.check(post_id)

    (parked,) = dead_letters(stack)
    assert parked["target"] == "sns"
    assert "no longer configured" in parked["reason"]
