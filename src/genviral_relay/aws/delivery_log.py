"""Each delivery's state and each endpoint's attempt log, in the state table (kept as long as the events: TTL
`expires_at`, the record's time plus the events' retention).

- Delivery state: `pk = "DELIVERY#<event_id>"`, `sk = <webhook_id>`; state, attempts, last_attempt_at,
  next_attempt_at, last_status.
- Attempt log: `pk = "ATTEMPTS#<webhook_id>"`, `sk = AttemptEntry.position` (time, event, attempt: newest first is
  descending key order); the entry's fields.

An attempt writes both in one BatchWriteItem (one call, two writes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from genviral_relay.aws.dynamodb_items import paginated
from genviral_relay.clock import format_ts_or_none, parse_ts, utc_now
from genviral_relay.models.event_log import (
    ATTEMPTS_READ_AT_MOST,
    AttemptEntry,
    AttemptOutcome,
    AttemptPage,
    DeliveryState,
)
from genviral_relay.webhooks.ports import DeliveryLog

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BATCH_WRITE_LIMIT = 25
UNPROCESSED_RETRIES = 3


def _number(value: int | None) -> dict[str, str] | None:
    return {"N": str(value)} if value is not None else None


def _string(value: str | None) -> dict[str, str] | None:
    return {"S": value} if value is not None else None


def _item(values: dict[str, dict[str, str] | None]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


class DynamoDbDeliveryLog(DeliveryLog):
    def __init__(self, client: DynamoDBClient, table_name: str, *, event_retention: timedelta) -> None:
        self._client = client
        self._table = table_name
        self._retention = event_retention

    def _expires(self, moment: datetime) -> dict[str, str]:
        return {"N": str(int((moment + self._retention).timestamp()))}

    def record_attempt(self, attempt: AttemptEntry, state: DeliveryState) -> None:
        entry = _item(
            {
                "pk": _string(f"ATTEMPTS#{attempt.webhook_id}"),
                "sk": _string(attempt.position),
                "event_id": _string(attempt.event_id),
                "event_type": _string(attempt.event_type),
                "attempt": _number(attempt.attempt),
                "at": _string(format_ts_or_none(attempt.at)),
                "status": _number(attempt.status),
                "duration_ms": _number(attempt.duration_ms),
                "outcome": _string(attempt.outcome),
                "reason": _string(attempt.reason),
                "expires_at": self._expires(attempt.at),
            }
        )
        self._write([entry, self._state_item(state, attempt.at)])

    def record_states(self, states: Sequence[DeliveryState]) -> None:
        # One delivery once, its last state: the same event twice in a fan-out batch would name a key twice, and
        # DynamoDB refuses such a batch whole.
        latest = {(state.event_id, state.webhook_id): state for state in states}
        items = [self._state_item(state, state.last_attempt_at) for state in latest.values()]
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            self._write(items[start : start + BATCH_WRITE_LIMIT])

    def _state_item(self, state: DeliveryState, at: datetime | None) -> dict[str, Any]:
        moment = at or utc_now()  # a state decided without an attempt (filtered, disabled) is kept from now
        return _item(
            {
                "pk": _string(f"DELIVERY#{state.event_id}"),
                "sk": _string(state.webhook_id),
                "state": _string(state.state),
                "attempts": _number(state.attempts),
                "last_attempt_at": _string(format_ts_or_none(state.last_attempt_at)),
                "next_attempt_at": _string(format_ts_or_none(state.next_attempt_at)),
                "last_status": _number(state.last_status),
                "expires_at": self._expires(moment),
            }
        )

    def _write(self, items: list[dict[str, Any]]) -> None:
        """One BatchWriteItem; what DynamoDB leaves unprocessed is sent again a few times, then it raises."""
        requests: dict[str, Any] = {self._table: [{"PutRequest": {"Item": item}} for item in items]}
        for _ in range(UNPROCESSED_RETRIES):
            answer = self._client.batch_write_item(RequestItems=requests)
            requests = dict(answer.get("UnprocessedItems") or {})
            if not requests:
                return
        raise RuntimeError(f"DynamoDB left {len(requests.get(self._table, []))} delivery records unprocessed")

    def deliveries(self, event_id: str) -> list[DeliveryState]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"DELIVERY#{event_id}"}},
            "ConsistentRead": True,
        }
        return [_state_from(event_id, item) for item in paginated(self._client.query, request)]

    def attempts(
        self, webhook_id: str, *, before: str | None, limit: int, outcome: AttemptOutcome | None = None
    ) -> AttemptPage:
        """Newest first; the outcome is picked here, not by a FilterExpression, so that `reached` is exactly the
        last entry read (DynamoDB's Limit counts entries before a filter)."""
        values: dict[str, Any] = {":pk": {"S": f"ATTEMPTS#{webhook_id}"}}
        condition = "pk = :pk"
        if before is not None:
            condition += " AND sk < :before"
            values[":before"] = {"S": before}
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        found: list[AttemptEntry] = []
        read = 0
        while True:
            request["Limit"] = limit if outcome is None else min(ATTEMPTS_READ_AT_MOST - read, 200)
            answer = self._client.query(**request)
            for item in answer.get("Items", []):
                read += 1
                entry = _attempt_from(webhook_id, item)
                if outcome is None or entry.outcome == outcome:
                    found.append(entry)
                if len(found) == limit or read == ATTEMPTS_READ_AT_MOST:
                    return AttemptPage(entries=found, reached=item["sk"]["S"])
            if "LastEvaluatedKey" not in answer:
                return AttemptPage(entries=found, reached=None)
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def _optional_int(item: dict[str, Any], name: str) -> int | None:
    return int(item[name]["N"]) if name in item else None


def _state_from(event_id: str, item: dict[str, Any]) -> DeliveryState:
    return DeliveryState(
        webhook_id=item["sk"]["S"],
        event_id=event_id,
        state=item["state"]["S"],
        attempts=_optional_int(item, "attempts") or 0,
        last_attempt_at=parse_ts(item.get("last_attempt_at", {}).get("S")),
        next_attempt_at=parse_ts(item.get("next_attempt_at", {}).get("S")),
        last_status=_optional_int(item, "last_status"),
    )


def _attempt_from(webhook_id: str, item: dict[str, Any]) -> AttemptEntry:
    return AttemptEntry(
        webhook_id=webhook_id,
        event_id=item["event_id"]["S"],
        event_type=item["event_type"]["S"],
        attempt=int(item["attempt"]["N"]),
        at=parse_ts(item["at"]["S"]),  # type: ignore[arg-type]  # written by record_attempt: always a moment
        status=_optional_int(item, "status"),
        duration_ms=int(item["duration_ms"]["N"]),
        outcome=item["outcome"]["S"],
        reason=item.get("reason", {}).get("S"),
    )
