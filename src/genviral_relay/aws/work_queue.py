"""The SQS work queue between the poller and the workers: one message per post to check, per retry
sweep, per discover run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from genviral_relay.aws.sqs import BATCH_LIMIT
from genviral_relay.errors import EnqueueError
from genviral_relay.models.messages import WorkRequest
from genviral_relay.observability import logger
from genviral_relay.polling.ports import WorkQueue

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageBatchRequestEntryTypeDef

SEND_ATTEMPTS = 3
CORRELATION_ATTRIBUTE = "correlation_id"
"""Message attribute tying a check to the tick that queued it (transport metadata, not part of the request)."""


class SqsWorkQueue(WorkQueue):
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        batch: list[WorkRequest] = []
        sent = 0
        for request in requests:
            batch.append(request)
            if len(batch) == BATCH_LIMIT:
                sent += self._send_batch(batch, correlation_id)
                batch = []
        if batch:
            sent += self._send_batch(batch, correlation_id)
        return sent

    def backlog(self) -> int | None:
        try:
            attributes = self._client.get_queue_attributes(
                QueueUrl=self._queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            ).get("Attributes", {})
            return sum(int(value) for value in attributes.values())
        except (BotoCoreError, ClientError, ValueError) as error:
            # Backpressure is an optimisation: without the counts the tick queues everything due.
            logger.warning("Work queue backlog unknown", extra={"error_type": type(error).__name__})
            return None

    def _send_batch(self, batch: list[WorkRequest], correlation_id: str | None) -> int:
        attributes: dict[str, MessageAttributeValueTypeDef] = (
            {CORRELATION_ATTRIBUTE: {"DataType": "String", "StringValue": correlation_id}} if correlation_id else {}
        )
        entries: dict[str, SendMessageBatchRequestEntryTypeDef] = {
            str(index): {
                "Id": str(index),
                "MessageBody": request.model_dump_json(exclude_none=True),
                "MessageAttributes": attributes,
            }
            for index, request in enumerate(batch)
        }
        for _ in range(SEND_ATTEMPTS):
            answer = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=list(entries.values()))
            for entry in answer.get("Successful", []):
                entries.pop(entry["Id"], None)
            permanent = [entry for entry in answer.get("Failed", []) if entry.get("SenderFault")]
            if permanent:
                raise EnqueueError(f"SQS refused {len(permanent)} messages: {permanent[0].get('Code')}")
            if not entries:
                return len(batch)
        raise EnqueueError(f"{len(entries)} check requests could not be queued")
