"""Publishers: exact request shapes, batching by 10, per-entry failures retried or reported."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from genviral_relay.aws.publishers import EventBridgePublisher, RetrySettings, SnsPublisher
from genviral_relay.logic.transitions import detect_transitions
from genviral_relay.models.events import RelayEvent
from tests.builders import NOW, account, post

TOPIC = "arn:aws:sns:us-east-1:123456789012:events"
BUS = "relay-bus"


def events(count: int, caption: str = "hello") -> list[RelayEvent]:
    states = [account(f"00000000-0000-4000-8000-{index:012d}", status="posted") for index in range(count)]
    return list(detect_transitions(None, post(*states, caption=caption), NOW).events)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def eventbridge(sleeps: list[float]) -> tuple[EventBridgePublisher, Stubber]:
    client = boto3.client("events", region_name="us-east-1")
    return EventBridgePublisher(client, BUS, sleep=sleeps.append, retry=RetrySettings(max_attempts=3)), Stubber(client)


def sns(sleeps: list[float]) -> tuple[SnsPublisher, Stubber]:
    client = boto3.client("sns", region_name="us-east-1")
    return SnsPublisher(client, TOPIC, sleep=sleeps.append, retry=RetrySettings(max_attempts=3)), Stubber(client)


def put_events_ok(count: int) -> dict[str, Any]:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": f"eb-{index}"} for index in range(count)]}


def test_eventbridge_entry_shape_and_batches_of_ten(sleeps: list[float]) -> None:
    publisher, stubber = eventbridge(sleeps)
    batch = events(11)
    first = batch[0]
    stubber.add_response(
        "put_events",
        put_events_ok(10),
        {
            "Entries": [
                {
                    "EventBusName": BUS,
                    "Source": "genviral.relay",
                    "DetailType": "Post Account Posted",
                    "Detail": ANY,
                    "Resources": [],
                }
            ]
            * 10
        },
    )
    stubber.add_response("put_events", put_events_ok(1), {"Entries": ANY})

    with stubber:
        result = publisher.publish(batch)

    stubber.assert_no_pending_responses()
    assert result.delivered == {event.event_id for event in batch}
    assert result.failed == {}
    assert json.loads(first.model_dump_json()) == first.model_dump(mode="json")


def test_eventbridge_retries_throttled_entries_and_reports_malformed_ones(sleeps: list[float]) -> None:
    publisher, stubber = eventbridge(sleeps)
    ok, throttled, malformed = events(3)
    stubber.add_response(
        "put_events",
        {
            "FailedEntryCount": 2,
            "Entries": [
                {"EventId": "eb-1"},
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
                {"ErrorCode": "MalformedDetail", "ErrorMessage": "bad detail"},
            ],
        },
    )
    stubber.add_response("put_events", put_events_ok(1), {"Entries": [{**_entry(), "Detail": ANY}]})

    with stubber:
        result = publisher.publish([ok, throttled, malformed])

    stubber.assert_no_pending_responses()
    assert result.delivered == {ok.event_id, throttled.event_id}
    assert set(result.failed) == {malformed.event_id}
    assert result.failed[malformed.event_id].retryable is False
    assert "MalformedDetail" in result.failed[malformed.event_id].reason
    assert len(sleeps) == 1


def test_eventbridge_reports_entries_still_throttled_after_the_last_attempt(sleeps: list[float]) -> None:
    publisher, stubber = eventbridge(sleeps)
    (event,) = events(1)
    throttled = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "oops"}]}
    for _ in range(3):
        stubber.add_response("put_events", throttled)

    with stubber:
        result = publisher.publish([event])

    assert result.delivered == set()
    assert result.failed[event.event_id].retryable is True
    assert len(sleeps) == 2
    assert all(0 <= pause <= RetrySettings().max_delay for pause in sleeps)


def test_eventbridge_whole_call_errors(sleeps: list[float]) -> None:
    publisher, stubber = eventbridge(sleeps)
    (event,) = events(1)
    stubber.add_client_error("put_events", service_error_code="ThrottlingException", http_status_code=400)
    stubber.add_response("put_events", put_events_ok(1))
    stubber.add_client_error("put_events", service_error_code="AccessDeniedException", http_status_code=400)

    with stubber:
        recovered = publisher.publish([event])
        denied = publisher.publish([event])

    assert recovered.delivered == {event.event_id}
    assert denied.failed[event.event_id].reason == "AccessDeniedException"
    assert denied.failed[event.event_id].retryable is False


def test_oversized_events_are_reported_before_any_call(sleeps: list[float]) -> None:
    publisher, stubber = eventbridge(sleeps)
    (huge,) = events(1, caption="x" * 300_000)

    with stubber:  # no response queued: any call would fail the test
        result = publisher.publish([huge])

    assert result.failed[huge.event_id].retryable is False
    assert "over the limit" in result.failed[huge.event_id].reason


def test_sns_entry_shape_with_filterable_attributes(sleeps: list[float]) -> None:
    publisher, stubber = sns(sleeps)
    (event,) = events(1)
    stubber.add_response(
        "publish_batch",
        {"Successful": [{"Id": event.event_id, "MessageId": "m-1"}], "Failed": []},
        {
            "TopicArn": TOPIC,
            "PublishBatchRequestEntries": [
                {
                    "Id": event.event_id,
                    "Message": ANY,
                    "MessageAttributes": {
                        "event_type": {"DataType": "String", "StringValue": "post.account.posted"},
                        "status": {"DataType": "String", "StringValue": "posted"},
                        "post_id": {"DataType": "String", "StringValue": event.post_id},
                        "account_id": {"DataType": "String", "StringValue": event.account_id},
                    },
                }
            ],
        },
    )

    with stubber:
        result = publisher.publish([event])

    stubber.assert_no_pending_responses()
    assert result.delivered == {event.event_id}


def test_sns_failed_entries_are_retried_unless_the_sender_is_at_fault(sleeps: list[float]) -> None:
    publisher, stubber = sns(sleeps)
    transient, rejected = events(2)
    stubber.add_response(
        "publish_batch",
        {
            "Successful": [],
            "Failed": [
                {"Id": transient.event_id, "Code": "InternalError", "SenderFault": False},
                {"Id": rejected.event_id, "Code": "InvalidParameter", "Message": "too big", "SenderFault": True},
            ],
        },
    )
    stubber.add_response("publish_batch", {"Successful": [{"Id": transient.event_id, "MessageId": "m"}], "Failed": []})

    with stubber:
        result = publisher.publish([transient, rejected])

    stubber.assert_no_pending_responses()
    assert result.delivered == {transient.event_id}
    assert result.failed[rejected.event_id].retryable is False
    assert "InvalidParameter" in result.failed[rejected.event_id].reason


def _entry() -> dict[str, Any]:
    return {"EventBusName": BUS, "Source": "genviral.relay", "DetailType": "Post Account Posted", "Resources": []}
