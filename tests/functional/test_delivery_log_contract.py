"""One script on the delivery log and the pacer in DynamoDB (moto) and on their in-memory doubles: the same answers,
so what the delivery specs see of the doubles is what a deployment's functions find."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from genviral_relay.aws.delivery_log import DynamoDbDeliveryLog
from genviral_relay.aws.delivery_pacer import DynamoDbPacer
from genviral_relay.aws.webhook_store import DynamoDbWebhookStore
from genviral_relay.models.event_log import ATTEMPTS_READ_AT_MOST, AttemptEntry, AttemptPage, DeliveryState
from genviral_relay.models.webhooks import WebhookEndpoint
from genviral_relay.webhooks.ports import DeliveryLog, DeliveryPacer
from local.stack import MotoStack
from tests.support.counting import CountingClient
from tests.support.event_log_doubles import InMemoryDeliveryLog, InMemoryPacer

START = datetime(2026, 3, 2, 12, tzinfo=UTC)
RETENTION = timedelta(days=30)
WEBHOOK = "wh_" + "1" * 32
OTHER = "wh_" + "2" * 32


def attempt(number: int, event_id: str, *, seconds: int, delivered: bool, webhook_id: str = WEBHOOK) -> AttemptEntry:
    return AttemptEntry(
        webhook_id=webhook_id,
        event_id=event_id,
        event_type="post.account.failed",
        attempt=number,
        at=START + timedelta(seconds=seconds),
        status=200 if delivered else None,
        duration_ms=12 * number,
        outcome="delivered" if delivered else "failed",
        reason=None if delivered else "not delivered: connection refused",
    )


def state_after(entry: AttemptEntry, name: str, following: datetime | None = None) -> DeliveryState:
    return DeliveryState(
        webhook_id=entry.webhook_id,
        event_id=entry.event_id,
        state=name,  # type: ignore[arg-type]
        attempts=entry.attempt,
        last_attempt_at=entry.at,
        next_attempt_at=following,
        last_status=entry.status,
    )


def log_script(log: DeliveryLog) -> list[Any]:
    first = attempt(1, "e1", seconds=0, delivered=False)
    log.record_attempt(first, state_after(first, "retrying", START + timedelta(seconds=5)))
    second = attempt(2, "e1", seconds=5, delivered=True)
    log.record_attempt(second, state_after(second, "delivered"))
    for index in range(5):  # e2..e6 fail once each, a second apart
        entry = attempt(1, f"e{index + 2}", seconds=10 + index, delivered=False)
        log.record_attempt(entry, state_after(entry, "retrying"))
    other = attempt(1, "e1", seconds=1, delivered=True, webhook_id=OTHER)
    log.record_attempt(other, state_after(other, "delivered"))
    log.record_states(
        [
            DeliveryState(webhook_id="wh_" + "3" * 32, event_id="e1", state="filtered"),
            DeliveryState(webhook_id="wh_" + "4" * 32, event_id="e1", state="disabled", attempts=1),
            # the same event twice in one fan-out batch: one BatchWriteItem may not name a key twice; the last wins
            DeliveryState(webhook_id="wh_" + "4" * 32, event_id="e1", state="disabled", attempts=2),
        ]
    )
    newest = log.attempts(WEBHOOK, before=None, limit=3)
    following = log.attempts(WEBHOOK, before=newest.reached, limit=3)
    last = log.attempts(WEBHOOK, before=following.reached, limit=3)
    delivered = log.attempts(WEBHOOK, before=None, limit=1, outcome="delivered")
    exactly = log.attempts(WEBHOOK, before=None, limit=7)  # the page ends on the oldest entry: reached is it
    return [
        log.deliveries("e1"),
        log.deliveries("e4"),
        log.deliveries("unknown"),
        newest,
        following,
        last,
        delivered,
        log.attempts(WEBHOOK, before=delivered.reached, limit=5, outcome="delivered"),
        exactly,
        log.attempts(WEBHOOK, before=exactly.reached, limit=7),
        log.attempts(OTHER, before=None, limit=100),
        log.attempts("wh_" + "9" * 32, before=None, limit=100),
    ]


class DistinctKeys:
    """DynamoDB refuses a BatchWriteItem naming one key twice (`Provided list of item keys contains duplicates`,
    the whole batch lost); moto takes it. This client refuses it as DynamoDB does."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def batch_write_item(self, **request: Any) -> Any:
        for writes in request["RequestItems"].values():
            keys = [(w["PutRequest"]["Item"]["pk"]["S"], w["PutRequest"]["Item"]["sk"]["S"]) for w in writes]
            assert len(keys) == len(set(keys)), "ValidationException: item keys contain duplicates"
        return self._inner.batch_write_item(**request)


def test_the_delivery_log_double_answers_as_the_table(stack: MotoStack) -> None:
    client = DistinctKeys(stack.client("dynamodb"))
    table = DynamoDbDeliveryLog(client, stack.ref("StateTable"), event_retention=RETENTION)  # type: ignore[arg-type]
    expected = log_script(table)
    assert log_script(InMemoryDeliveryLog()) == expected
    e1 = expected[0]
    assert [(s.webhook_id[-1], s.state, s.attempts) for s in e1] == [
        ("1", "delivered", 2), ("2", "delivered", 1), ("3", "filtered", 0), ("4", "disabled", 2)
    ]  # fmt: skip
    newest: AttemptPage = expected[3]
    assert [(e.event_id, e.attempt) for e in newest.entries] == [("e6", 1), ("e5", 1), ("e4", 1)]
    assert [e.event_id for e in expected[5].entries] == ["e1"]  # the last page: the first attempt, nothing older
    assert expected[5].reached is None
    assert [(e.event_id, e.attempt) for e in expected[6].entries] == [("e1", 2)]
    assert expected[7] == AttemptPage(entries=[], reached=None)
    assert expected[8].reached is not None
    assert expected[9] == AttemptPage(entries=[], reached=None)


