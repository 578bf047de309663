"""The webhook queues' messages: a delivery survives the trip through SQS attributes, and what is not one is
poison (the event source then moves it to WebhookDLQ)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from genviral_relay.aws.webhook_queues import delivery_attributes, delivery_body
from genviral_relay.handlers.sqs_records import parse_deliveries, parse_fanout
from genviral_relay.models.events import published_document
from genviral_relay.models.webhooks import WebhookDelivery
from tests.support.notice_samples import NOTICES

DELIVERY = WebhookDelivery(
    webhook_id="wh_" + "a" * 32,
    event_id="0b6a9d5e-7f0c-5d1e-9a43-4f1c8e2b7d10",
    event_type="post.account.failed",
    attempt=3,
    due_at=datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC),
    post_id="p-1",
)
DOCUMENT = json.dumps({"event_id": DELIVERY.event_id, "post_id": "p-1", "event_type": DELIVERY.event_type})


def record(message_id: str, body: str, attributes: dict[str, dict[str, str]]) -> dict[str, object]:
    """As Lambda's SQS event source hands a message to the function."""
    return {
        "messageId": message_id,
        "body": body,
        "messageAttributes": {
            name: {"stringValue": value["StringValue"], "dataType": value["DataType"]}
            for name, value in attributes.items()
        },
    }


def test_a_delivery_reads_back_as_it_was_sent() -> None:
    items, poison = parse_deliveries([record("m1", delivery_body(DELIVERY), delivery_attributes(DELIVERY))])
    assert poison == []
    assert [(item.message_id, item.delivery) for item in items] == [("m1", DELIVERY)]


def test_a_message_that_is_no_delivery_is_poison_and_the_others_still_go() -> None:
    attributes = delivery_attributes(DELIVERY)
    broken = {name: value for name, value in attributes.items() if name != "due_at"}
    items, poison = parse_deliveries(
        [record("bad", "{}", broken), record("none", "{}", {}), record("good", delivery_body(DELIVERY), attributes)]
    )
    assert poison == ["bad", "none"]
    assert [item.message_id for item in items] == ["good"]


def test_a_delivery_is_named_by_its_attributes_and_its_body_is_never_read() -> None:
    attributes = delivery_attributes(DELIVERY)
    assert attributes["post_id"] == {"DataType": "String", "StringValue": "p-1"}
    tampered = json.dumps({"event_id": DELIVERY.event_id, "post_id": "p-other", "forged": True})
    (item,), _ = parse_deliveries([record("m1", tampered, attributes)])
    # Named by the attributes alone; the body is only carried on (for a 0.4 function), never what is signed
    assert item.delivery.model_copy(update={"document": None}) == DELIVERY
    assert item.delivery.document == tampered
    ((ids_only,), _) = parse_deliveries([record("m2", delivery_body(DELIVERY), attributes)])
    assert ids_only.delivery.document is None


def test_a_delivery_queued_by_0_4_is_located_by_its_documents_post() -> None:
    # 0.4 sent the document as the body and no post_id: the body says where the event is stored, no more
    attributes = {name: value for name, value in delivery_attributes(DELIVERY).items() if name != "post_id"}
    other_event = json.dumps({"event_id": "another", "post_id": "p-2"})
    items, poison = parse_deliveries(
        [
            record("m1", DOCUMENT, attributes),
            record("m2", other_event, attributes),
            record("m3", "not json", attributes),
        ]
    )
    assert poison == []
    assert [item.delivery.post_id for item in items] == ["p-1", None, None]  # None: names no stored event


def test_the_fanout_reads_the_event_id_and_type_from_the_attributes_and_the_post_from_the_body() -> None:
    string = {"DataType": "String"}
    good = {"event_id": {**string, "StringValue": "e1"}, "event_type": {**string, "StringValue": "post.account.posted"}}
    body = '{"event_id":"e1","post_id":"p1"}'
    items, poison = parse_fanout(
        [record("m1", body, good), record("m2", "{}", {}), record("m3", '{"event_id":"e1"}', good)]
    )
    assert [(item.event_id, item.event_type, item.post_id) for item in items] == [("e1", "post.account.posted", "p1")]
    assert poison == ["m2", "m3"]


def test_a_notices_fanout_message_names_no_post_and_anything_else_without_one_is_poison() -> None:
    notice = NOTICES["account.disconnected"]
    body = published_document(notice).decode()

    def attributes(event_id: str, event_type: str) -> dict[str, dict[str, str]]:
        return {name: {"DataType": "String", "StringValue": value}
                for name, value in (("event_id", event_id), ("event_type", event_type))}  # fmt: skip

    items, poison = parse_fanout(
        [
            record("notice", body, attributes(notice.event_id, notice.event_type)),
            record("other-type", body, attributes(notice.event_id, "account.reconnected")),  # not the body's type
            record("post-type", body, attributes(notice.event_id, "post.account.failed")),  # a post event names one
            record("other-id", body, attributes("another", notice.event_type)),  # not the body's event
        ]
    )
    assert [(item.event_id, item.event_type, item.post_id, item.document) for item in items] == [
        (notice.event_id, "account.disconnected", None, body)
    ]
    assert poison == ["other-type", "post-type", "other-id"]


def test_a_delivery_of_a_notice_names_no_post_and_reads_back_as_it_was_sent() -> None:
    delivery = DELIVERY.model_copy(update={"event_type": "relay.paused", "post_id": None})
    attributes = delivery_attributes(delivery)
    assert "post_id" not in attributes
    (item,), poison = parse_deliveries([record("m1", delivery_body(delivery), attributes)])
    assert poison == []
    assert item.delivery == delivery
