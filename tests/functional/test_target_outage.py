"""A target down as a whole, through the real handlers on moto: the SNS topic deleted and recreated,
the EventBridge bus deleted and recreated.

While the target is missing every check keeps its events in the outbox (nothing is parked in
EventsDLQ), the retries back off and `PendingOutboxAge` shows the wait; once the target is back
under the same name (so the same ARN) the next retry publishes the same documents, under the same
ids, exactly once each, with nothing to redrive.

How moto answers, and how AWS does:
- `PublishBatch` on a deleted topic: moto raises `NotFound` ("Topic does not exist") for the call,
  as SNS does, and deletes the topic's subscriptions with it, as SNS does (the subscriber
  resubscribes to the new topic here, as one would).
- `PutEvents` on a deleted bus: moto raises `ResourceNotFoundException` for the call. EventBridge
  itself has been reported (aws/aws-sdk#186, aws/aws-cli#9186, and LocalStack copies it) to answer
  200 with an `EventId` per entry for a custom bus that does not exist: the events are lost there
  and no publisher can tell. This test covers the relay's side of a refused call; it cannot make
  AWS report a missing bus. Deleting a bus in AWS also requires deleting its rules first: the
  set-up does the same here (moto would drop them with the bus).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay import factories
from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.clock import utc_now
from genviral_relay.models.domain import Target, WatchRecord
from genviral_relay.observability import Metric
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import SYNC, SecretSentinel
from tests.functional.subscribers import Received, drain
from tests.functional.test_auth_faults import relay_lines
from tests.functional.test_observability import emitted
from tests.functional.test_relay_flow import publishing_now
from tests.support.doubles import SteppingClock

KEPT = "Publish failed; kept for the next check"


def delete_topic(stack: MotoStack) -> None:
    stack.client("sns").delete_topic(TopicArn=stack.ref("EventsTopic"))


def recreate_topic(stack: MotoStack) -> None:
    arn = stack.client("sns").create_topic(Name=stack.resolver.attributes[("EventsTopic", "TopicName")])["TopicArn"]
    assert arn == stack.ref("EventsTopic")  # same name, same ARN: the functions' configuration still holds
    stack.subscribe_to_topic("sns")  # the old subscriptions went with the old topic


def delete_bus(stack: MotoStack) -> None:
    events, bus = stack.client("events"), stack.ref("EventBus")
    for rule in events.list_rules(EventBusName=bus)["Rules"]:  # as AWS requires before deleting a bus
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=[target["Id"] for target in targets])
        events.delete_rule(Name=rule["Name"], EventBusName=bus)
    events.delete_event_bus(Name=bus)


def recreate_bus(stack: MotoStack) -> None:
    arn = stack.client("events").create_event_bus(Name=stack.ref("EventBus"))["EventBusArn"]
    assert arn == stack.resolver.attributes[("EventBus", "Arn")]
    stack.subscribe_to_bus("eventbridge", event_pattern={"source": ["genviral.relay"]})


Outage = tuple[Target, Callable[[MotoStack], None], Callable[[MotoStack], None], str]
OUTAGES = [
    pytest.param(("sns", delete_topic, recreate_topic, "NotFound"), id="topic"),
    pytest.param(("eventbridge", delete_bus, recreate_bus, "ResourceNotFoundException"), id="bus"),
]


class Collected:
    """What each target's subscriber received so far, across drains."""

    def __init__(self) -> None:
        self.documents: dict[Target, list[dict[str, Any]]] = {"sns": [], "eventbridge": []}

    def add(self, received: Received) -> None:
        self.documents["sns"] += received.sns_documents()
        self.documents["eventbridge"] += received.eventbridge_documents()

    def ids(self, target: Target) -> list[str]:
        return sorted(document["event_id"] for document in self.documents[target])


