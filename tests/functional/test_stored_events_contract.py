"""One script on the stored events in DynamoDB (moto) and on their in-memory double: the same answers, so what the
webhook specs see of the double is what a deployment's delivery function finds."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from genviral_relay.aws.dynamodb_items import event_to_item, notice_key
from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.aws.stored_events import DynamoDbStoredEvents
from genviral_relay.checking.ports import EventSelection
from genviral_relay.models.events import RelayEvent, parse_event, published_document
from genviral_relay.notices.ports import NoticeDocument
from genviral_relay.webhooks.ports import StoredEvents
from local.stack import MotoStack
from tests.builders import relay_event
from tests.support.doubles import InMemoryStoredEvents
from tests.support.notice_samples import NOTICES

START = datetime(2026, 3, 2, 12, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parents[2] / "events" / "outbound" / "eventbridge-post-account-failed.json"
WEBHOOK = "wh_" + "1" * 32
OTHER_WEBHOOK = "wh_" + "2" * 32
NOTICE = NOTICES["account.disconnected"]


def script(events: StoredEvents, store: Callable[[RelayEvent | NoticeDocument], None]) -> list[Any]:
    event = parse_event(json.loads(SAMPLE.read_text())["detail"])
    store(event)
    store(NOTICE)
    events.store_test_event(WEBHOOK, "t1", '{"event_type":"webhook.test"}', expires_at=START + timedelta(days=30))
    return [
        events.notice(NOTICE.event_id),
        events.notice(event.event_id),  # an event about a post is never a notice
        events.relay_event("relay", NOTICE.event_id),  # nor a notice an event of the relay's partition
        events.notice("x" * 3000),  # a key no item can have names nothing
        events.relay_event(event.post_id, event.event_id),
        events.relay_event(event.post_id, "another"),
        events.relay_event("another-post", event.event_id),  # an event is found under its own post only
        events.relay_event("", event.event_id),  # a key no item can have names nothing
        events.relay_event("p" * 3000, event.event_id),
        events.test_event(WEBHOOK, "t1"),
        events.test_event(OTHER_WEBHOOK, "t1"),  # a test event is its endpoint's only
        events.test_event(WEBHOOK, event.event_id),
        events.relay_event(WEBHOOK, "t1"),  # a test event is never a relay event
    ]


def test_the_double_answers_as_the_table(stack: MotoStack) -> None:
    client, table = stack.client("dynamodb"), stack.ref("StateTable")

    def put(event: RelayEvent | NoticeDocument) -> None:  # the item the check's (the notice outbox's) commit writes
        expires_at = int((START + timedelta(days=30)).timestamp())
        item = event_to_item(event, expires_at) if isinstance(event, RelayEvent) else notice_item(event, expires_at)
        client.put_item(TableName=table, Item=item)

    expected = script(DynamoDbStoredEvents(client, table), put)
    double = InMemoryStoredEvents()
    assert script(double, double.add) == expected
    assert expected[0] == NOTICE
    assert expected[1:4] == [None] * 3
    assert expected[4] is not None
    assert expected[5:9] == [None] * 4
    assert expected[9:] == ['{"event_type":"webhook.test"}', None, None, None]


def test_a_test_event_expires_with_the_table_ttl_and_stays_out_of_the_event_scans(stack: MotoStack) -> None:
    client, table = stack.client("dynamodb"), stack.ref("StateTable")
    kept_until = START + timedelta(days=30)
    DynamoDbStoredEvents(client, table).store_test_event(WEBHOOK, "t1", "{}", expires_at=kept_until)
    (item,) = client.scan(TableName=table)["Items"]
    assert (item["pk"]["S"], item["sk"]["S"], item["expires_at"]["N"]) == (
        WEBHOOK, "TEST_EVENT#t1", str(int(kept_until.timestamp()))
    )  # fmt: skip
    store = DynamoDbStore(client, table, event_retention=timedelta(days=1), clock=lambda: START)
    assert store.find_events(EventSelection()) == []  # the CLI's event listing reads relay events only


def test_an_event_item_that_is_no_document_of_the_relays_names_nothing(stack: MotoStack) -> None:
    # An item under an event's key whose document no release wrote (anyone who could write the table): a delivery
    # naming it is rejected, not retried five times into the dead-letter queue
    client, table = stack.client("dynamodb"), stack.ref("StateTable")
    event = relay_event("post.account.posted", "e-bad")
    item = event_to_item(event, int((START + timedelta(days=30)).timestamp()))
    item["document"] = {"S": json.dumps({"event_id": "e-bad", "event_type": "post.account.posted"})}
    client.put_item(TableName=table, Item=item)
    assert DynamoDbStoredEvents(client, table).relay_event(event.post_id, "e-bad") is None


def notice_item(notice: NoticeDocument, expires_at: int) -> dict[str, Any]:
    """A notice's item as the notice outbox commits it (`dynamodb_items.py`: `NOTICE#<event_id>`, its published
    document)."""
    return {**notice_key(notice.event_id), "document": {"S": published_document(notice).decode()},
            "expires_at": {"N": str(expires_at)}}  # fmt: skip


def test_a_notice_item_that_is_no_notice_of_the_relays_names_nothing(stack: MotoStack) -> None:
    client, table = stack.client("dynamodb"), stack.ref("StateTable")
    item = notice_item(NOTICE, int((START + timedelta(days=30)).timestamp()))
    item["document"] = {"S": json.dumps({"event_id": NOTICE.event_id, "event_type": NOTICE.event_type})}
    client.put_item(TableName=table, Item=item)
    assert DynamoDbStoredEvents(client, table).notice(NOTICE.event_id) is None
