"""Event publishers: EventBridge `PutEvents` and SNS `PublishBatch`, 10 entries per call.

Both APIs answer HTTP 200 with per-entry failures. Retryable ones (throttling, internal errors)
are sent again with capped, jittered backoff; the rest are reported, never dropped: the caller
keeps them in the outbox.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from genviral_relay.logic.ports import EventPublisher, PublishFailure, PublishResult
from genviral_relay.models.domain import Target
from genviral_relay.models.events import EVENT_SOURCE, RelayEvent

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_sns.client import SNSClient

BATCH_SIZE = 10
MAX_ENTRY_BYTES = 256 * 1024  # both services' default per-entry limit
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "Throttled",
        "InternalFailure",
        "InternalError",
        "InternalException",
        "ServiceUnavailable",
        "KMSThrottling",
    }
)


@dataclass
class ChunkAnswer:
    """What one call made of its entries."""

    delivered: set[str] = field(default_factory=set)
    retry: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 4
    base_delay: float = 0.1
    max_delay: float = 2.0


class _BatchPublisher(EventPublisher):
    def __init__(self, *, retry: RetrySettings | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._retry = retry or RetrySettings()
        self._sleep = sleep

    def publish(self, events: Sequence[RelayEvent]) -> PublishResult:
        result = PublishResult()
        sendable = []
        for event in events:
            size = self._entry_size(event)
            if size > MAX_ENTRY_BYTES:
                result.failed[event.event_id] = PublishFailure(f"entry is {size} bytes, over the limit", False)
            else:
                sendable.append(event)
        for start in range(0, len(sendable), BATCH_SIZE):
            self._publish_chunk(sendable[start : start + BATCH_SIZE], result)
        return result

    def _publish_chunk(self, chunk: list[RelayEvent], result: PublishResult) -> None:
        pending = chunk
        reasons: dict[str, str] = {}
        for attempt in range(self._retry.max_attempts):
            if attempt:
                ceiling = min(self._retry.max_delay, self._retry.base_delay * 2**attempt)
                self._sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not security
            try:
                answer = self._send(pending)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "ClientError")
                if code not in RETRYABLE_CODES:
                    for event in pending:
                        result.failed[event.event_id] = PublishFailure(code, False)
                    return
                answer = ChunkAnswer(retry={event.event_id: code for event in pending})
            except BotoCoreError as error:
                answer = ChunkAnswer(retry={event.event_id: type(error).__name__ for event in pending})
            result.delivered |= answer.delivered
            for event_id, reason in answer.failed.items():
                result.failed[event_id] = PublishFailure(reason, False)
            reasons = answer.retry
            pending = [event for event in pending if event.event_id in answer.retry]
            if not pending:
                return
        for event in pending:
            result.failed[event.event_id] = PublishFailure(reasons.get(event.event_id, "retries exhausted"), True)

    def _entry_size(self, event: RelayEvent) -> int:
        raise NotImplementedError

    def _send(self, events: list[RelayEvent]) -> ChunkAnswer:
        raise NotImplementedError


class EventBridgePublisher(_BatchPublisher):
    target: Target = "eventbridge"

    def __init__(self, client: EventBridgeClient, bus_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._bus_name = bus_name

    def _entry_size(self, event: RelayEvent) -> int:
        # PutEvents entry size: 14 bytes for Time plus the UTF-8 bytes of Source, DetailType and Detail.
        return 14 + len(EVENT_SOURCE.encode()) + len(event.detail_type.encode()) + len(_document(event))

    def _send(self, events: list[RelayEvent]) -> ChunkAnswer:
        answer = self._client.put_events(
            Entries=[
                {
                    "EventBusName": self._bus_name,
                    "Source": EVENT_SOURCE,
                    "DetailType": event.detail_type,
                    "Detail": _document(event).decode(),
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
                outcome.delivered.add(event.event_id)
            elif code in RETRYABLE_CODES:
                outcome.retry[event.event_id] = code
            else:
                outcome.failed[event.event_id] = f"{code}: {entry.get('ErrorMessage', '')}".strip()
        answered = len(answer.get("Entries", []))
        for event in events[answered:]:
            outcome.retry[event.event_id] = "no entry in the answer"
        return outcome


class SnsPublisher(_BatchPublisher):
    target: Target = "sns"

    def __init__(self, client: SNSClient, topic_arn: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._topic_arn = topic_arn

    def _entry_size(self, event: RelayEvent) -> int:
        attributes = sum(len(name) + len(value) + len("String") for name, value in event.sns_attributes().items())
        return len(_document(event)) + attributes

    def _send(self, events: list[RelayEvent]) -> ChunkAnswer:
        answer = self._client.publish_batch(
            TopicArn=self._topic_arn,
            PublishBatchRequestEntries=[
                {
                    "Id": event.event_id,
                    "Message": _document(event).decode(),
                    "MessageAttributes": {
                        name: {"DataType": "String", "StringValue": value}
                        for name, value in event.sns_attributes().items()
                    },
                }
                for event in events
            ],
        )
        outcome = ChunkAnswer(delivered={entry["Id"] for entry in answer.get("Successful", [])})
        for entry in answer.get("Failed", []):
            reason = f"{entry.get('Code', 'Failed')}: {entry.get('Message', '')}".strip()
            if entry.get("SenderFault"):
                outcome.failed[entry["Id"]] = reason
            else:
                outcome.retry[entry["Id"]] = reason
        for event in events:
            if event.event_id not in outcome.delivered | outcome.failed.keys() | outcome.retry.keys():
                outcome.retry[event.event_id] = "no entry in the answer"
        return outcome


def _document(event: RelayEvent) -> bytes:
    return json.dumps(event.model_dump(mode="json"), separators=(",", ":"), sort_keys=True).encode()
