"""The webhook queues' messages: a delivery survives the trip through SQS attributes, and what is not one is
poison (the event source then moves it to WebhookDLQ)."""

from __future__ import annotations

from datetime import UTC, datetime

from genviral_relay.aws.webhook_queues import delivery_attributes
from genviral_relay.handlers.sqs_records import parse_deliveries, parse_fanout
from genviral_relay.models.webhooks import WebhookDelivery

DELIVERY = WebhookDelivery(
    webhook_id="wh_" + "a" * 32,
    event_id="0b6a9d5e-7f0c-5d1e-9a43-4f1c8e2b7d10",
    event_type="post.account.failed",
    attempt=3,
    due_at=datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC),
    body='{"event_id":"0b6a9d5e-7f0c-5d1e-9a43-4f1c8e2b7d10"}',
)


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
    items, poison = parse_deliveries([record("m1", DELIVERY.body, delivery_attributes(DELIVERY))])
    assert poison == []
    assert [(item.message_id, item.delivery) for item in items] == [("m1", DELIVERY)]


def test_a_message_that_is_no_delivery_is_poison_and_the_others_still_go() -> None:
    attributes = delivery_attributes(DELIVERY)
    broken = {name: value for name, value in attributes.items() if name != "due_at"}
    items, poison = parse_deliveries(
        [record("bad", "{}", broken), record("none", "{}", {}), record("good", DELIVERY.body, attributes)]
    )
    assert poison == ["bad", "none"]
    assert [item.message_id for item in items] == ["good"]


def test_the_fanout_reads_the_event_id_and_type_from_the_attributes() -> None:
    string = {"DataType": "String"}
    good = {"event_id": {**string, "StringValue": "e1"}, "event_type": {**string, "StringValue": "post.account.posted"}}
    items, poison = parse_fanout([record("m1", '{"a":1}', good), record("m2", "{}", {})])
    assert [(item.event_id, item.event_type, item.body) for item in items] == [("e1", "post.account.posted", '{"a":1}')]
    assert poison == ["m2"]