def dead_lettered(stack: MotoStack) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.ref("EventsDLQ"), AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@pytest.mark.parametrize("outage", OUTAGES)
def test_a_target_deleted_then_recreated_gets_the_same_ids_once_each_and_nothing_is_parked(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    capsys: pytest.CaptureFixture[str],
    secret_sentinel: SecretSentinel,
    monkeypatch: pytest.MonkeyPatch,
    outage: Outage,
) -> None:
    down, break_target, restore_target, code = outage
    up: Target = "eventbridge" if down == "sns" else "sns"
    clock = SteppingClock(utc_now().replace(microsecond=0))  # the relay's timestamps have milliseconds
    monkeypatch.setattr(factories, "utc_now", clock)  # the clock every function's use cases get
    store = DynamoDbStore(
        stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=30), clock=clock
    )
    collected = Collected()

    def stored() -> WatchRecord:
        watch = store.get(post_id)
        assert watch is not None
        return watch

    def tick_at_next_retry() -> None:
        due = stored().next_check_at
        assert due is not None
        clock.now = max(clock.now, due)
        assert runner.tick(clock.now) == {"enqueued": 1 + SYNC}
        runner.drain_work_queue()
        collected.add(drain(stack))

    # Given a watched post whose two accounts Genviral has since posted, and the target gone
    post_id, accounts = publishing_now(emulator, accounts=2)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    for account_id in accounts:
        emulator.mark_posted(post_id, account_id)
    break_target(stack)
    capsys.readouterr()
    secret_sentinel.clear()

    # When the tick's check detects both transitions, and with them the post's completion
    assert runner.tick(clock.now) == {"enqueued": 1 + SYNC}
    runner.drain_work_queue()
    collected.add(drain(stack))

    # Then the other target has them, the missing one's are kept in the outbox, and nothing is parked
    detected = collected.ids(up)
    assert len(detected) == 3  # two transitions and the completion
    assert sorted(d["event_type"] for d in collected.documents[up]) == [
        "post.account.posted",
        "post.account.posted",
        "post.completed",
    ]
    assert sorted(entry.event_id for entry in stored().outbox if entry.target == down) == detected
    assert {entry.target for entry in stored().outbox} == {down}
    assert dead_lettered(stack) == 0

    # While the target stays missing: nothing is queued before the next retry, and each retry keeps them
    assert runner.tick(clock.now + timedelta(minutes=1)) == {"enqueued": SYNC}
    runner.drain_work_queue()
    for _ in range(2):
        tick_at_next_retry()
    assert collected.ids(down) == []
    assert len(stored().outbox) == 3
    assert dead_lettered(stack) == 0

    # When the target is back under the same name, the next retry publishes the same ids, once each
    restore_target(stack)
    tick_at_next_retry()

    assert collected.ids(down) == collected.ids(up) == detected
    by_id = {target: {d["event_id"]: d for d in collected.documents[target]} for target in ("sns", "eventbridge")}
    assert by_id["sns"] == by_id["eventbridge"]  # the same documents, unchanged by the wait
    assert stored().outbox == frozenset()
    assert stored().next_check_at is None  # finished and delivered: out of the due index
    assert dead_lettered(stack) == 0

    figures = emitted(capsys, stack)
    # The outbox age shows the wait: detected at 0, retried at 2 and 5 minutes, delivered at 8
    assert figures.values(Metric.PENDING_OUTBOX_AGE) == [0.0, 120.0, 300.0, 480.0]
    assert figures.values(Metric.EVENTS_DEAD_LETTERED) == []
    assert sum(figures.values(Metric.PUBLISH_FAILURES)) == 3 * 3  # the three events, at each of 3 attempts
    # One warning per refused attempt, with the target and the code, never a body
    lines = relay_lines(secret_sentinel, KEPT)
    assert [(line["target"], line["reason"], line["events"]) for line in lines] == [(down, code, 3)] * 3
    assert all(sorted(line["event_ids"]) == detected for line in lines)
    assert not any("caption" in str(line) for line in lines)
