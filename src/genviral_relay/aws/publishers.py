"""Event publishers: EventBridge `PutEvents`, SNS `PublishBatch` and SQS `SendMessageBatch` to the webhooks'
fan-out queue, in batches (`batch_publishing.py`), each failure classified as `publish_errors.py` says."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genviral_relay.aws.batch_publishing import BatchPublisher, ChunkAnswer
from genviral_relay.aws.publish_errors import entry_error_cause, failure_reason
from genviral_relay.models.domain import Target
from genviral_relay.models.events import EVENT_SOURCE, PublishedEvent, published_document

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sqs.client import SQSClient


class EventBridgePublisher(BatchPublisher):
    target: Target = "eventbridge"

    def __init__(self, client: EventBridgeClient, bus_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._bus_name = bus_name

    def _entry_size(self, event: PublishedEvent) -> int:
        # PutEvents entry size: 14 bytes for Time plus the UTF-8 bytes of Source, DetailType and Detail.
        return 14 + len(EVENT_SOURCE.encode()) + len(event.detail_type.encode()) + len(published_document(event))

    def _send(self, events: list[PublishedEvent]) -> ChunkAnswer:
        answer = self._client.put_events(
            Entries=[
                {
                    "EventBusName": self._bus_name,
                    "Source": EVENT_SOURCE,
                    "DetailType": event.detail_type,
                    "Detail": published_document(event).decode(),
                    "Resources": [],
                }
                for event in events
            ]
        )
        outcome = ChunkAnswer()
        # Entries come back in request order, one per entry.
        for event, entry in zip(events, answer.get("Entries", []), strict=False):
            code = entry.get("ErrorCode")
            if not code and entry.get("EventId"):
                outcome.published.add(event.event_id)
            elif not code:
                outcome.retry[event.event_id] = "no event id in the answer"
            else:
                reason = failure_reason(code, entry.get("ErrorMessage", ""))
                outcome.add(event.event_id, entry_error_cause(code), reason)
        answered = len(answer.get("Entries", []))
        for event in events[answered:]:
            outcome.retry[event.event_id] = "no entry in the answer"
        return outcome


class SnsPublisher(BatchPublisher):
    target: Target = "sns"

    def __init__(self, client: SNSClient, topic_arn: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._topic_arn = topic_arn

    def _entry_size(self, event: PublishedEvent) -> int:
        attributes = sum(len(name) + len(value) + len("String") for name, value in event.sns_attributes().items())
        return len(published_document(event)) + attributes

    def _send(self, events: list[PublishedEvent]) -> ChunkAnswer:
        answer = self._client.publish_batch(
            TopicArn=self._topic_arn,
            PublishBatchRequestEntries=[
                {
                    "Id": event.event_id,
                    "Message": published_document(event).decode(),
                    "MessageAttributes": {
                        name: {"DataType": "String", "StringValue": value}
                        for name, value in event.sns_attributes().items()
                    },
                }
                for event in events
            ],
        )
        return _batch_outcome(answer, events)


class WebhookFanoutPublisher(BatchPublisher):
    """The webhooks' target: each event document, as the endpoints will receive it, on the fan-out queue (its
    `event_id` and `event_type` as message attributes); the dispatcher makes one delivery per endpoint of it."""

    target: Target = "webhooks"
    DELIVERY_HEADROOM = 1024
    """A delivery message carries the document with a few more attributes than this one: keep room for them."""

    def __init__(self, client: SQSClient, queue_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._queue_url = queue_url

    def _entry_size(self, event: PublishedEvent) -> int:
        return len(published_document(event)) + self.DELIVERY_HEADROOM

    def _send(self, events: list[PublishedEvent]) -> ChunkAnswer:
        answer = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {
                    "Id": event.event_id,
                    "MessageBody": published_document(event).decode(),
                    "MessageAttributes": {
                        "event_id": {"DataType": "String", "StringValue": event.event_id},
                        "event_type": {"DataType": "String", "StringValue": event.event_type},
                    },
                }
                for event in events
            ],
        )
        return _batch_outcome(answer, events)


def _batch_outcome(answer: Any, events: list[PublishedEvent]) -> ChunkAnswer:
    """SNS `PublishBatch` and SQS `SendMessageBatch` answer alike: `Successful[].Id`, `Failed[]` with `Code`,
    `Message` and `SenderFault`, entries named by the event id."""
    outcome = ChunkAnswer(published={entry["Id"] for entry in answer.get("Successful", [])})
    for entry in answer.get("Failed", []):
        code = entry.get("Code") or "Failed"
        cause = entry_error_cause(code, sender_fault=bool(entry.get("SenderFault")))
        outcome.add(entry["Id"], cause, failure_reason(code, entry.get("Message", "")))
    answered = outcome.published | outcome.retry.keys() | outcome.kept.keys() | outcome.failed.keys()
    for event in events:
        if event.event_id not in answered:
            outcome.retry[event.event_id] = "no entry in the answer"
    return outcome
