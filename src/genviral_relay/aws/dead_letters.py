"""The events dead-letter queue: events a target refused for good (oversize, malformed, denied)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from genviral_relay.checking.ports import DeadLetters
from genviral_relay.clock import Clock, format_ts
from genviral_relay.errors import DeadLetterError
from genviral_relay.models.domain import Target
from genviral_relay.models.events import RelayEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


class SqsDeadLetters(DeadLetters):
    def __init__(self, client: SQSClient, queue_url: str, *, clock: Clock) -> None:
        self._client = client
        self._queue_url = queue_url
        self._clock = clock

    def park(self, event: RelayEvent, target: Target, reason: str) -> None:
        body: dict[str, object] = {
            "target": target,
            "reason": reason,
            "parked_at": format_ts(self._clock()),
            "event": event.model_dump(mode="json"),
        }
        try:
            self._send(event, target, body)
        except (ClientError, BotoCoreError) as error:
            raise DeadLetterError(f"the events dead-letter queue refused the event: {type(error).__name__}") from None

    def _send(self, event: RelayEvent, target: Target, body: dict[str, object]) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(body, separators=(",", ":")),
            MessageAttributes={
                "target": {"DataType": "String", "StringValue": target},
                "event_id": {"DataType": "String", "StringValue": event.event_id},
                "post_id": {"DataType": "String", "StringValue": event.post_id},
            },
        )