def test_an_attempt_is_one_call_and_its_records_expire_with_the_events(stack: MotoStack) -> None:
    counts: Counter[str] = Counter()
    client = CountingClient(stack.client("dynamodb"), counts)
    log = DynamoDbDeliveryLog(client, stack.ref("StateTable"), event_retention=RETENTION)  # type: ignore[arg-type]
    entry = attempt(1, "e1", seconds=0, delivered=True)
    log.record_attempt(entry, state_after(entry, "delivered"))
    assert counts == Counter(batch_write_item=1)
    items = stack.client("dynamodb").scan(TableName=stack.ref("StateTable"))["Items"]
    assert {(i["pk"]["S"], i["expires_at"]["N"]) for i in items} == {
        (f"ATTEMPTS#{WEBHOOK}", str(int((START + RETENTION).timestamp()))),
        ("DELIVERY#e1", str(int((START + RETENTION).timestamp()))),
    }


def test_a_rare_outcome_reads_at_most_a_bound_of_entries_and_says_how_far(stack: MotoStack) -> None:
    logs = (
        DynamoDbDeliveryLog(stack.client("dynamodb"), stack.ref("StateTable"), event_retention=RETENTION),
        InMemoryDeliveryLog(),
    )
    pages = []
    for log in logs:
        entries = [attempt(1, f"e{n:05d}", seconds=n, delivered=True) for n in range(ATTEMPTS_READ_AT_MOST + 5)]
        for entry in entries:
            log.record_attempt(entry, state_after(entry, "delivered"))
        pages.append(log.attempts(WEBHOOK, before=None, limit=10, outcome="failed"))
    assert pages[0] == pages[1]
    assert pages[0].entries == []
    assert pages[0].reached is not None  # the read stopped short: `next` goes on from there


def endpoint(stack: MotoStack) -> None:
    DynamoDbWebhookStore(stack.client("dynamodb"), stack.ref("StateTable")).create(
        WebhookEndpoint(id=WEBHOOK, url="https://hooks.example.com/a", created_at=START), limit=100
    )


def pace_script(pacer: DeliveryPacer) -> list[datetime]:
    at = START + timedelta(milliseconds=250)
    return [
        pacer.reserve(WEBHOOK, 4, at),  # the slot has come: now
        pacer.reserve(WEBHOOK, 4, at),  # then one every 250 ms
        pacer.reserve(WEBHOOK, 4, at + timedelta(milliseconds=100)),
        pacer.reserve(WEBHOOK, 4, at + timedelta(seconds=10)),  # idle since: now again
        pacer.reserve(WEBHOOK, 3, at + timedelta(seconds=10)),  # another rate: the old one's slot is not waited for
        pacer.reserve(WEBHOOK, 3, at + timedelta(seconds=10)),  # 333.3 ms, rounded up: never over the rate
    ]


def test_the_pacer_double_reserves_as_the_table(stack: MotoStack) -> None:
    endpoint(stack)
    expected = pace_script(DynamoDbPacer(stack.client("dynamodb"), stack.ref("StateTable")))
    assert pace_script(InMemoryPacer()) == expected
    at = START + timedelta(milliseconds=250)
    assert [moment - at for moment in expected] == [
        timedelta(0), timedelta(milliseconds=250), timedelta(milliseconds=500), timedelta(seconds=10),
        timedelta(seconds=10), timedelta(seconds=10, milliseconds=334),
    ]  # fmt: skip


def test_concurrent_reservations_each_get_a_slot_of_their_own_in_about_one_call(stack: MotoStack) -> None:
    endpoint(stack)
    counts: Counter[str] = Counter()
    pacer = DynamoDbPacer(CountingClient(stack.client("dynamodb"), counts), stack.ref("StateTable"))  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=8) as pool:
        slots = list(pool.map(lambda _: pacer.reserve(WEBHOOK, 10, START), range(40)))
    assert sorted(slots) == [START + timedelta(milliseconds=100 * n) for n in range(40)]
    assert counts["update_item"] <= 40 + 8  # a failed condition costs one more call, once per change of case
    item = stack.client("dynamodb").get_item(
        TableName=stack.ref("StateTable"), Key={"pk": {"S": "webhooks"}, "sk": {"S": WEBHOOK}}
    )["Item"]
    assert DynamoDbWebhookStore(stack.client("dynamodb"), stack.ref("StateTable")).endpoint(WEBHOOK) is not None
    assert "pace_next_ms" in item  # on the endpoint's own item


def test_a_deleted_endpoint_is_not_paced_and_no_item_is_made(stack: MotoStack) -> None:
    pacer = DynamoDbPacer(stack.client("dynamodb"), stack.ref("StateTable"))
    assert pacer.reserve(WEBHOOK, 1, START) == START
    assert stack.client("dynamodb").scan(TableName=stack.ref("StateTable"))["Items"] == []
