"""The pacer of endpoints with a `rate_limit`, shared by every delivery function: the next free slot is
`pace_next_ms` (epoch milliseconds) on the endpoint's own item, moved by one conditional UpdateItem per slot.

- The slot has come (no `pace_next_ms`, or it is not later than now), or the endpoint's rate changed (the interval
  kept beside it, `pace_interval_ms`, is another: slots reserved at the old rate are not waited for): SET it to now +
  the interval, under that very condition; the slot is now.
- It is later: ADD the interval, under the condition that it still is, and answer the value before (the slot
  reserved). Concurrent reservations each get a slot of their own, one interval apart: DynamoDB applies the
  updates of one item one after the other.

Each tries the case it last saw first (a paced burst goes straight to ADD), so a reservation is one call; a failed
condition means the other case holds, and it tries that. Both require the endpoint's item to exist (`pk`): a
deleted endpoint's pacing writes nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from genviral_relay.aws.dynamodb_items import is_condition_failure
from genviral_relay.aws.webhook_counts import endpoint_item_key
from genviral_relay.rules.pacing import pace_interval_ms
from genviral_relay.webhooks.ports import DeliveryPacer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

TRIES = 4
"""A condition fails only when the other case holds: a few tries settle it; past them (the endpoint deleted) the
delivery goes now, as an unpaced one would, and the attempt finds the endpoint gone."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class DynamoDbPacer(DeliveryPacer):
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._busy: dict[str, bool] = {}
        self._lock = threading.Lock()

    def reserve(self, webhook_id: str, rate_limit: float, now: datetime) -> datetime:
        interval = pace_interval_ms(rate_limit)
        with self._lock:
            busy = self._busy.get(webhook_id, False)
        for _ in range(TRIES):
            slot = self._reserve_later(webhook_id, interval, now) if busy else self._take_now(webhook_id, interval, now)
            if slot is not None:
                with self._lock:
                    self._busy[webhook_id] = slot > now
                return slot
            busy = not busy
        return now

    def _take_now(self, webhook_id: str, interval: int, now: datetime) -> datetime | None:
        request = {
            "UpdateExpression": "SET pace_next_ms = :next, pace_interval_ms = :interval",
            "ConditionExpression": "attribute_exists(pk) AND (attribute_not_exists(pace_next_ms) "
            "OR pace_next_ms <= :now OR attribute_not_exists(pace_interval_ms) OR pace_interval_ms <> :interval)",
            "ExpressionAttributeValues": {
                ":next": {"N": str(_ms(now) + interval)},
                ":now": {"N": str(_ms(now))},
                ":interval": {"N": str(interval)},
            },
        }
        return now if self._update(webhook_id, request) is not None else None

    def _reserve_later(self, webhook_id: str, interval: int, now: datetime) -> datetime | None:
        request = {
            "UpdateExpression": "ADD pace_next_ms :interval",
            "ConditionExpression": "attribute_exists(pk) AND pace_next_ms > :now AND pace_interval_ms = :interval",
            "ExpressionAttributeValues": {":interval": {"N": str(interval)}, ":now": {"N": str(_ms(now))}},
            "ReturnValues": "UPDATED_OLD",
        }
        answer = self._update(webhook_id, request)
        if answer is None:
            return None
        slot_ms = int(answer["Attributes"]["pace_next_ms"]["N"])
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=slot_ms)

    def _update(self, webhook_id: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """The answer of one conditional update; None when its condition failed."""
        try:
            answer: dict[str, Any] = self._client.update_item(  # type: ignore[assignment]
                TableName=self._table, Key=endpoint_item_key(webhook_id), **request
            )
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return answer
