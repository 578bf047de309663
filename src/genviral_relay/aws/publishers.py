"""Event publishers: EventBridge `PutEvents`, SNS `PublishBatch` and SQS `SendMessageBatch` to the webhooks'
fan-out queue, up to 10 entries and 256 KiB a call.

What a failure says decides what becomes of the event (`PublishFailure.retryable`):

- Transient (throttling, internal errors, HTTP 429 and 5xx, connection errors and timeouts; for the
  whole call or one entry): sent again here with capped, jittered backoff; still failing after the
  last attempt, kept in the outbox.
- The target refuses the call as a whole (the topic or the bus is missing: `NotFound`,
  `ResourceNotFoundException`; `AuthorizationError`, `AccessDenied(Exception)`, KMS errors, an
  expired or unknown key, or any code not known as a validation error): every event of the call is
  kept in the outbox at once (retrying within the call would not help). The next checks retry with
  back-off, and the same documents go out, under the same ids, once the target is back.
- An entry refused in a 200 answer for a reason of its own (EventBridge `MalformedDetail`,
  `ValidationException`; SNS `Failed[]` with `SenderFault`): that event is refused for good (the
  caller parks it in the dead-letter queue), unless the code is one of the target's own
  (`AccessDeniedException`, `NotAuthorizedForSourceException`, KMS...): then it is kept.
- The call refused as a whole for a validation reason (`InvalidParameter`, `ValidationException`,
  a request too long, HTTP 413): one entry is bad, or the batch too large. The batch is split in
  halves until the bad entry is alone, which is then refused for good; the rest is published. A
  validation error that names the topic or the bus is the target's, not an entry's: kept.
- An entry over 256 KiB is refused for good before any call.

Reasons carry the error code, and for an entry refused for good the start of the service's message;
never an event's body.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from genviral_relay.checking.ports import EventPublisher, PublishFailure, PublishResult
from genviral_relay.models.domain import Target
from genviral_relay.models.events import EVENT_SOURCE, RelayEvent

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sqs.client import SQSClient

BATCH_SIZE = 10
MAX_ENTRY_BYTES = 256 * 1024  # both services' default per-entry limit
MAX_REQUEST_BYTES = 256 * 1024  # and the limit of all the entries of one call together
MAX_MESSAGE_CHARS = 200  # of a service's error message kept in a reason: some quote the value refused
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "Throttled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalFailure",
        "InternalError",
        "InternalException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottling",
        "KMSThrottlingException",
    }
)
"""Transient failures, of a call or of one entry: worth sending again at once."""
VALIDATION_CODES = frozenset(
    {
        "InvalidParameter",
        "InvalidParameterValue",
        "ValidationException",
        "ValidationError",
        "BatchRequestTooLong",
        "TooManyEntriesInBatchRequest",
        "RequestEntityTooLarge",
    }
)
"""A call refused as a whole for what its entries hold: split the batch to find the bad one."""
TARGET_CODES = frozenset(
    {
        "NotFound",
        "NotFoundException",
        "ResourceNotFound",
        "ResourceNotFoundException",
        "InvalidEventBusNameException",
        "InvalidAccountIdException",
        "AuthorizationError",
        "AccessDenied",
        "AccessDeniedException",
        "NotAuthorized",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        "InvalidSecurity",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "OptInRequired",
    }
)
"""The target (or the relay's access to it) refuses: no entry is at fault, even when one entry reports it.
Codes starting with `KMS` count too (an encrypted topic or bus whose key cannot be used)."""
_TARGET_PARAMETERS = ("topicarn", "eventbusname")  # a validation error about these is the target's

Cause = Literal["transient", "target", "entry"]
"""Why something failed: worth retrying now, the target refuses (keep), an entry is at fault."""


def call_error_cause(error: ClientError) -> Cause:
    """What a call refused as a whole says: retry it, keep its events, or split it (an entry is at fault)."""
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in RETRYABLE_CODES or status == 429 or status >= 500:
        return "transient"
    if code in VALIDATION_CODES or status == 413:
        message = details.get("Message", "").lower().replace(" ", "")
        return "target" if any(name in message for name in _TARGET_PARAMETERS) else "entry"
    return "target"  # missing, denied, KMS, or unknown: never a reason to drop an event


def entry_error_cause(code: str, *, sender_fault: bool = True) -> Cause:
    """What one entry's failure in a 200 answer says (SNS: `sender_fault` as `Failed[].SenderFault`)."""
    if code in RETRYABLE_CODES or not sender_fault:
        return "transient"
    if code in TARGET_CODES or code.startswith("KMS"):
        return "target"
    return "entry"


def _reason(code: str, message: str) -> str:
    return f"{code}: {message[:MAX_MESSAGE_CHARS]}".strip().rstrip(":")


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code") or "ClientError"


def _call_reason(error: ClientError) -> str:
    return _reason(_code(error), error.response.get("Error", {}).get("Message", ""))


@dataclass
class ChunkAnswer:
    """What one call made of its entries."""

    delivered: set[str] = field(default_factory=set)
    retry: dict[str, str] = field(default_factory=dict)
    """Transient failures: sent again in this publish."""
    kept: dict[str, str] = field(default_factory=dict)
    """Refused by the target, not for anything of their own: kept in the outbox."""
    failed: dict[str, str] = field(default_factory=dict)
    """Refused for good, for what they hold."""

    def add(self, event_id: str, cause: Cause, reason: str) -> None:
        {"transient": self.retry, "target": self.kept, "entry": self.failed}[cause][event_id] = reason


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
                sendable.append((event, size))
        for chunk in _chunks(sendable):
            self._publish_chunk(chunk, result)
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
                cause = call_error_cause(error)
                if cause == "entry":
                    self._split(pending, _call_reason(error), result)
                    return
                answer = ChunkAnswer()
                for event in pending:
                    answer.add(event.event_id, cause, _code(error))
            except BotoCoreError as error:  # no answer at all: endpoint unreachable, timeout, reset
                answer = ChunkAnswer(retry={event.event_id: type(error).__name__ for event in pending})
            result.delivered |= answer.delivered
            for event_id, reason in answer.failed.items():
                result.failed[event_id] = PublishFailure(reason, False)
            for event_id, reason in answer.kept.items():
                result.failed[event_id] = PublishFailure(reason, True)
            reasons = answer.retry
            pending = [event for event in pending if event.event_id in answer.retry]
            if not pending:
                return
        for event in pending:
            result.failed[event.event_id] = PublishFailure(reasons.get(event.event_id, "retries exhausted"), True)

    def _split(self, events: list[RelayEvent], reason: str, result: PublishResult) -> None:
        """A call refused for what its entries hold: publish each half on its own, down to the bad entry."""
        if len(events) == 1:
            result.failed[events[0].event_id] = PublishFailure(reason, False)
            return
        half = len(events) // 2
        self._publish_chunk(events[:half], result)
        self._publish_chunk(events[half:], result)

    def _entry_size(self, event: RelayEvent) -> int:
        raise NotImplementedError

    def _send(self, events: list[RelayEvent]) -> ChunkAnswer:
        raise NotImplementedError


def _chunks(sized: list[tuple[RelayEvent, int]]) -> Iterator[list[RelayEvent]]:
    """Consecutive batches of at most `BATCH_SIZE` entries and `MAX_REQUEST_BYTES` together."""
    chunk: list[RelayEvent] = []
    total = 0
    for event, size in sized:
        if chunk and (len(chunk) == BATCH_SIZE or total + size > MAX_REQUEST_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(event)
        total += size
    if chunk:
        yield chunk


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
            elif not code:
                outcome.retry[event.event_id] = "no event id in the answer"
            else:
                outcome.add(event.event_id, entry_error_cause(code), _reason(code, entry.get("ErrorMessage", "")))
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
        return _batch_outcome(answer, events)


class WebhookFanoutPublisher(_BatchPublisher):
    """The webhooks' target: each event document, as the endpoints will receive it, on the fan-out queue (its
    `event_id` and `event_type` as message attributes); the dispatcher makes one delivery per endpoint of it."""

    target: Target = "webhooks"
    DELIVERY_HEADROOM = 1024
    """A delivery message carries the document with a few more attributes than this one: keep room for them."""

    def __init__(self, client: SQSClient, queue_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._queue_url = queue_url

    def _entry_size(self, event: RelayEvent) -> int:
        return len(_document(event)) + self.DELIVERY_HEADROOM

    def _send(self, events: list[RelayEvent]) -> ChunkAnswer:
        answer = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {
                    "Id": event.event_id,
                    "MessageBody": _document(event).decode(),
                    "MessageAttributes": {
                        "event_id": {"DataType": "String", "StringValue": event.event_id},
                        "event_type": {"DataType": "String", "StringValue": event.event_type},
                    },
                }
                for event in events
            ],
        )
        return _batch_outcome(answer, events)


def _batch_outcome(answer: Any, events: list[RelayEvent]) -> ChunkAnswer:
    """SNS `PublishBatch` and SQS `SendMessageBatch` answer alike: `Successful[].Id`, `Failed[]` with `Code`,
    `Message` and `SenderFault`, entries named by the event id."""
    outcome = ChunkAnswer(delivered={entry["Id"] for entry in answer.get("Successful", [])})
    for entry in answer.get("Failed", []):
        code = entry.get("Code") or "Failed"
        cause = entry_error_cause(code, sender_fault=bool(entry.get("SenderFault")))
        outcome.add(entry["Id"], cause, _reason(code, entry.get("Message", "")))
    answered = outcome.delivered | outcome.retry.keys() | outcome.kept.keys() | outcome.failed.keys()
    for event in events:
        if event.event_id not in answered:
            outcome.retry[event.event_id] = "no entry in the answer"
    return outcome


def _document(event: RelayEvent) -> bytes:
    return json.dumps(event.model_dump(mode="json"), separators=(",", ":"), sort_keys=True).encode()
