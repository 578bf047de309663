"""Publishers: exact request shapes, batching by 10 and by size, and what each failure makes of an event:
retried now, kept in the outbox (the target refuses the call as a whole: an outage), or refused for
good (an entry at fault, found by splitting a batch refused for a validation reason)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import ANY, Stubber

from genviral_relay.aws.batch_publishing import RetrySettings
from genviral_relay.aws.publish_errors import MAX_MESSAGE_CHARS, call_error_cause, entry_error_cause
from genviral_relay.aws.publishers import EventBridgePublisher, SnsPublisher
from genviral_relay.checking.ports import PublishResult
from genviral_relay.models.events import RelayEvent, published_document
from genviral_relay.rules.transitions import detect_transitions
from tests.builders import NOW, account, outcomes, post

TOPIC = "arn:aws:sns:us-east-1:123456789012:events"
BUS = "relay-bus"


def events(count: int, caption: str = "hello") -> list[RelayEvent]:
    states = [account(f"00000000-0000-4000-8000-{index:012d}", status="posted") for index in range(count)]
    return list(outcomes(detect_transitions(None, post(*states, caption=caption), NOW).events))


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
    assert result.published == {event.event_id for event in batch}
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
    assert result.published == {ok.event_id, throttled.event_id}
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

    assert result.published == set()
    assert result.failed[event.event_id].retryable is True
    assert len(sleeps) == 2
    assert all(0 <= pause <= RetrySettings().max_delay for pause in sleeps)


def test_eventbridge_a_throttled_call_is_retried(sleeps: list[float]) -> None:
    publisher, stubber = eventbridge(sleeps)
    (event,) = events(1)
    stubber.add_client_error("put_events", service_error_code="ThrottlingException", http_status_code=400)
    stubber.add_response("put_events", put_events_ok(1))

    with stubber:
        recovered = publisher.publish([event])

    stubber.assert_no_pending_responses()
    assert recovered.published == {event.event_id}
    assert len(sleeps) == 1


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
                        "workspace": {"DataType": "String", "StringValue": "default"},
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
    assert result.published == {event.event_id}


def test_the_workspace_is_an_sns_attribute_and_in_the_eventbridge_detail(sleeps: list[float]) -> None:
    (event,) = events(1)
    acme = event.model_copy(update={"workspace": "acme"})
    document = published_document(acme).decode()
    assert json.loads(document)["workspace"] == "acme"
    sns_publisher, sns_stub = sns(sleeps)
    bus_publisher, bus_stub = eventbridge(sleeps)
    attributes = {
        "event_type": {"DataType": "String", "StringValue": "post.account.posted"},
        "workspace": {"DataType": "String", "StringValue": "acme"},
        "status": {"DataType": "String", "StringValue": "posted"},
        "post_id": {"DataType": "String", "StringValue": event.post_id},
        "account_id": {"DataType": "String", "StringValue": event.account_id},
    }
    sns_stub.add_response(
        "publish_batch",
        {"Successful": [{"Id": event.event_id, "MessageId": "m-1"}], "Failed": []},
        {
            "TopicArn": TOPIC,
            "PublishBatchRequestEntries": [
                {"Id": event.event_id, "Message": document, "MessageAttributes": attributes}
            ],
        },
    )
    bus_stub.add_response(
        "put_events",
        put_events_ok(1),
        {
            "Entries": [
                {
                    "EventBusName": BUS,
                    "Source": "genviral.relay",
                    "DetailType": "Post Account Posted",
                    "Detail": document,
                    "Resources": [],
                }
            ]
        },
    )

    with sns_stub, bus_stub:
        assert sns_publisher.publish([acme]).published == {event.event_id}
        assert bus_publisher.publish([acme]).published == {event.event_id}

    sns_stub.assert_no_pending_responses()
    bus_stub.assert_no_pending_responses()


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
    assert result.published == {transient.event_id}
    assert result.failed[rejected.event_id].retryable is False
    assert "InvalidParameter" in result.failed[rejected.event_id].reason


def _entry() -> dict[str, Any]:
    return {"EventBusName": BUS, "Source": "genviral.relay", "DetailType": "Post Account Posted", "Resources": []}


# ---------------------------------------------------------------- the target refuses the call as a whole


def sns_ok(batch: list[RelayEvent]) -> dict[str, Any]:
    return {"Successful": [{"Id": event.event_id, "MessageId": f"m-{event.event_id}"} for event in batch], "Failed": []}


def assert_all_kept(result: PublishResult, batch: list[RelayEvent], reason: str) -> None:
    assert result.published == set()
    assert set(result.failed) == {event.event_id for event in batch}
    assert {(failure.reason, failure.retryable) for failure in result.failed.values()} == {(reason, True)}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ResourceNotFoundException", 400),  # the bus is gone (as moto answers; see test_target_outage.py)
        ("AccessDeniedException", 400),
        ("NotAuthorized", 403),
        ("KMSAccessDeniedException", 400),
        ("UnrecognizedClientException", 400),
        ("SomethingNewException", 400),  # a code not known here is never a reason to drop an event
    ],
)
def test_eventbridge_a_call_refused_as_a_whole_keeps_every_event_without_retrying_it(
    sleeps: list[float], code: str, status: int
) -> None:
    publisher, stubber = eventbridge(sleeps)
    batch = events(12)
    stubber.add_client_error("put_events", service_error_code=code, service_message="no", http_status_code=status)
    stubber.add_client_error("put_events", service_error_code=code, service_message="no", http_status_code=status)

    with stubber:
        result = publisher.publish(batch)

    stubber.assert_no_pending_responses()  # one call per batch of ten: no retries within the publish
    assert_all_kept(result, batch, code)
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("NotFound", 404),  # the topic is gone
        ("AuthorizationError", 403),
        ("KMSDisabled", 400),
        ("KMSNotFound", 400),
        ("KMSInvalidState", 400),
        ("KMSAccessDenied", 400),
        ("InvalidSecurity", 403),
        ("ExpiredToken", 403),
    ],
)
def test_sns_a_call_refused_as_a_whole_keeps_every_event_without_retrying_it(
    sleeps: list[float], code: str, status: int
) -> None:
    publisher, stubber = sns(sleeps)
    batch = events(3)
    stubber.add_client_error("publish_batch", service_error_code=code, service_message="no", http_status_code=status)

    with stubber:
        result = publisher.publish(batch)

    stubber.assert_no_pending_responses()
    assert_all_kept(result, batch, code)
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "status"),
    [("ServiceUnavailable", 503), ("InternalError", 500), ("Throttled", 400), ("SlowDown", 429), ("Oops", 502)],
)
def test_sns_a_transient_call_failure_is_retried_then_kept(sleeps: list[float], code: str, status: int) -> None:
    publisher, stubber = sns(sleeps)
    batch = events(2)
    for _ in range(3):
        stubber.add_client_error("publish_batch", service_error_code=code, http_status_code=status)

    with stubber:
        result = publisher.publish(batch)

    stubber.assert_no_pending_responses()
    assert_all_kept(result, batch, code)
    assert len(sleeps) == 2


class Unreachable:
    """A client whose endpoint cannot be reached (botocore raises before any answer)."""

    def __init__(self) -> None:
        self.calls = 0

    def put_events(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com/")


def test_an_unreachable_endpoint_is_retried_then_kept(sleeps: list[float]) -> None:
    client = Unreachable()
    publisher = EventBridgePublisher(client, BUS, sleep=sleeps.append, retry=RetrySettings(max_attempts=3))
    batch = events(2)

    result = publisher.publish(batch)

    assert client.calls == 3
    assert_all_kept(result, batch, "EndpointConnectionError")


def test_entries_refused_for_the_targets_own_reasons_are_kept_and_entries_at_fault_refused(
    sleeps: list[float],
) -> None:
    publisher, stubber = eventbridge(sleeps)
    denied, unauthorized, encrypted, malformed, invalid = events(5)
    stubber.add_response(
        "put_events",
        {
            "FailedEntryCount": 5,
            "Entries": [
                {"ErrorCode": "AccessDeniedException", "ErrorMessage": "not allowed"},
                {"ErrorCode": "NotAuthorizedForSourceException", "ErrorMessage": "not allowed"},
                {"ErrorCode": "KMSAccessDeniedException", "ErrorMessage": "key"},
                {"ErrorCode": "MalformedDetail", "ErrorMessage": "bad detail"},
                {"ErrorCode": "ValidationException", "ErrorMessage": "bad entry"},
            ],
        },
    )

    with stubber:
        result = publisher.publish([denied, unauthorized, encrypted, malformed, invalid])

    stubber.assert_no_pending_responses()  # neither kind is sent again within the publish
    kept = {event_id for event_id, failure in result.failed.items() if failure.retryable}
    refused = {event_id for event_id, failure in result.failed.items() if not failure.retryable}
    assert kept == {denied.event_id, unauthorized.event_id, encrypted.event_id}
    assert refused == {malformed.event_id, invalid.event_id}
    assert result.failed[malformed.event_id].reason == "MalformedDetail: bad detail"


def test_sns_failed_entries_for_the_targets_own_reasons_are_kept(sleeps: list[float]) -> None:
    publisher, stubber = sns(sleeps)
    encrypted, rejected = events(2)
    stubber.add_response(
        "publish_batch",
        {
            "Successful": [],
            "Failed": [
                {"Id": encrypted.event_id, "Code": "KMSDisabled", "Message": "key disabled", "SenderFault": True},
                {"Id": rejected.event_id, "Code": "InvalidParameter", "Message": "too big", "SenderFault": True},
            ],
        },
    )

    with stubber:
        result = publisher.publish([encrypted, rejected])

    assert result.failed[encrypted.event_id].retryable is True
    assert result.failed[rejected.event_id].retryable is False


# ---------------------------------------------------------------- a batch refused for a validation reason is split


def entries_of(batch: list[RelayEvent]) -> dict[str, Any]:
    return {"Entries": [{**_entry(), "Detail": ANY} for _ in batch]}


def test_eventbridge_a_batch_refused_for_a_validation_reason_is_split_down_to_the_bad_entry(
    sleeps: list[float],
) -> None:
    publisher, stubber = eventbridge(sleeps)
    batch = events(10)
    bad = batch[7]
    invalid = {"service_error_code": "ValidationException", "http_status_code": 400}
    message = "1 validation error detected: Value at 'entries.8.member.detail' failed to satisfy constraint"
    # 10 refused; 0-4 ok; 5-9 refused; 5-6 ok; 7-9 refused; 7 refused alone: parked; 8-9 ok
    stubber.add_client_error("put_events", service_message=message, expected_params=entries_of(batch), **invalid)
    stubber.add_response("put_events", put_events_ok(5), entries_of(batch[:5]))
    stubber.add_client_error("put_events", service_message=message, expected_params=entries_of(batch[5:]), **invalid)
    stubber.add_response("put_events", put_events_ok(2), entries_of(batch[5:7]))
    stubber.add_client_error("put_events", service_message=message, expected_params=entries_of(batch[7:]), **invalid)
    stubber.add_client_error("put_events", service_message=message, expected_params=entries_of([bad]), **invalid)
    stubber.add_response("put_events", put_events_ok(2), entries_of(batch[8:]))

    with stubber:
        result = publisher.publish(batch)

    stubber.assert_no_pending_responses()
    assert result.published == {event.event_id for event in batch} - {bad.event_id}
    assert set(result.failed) == {bad.event_id}
    assert result.failed[bad.event_id].retryable is False
    assert result.failed[bad.event_id].reason.startswith("ValidationException: 1 validation error")
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "status"), [("InvalidParameter", 400), ("BatchRequestTooLong", 400), ("RequestEntityTooLarge", 413)]
)
def test_sns_a_batch_refused_for_a_validation_reason_is_split(sleeps: list[float], code: str, status: int) -> None:
    publisher, stubber = sns(sleeps)
    first, bad = events(2)
    long_message = "Invalid parameter: Message " + "v" * 1000  # some messages quote what they refuse
    refused = {"service_error_code": code, "service_message": long_message, "http_status_code": status}
    stubber.add_client_error("publish_batch", **refused)
    stubber.add_response("publish_batch", sns_ok([first]))
    stubber.add_client_error("publish_batch", **refused)

    with stubber:
        result = publisher.publish([first, bad])

    stubber.assert_no_pending_responses()
    assert result.published == {first.event_id}
    assert result.failed[bad.event_id].retryable is False
    assert len(result.failed[bad.event_id].reason) <= len(code) + 2 + MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    ("make", "operation", "code", "message"),
    [
        (sns, "publish_batch", "InvalidParameter", "Invalid parameter: TopicArn"),
        (
            eventbridge,
            "put_events",
            "ValidationException",
            "1 validation error detected: Value at 'entries.1.member.eventBusName' failed to satisfy constraint",
        ),
    ],
)
def test_a_validation_error_about_the_target_itself_keeps_every_event(
    sleeps: list[float], make: Any, operation: str, code: str, message: str
) -> None:
    publisher, stubber = make(sleeps)
    batch = events(4)
    stubber.add_client_error(operation, service_error_code=code, service_message=message, http_status_code=400)

    with stubber:  # no split: every entry would be refused alike
        result = publisher.publish(batch)

    stubber.assert_no_pending_responses()
    assert_all_kept(result, batch, code)


def test_batches_are_also_cut_by_their_total_size(sleeps: list[float]) -> None:
    publisher, stubber = sns(sleeps)
    batch = events(3, caption="x" * 100_000)  # about 100 KiB each: two fit in one call, not three
    stubber.add_response(
        "publish_batch", sns_ok(batch[:2]), {"TopicArn": TOPIC, "PublishBatchRequestEntries": [ANY] * 2}
    )
    stubber.add_response("publish_batch", sns_ok(batch[2:]), {"TopicArn": TOPIC, "PublishBatchRequestEntries": [ANY]})

    with stubber:
        result = publisher.publish(batch)

    stubber.assert_no_pending_responses()
    assert result.published == {event.event_id for event in batch}


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Publish"
    )


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (client_error("NotFound", 404, "Topic does not exist"), "target"),
        (client_error("ResourceNotFoundException", 400, "Event bus relay-bus does not exist."), "target"),
        (client_error("AuthorizationError", 403), "target"),
        (client_error("AccessDenied", 403), "target"),
        (client_error("AccessDeniedException", 400), "target"),
        (client_error("KMSDisabled", 400), "target"),
        (client_error("KMSOptInRequired", 403), "target"),
        (client_error("Unheard", 400), "target"),
        (client_error("ThrottlingException", 400), "transient"),
        (client_error("KMSThrottling", 400), "transient"),
        (client_error("InternalFailure", 500), "transient"),
        (client_error("Unheard", 503), "transient"),
        (client_error("Unheard", 429), "transient"),
        (client_error("InvalidParameter", 400, "Invalid parameter: Message too long"), "entry"),
        (client_error("InvalidParameter", 400, "Invalid parameter: TopicArn"), "target"),
        (client_error("ValidationException", 400, "Value at 'entries.1.member.detailType' ..."), "entry"),
        (client_error("ValidationException", 400, "Value at 'entries.1.member.eventBusName' ..."), "target"),
        (client_error("BatchRequestTooLong", 400), "entry"),
        (client_error("Unheard", 413), "entry"),
    ],
)
def test_what_a_call_refused_as_a_whole_says(error: ClientError, cause: str) -> None:
    assert call_error_cause(error) == cause


@pytest.mark.parametrize(
    ("code", "sender_fault", "cause"),
    [
        ("MalformedDetail", True, "entry"),
        ("ValidationException", True, "entry"),
        ("InvalidParameter", True, "entry"),
        ("RedactionFailure", True, "entry"),
        ("ThrottlingException", True, "transient"),
        ("InternalFailure", True, "transient"),
        ("InternalError", False, "transient"),
        ("Unheard", False, "transient"),
        ("AccessDeniedException", True, "target"),
        ("NotAuthorizedForDetailTypeException", True, "target"),
        ("InvalidEventBusNameException", True, "target"),
        ("KMSInvalidState", True, "target"),
        ("NotFound", True, "target"),
    ],
)
def test_what_one_entry_refused_in_an_answer_says(code: str, sender_fault: bool, cause: str) -> None:
    assert entry_error_cause(code, sender_fault=sender_fault) == cause
