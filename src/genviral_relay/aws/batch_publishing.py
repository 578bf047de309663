"""Publishing in batches, as EventBridge `PutEvents`, SNS `PublishBatch` and SQS `SendMessageBatch` take
them: up to 10 entries and 256 KiB a call. Transient failures are sent again with capped, jittered backoff; a
call refused for what its entries hold is split in halves down to the bad entry; an entry over 256 KiB is
refused for good before any call (`publish_errors.py` says which failure is which).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from genviral_relay.aws.publish_errors import Cause, call_error_cause, call_failure_reason, error_code
from genviral_relay.aws.sqs import BATCH_LIMIT  # the three targets' batch calls take as many
from genviral_relay.checking.ports import EventPublisher, PublishFailure, PublishResult
from genviral_relay.models.events import PublishedEvent
from genviral_relay.webhooks.ports import NoticePublisher

MAX_ENTRY_BYTES = 256 * 1024  # each service's default per-entry limit
MAX_REQUEST_BYTES = 256 * 1024  # and the limit of all the entries of one call together


@dataclass
class ChunkAnswer:
    """What one call made of its entries."""

    published: set[str] = field(default_factory=set)
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


class BatchPublisher(EventPublisher, NoticePublisher):
    """A target's publisher: `_entry_size` and `_send` (one call) are the target's own."""

    def __init__(self, *, retry: RetrySettings | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._retry = retry or RetrySettings()
        self._sleep = sleep

    def publish(self, events: Sequence[PublishedEvent]) -> PublishResult:
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

    def _publish_chunk(self, chunk: list[PublishedEvent], result: PublishResult) -> None:
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
                    self._split(pending, call_failure_reason(error), result)
                    return
                answer = ChunkAnswer()
                for event in pending:
                    answer.add(event.event_id, cause, error_code(error))
            except BotoCoreError as error:  # no answer at all: endpoint unreachable, timeout, reset
                answer = ChunkAnswer(retry={event.event_id: type(error).__name__ for event in pending})
            result.published |= answer.published
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

    def _split(self, events: list[PublishedEvent], reason: str, result: PublishResult) -> None:
        """A call refused for what its entries hold: publish each half on its own, down to the bad entry."""
        if len(events) == 1:
            result.failed[events[0].event_id] = PublishFailure(reason, False)
            return
        half = len(events) // 2
        self._publish_chunk(events[:half], result)
        self._publish_chunk(events[half:], result)

    def _entry_size(self, event: PublishedEvent) -> int:
        raise NotImplementedError

    def _send(self, events: list[PublishedEvent]) -> ChunkAnswer:
        raise NotImplementedError


def _chunks(sized: list[tuple[PublishedEvent, int]]) -> Iterator[list[PublishedEvent]]:
    """Consecutive batches of at most `BATCH_LIMIT` entries and `MAX_REQUEST_BYTES` together."""
    chunk: list[PublishedEvent] = []
    total = 0
    for event, size in sized:
        if chunk and (len(chunk) == BATCH_LIMIT or total + size > MAX_REQUEST_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(event)
        total += size
    if chunk:
        yield chunk
