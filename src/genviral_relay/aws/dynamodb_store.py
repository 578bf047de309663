"""The watch store in one DynamoDB table.

Items (partition key `pk` = post id):
- `sk = "WATCH"`: the watch: last-seen states, `version` (optimistic lock), `outbox` (a string
  set of pending "target:event_id" deliveries) and the schedule. While the watch is due for
  checks or owes events it carries `due_shard` + `next_check_at`, the keys of the sparse `due`
  index the poller queries. Once its post's `created_at` is known it carries `created_partition` +
  `created_ts`, the keys of the `created` index (what the relay knows of the workspace's creation
  windows, `polling/bulk_refresh.py`); they never change after, so later saves write nothing to it.
- `sk = "EVENT#<event_id>"`: the event document, kept for `event_retention` (TTL `expires_at`).
- `pk = "relay"`: the deployment's own items, `sk = "GENVIRAL_PAUSE"` (calls stopped after a
  refused key), `sk = "DISCOVER"` (how far discover mode has listed the workspace) and
  `sk = "ACCOUNT_DIRECTORY"` (the accounts `GET /accounts` listed, as JSON: about 150 bytes an account,
  so thousands fit in an item).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from genviral_relay.checking.ports import EventSelection, OperatorQueries, RelayState, WatchStore
from genviral_relay.clock import Clock, format_ts, format_ts_or_none, parse_ts
from genviral_relay.errors import StateConflictError
from genviral_relay.models.domain import (
    AccountDirectory,
    AccountSnapshot,
    DiscoverState,
    DueWatch,
    PendingDelivery,
    WatchRecord,
)
from genviral_relay.models.events import RelayEvent, parse_event
from genviral_relay.observability import logger
from genviral_relay.polling.ports import WatchIndex

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

WATCH_SK = "WATCH"
PAUSE_KEY = {"pk": {"S": "relay"}, "sk": {"S": "GENVIRAL_PAUSE"}}
DISCOVER_KEY = {"pk": {"S": "relay"}, "sk": {"S": "DISCOVER"}}
ACCOUNT_DIRECTORY_KEY = {"pk": {"S": "relay"}, "sk": {"S": "ACCOUNT_DIRECTORY"}}
EVENT_SK_PREFIX = "EVENT#"
DUE_INDEX = "due"
DUE_SHARDS = 4  # spreads the due index over partitions; the poller queries each shard
# Watches the retry sweep covers; next_check_at is their own next check, as for any watch.
RETRY_SHARD = "retry"
BATCH_GET_LIMIT = 100
MAX_UNPROCESSED_ROUNDS = 5
CREATED_INDEX = "created"
CREATED_PARTITION = "posts"
"""The created index's one partition: it is written once per post and read only by the poller."""
MAX_IN_OPERANDS = 100  # DynamoDB's limit for IN; a longer list is filtered after reading

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def due_shard(post_id: str) -> str:
    return str(zlib.crc32(post_id.encode()) % DUE_SHARDS)


def _to_item(values: dict[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the relay stores integers only."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    return value


def watch_to_item(record: WatchRecord) -> dict[str, AttributeValueTypeDef]:
    created = parse_ts(record.created_at)
    return _to_item(
        {
            "pk": record.post_id,
            "sk": WATCH_SK,
            "version": record.version,
            "watching": record.watching,
            "ended_reason": record.ended_reason,
            "post_status": record.post_status,
            "scheduled_at": record.scheduled_at,
            "created_at": record.created_at,
            "created_partition": CREATED_PARTITION if created is not None else None,
            "created_ts": format_ts_or_none(created),
            "accounts": {account_id: state.model_dump() for account_id, state in record.accounts.items()},
            # shim: emitted-attribute (docs/compatibility.md)
            "emitted": record.occurrences,  # the 0.3.0 attribute name, kept so stored watches read back
            "outbox": {entry.encode() for entry in record.outbox} or None,
            "due_shard": (
                (RETRY_SHARD if record.awaiting_retry else due_shard(record.post_id))
                if record.next_check_at is not None
                else None
            ),
            "awaiting_retry": record.awaiting_retry or None,
            "next_check_at": format_ts_or_none(record.next_check_at),
            "settled_next_check_at": format_ts_or_none(record.settled_next_check_at),
            "claimed_at": format_ts_or_none(record.claimed_at),
            "registered_at": format_ts(record.registered_at),
            "changed_at": format_ts_or_none(record.changed_at),
        }
    )


def watch_from_item(item: dict[str, Any]) -> WatchRecord:
    values = _plain(_from_item(item))
    return WatchRecord(
        post_id=values["pk"],
        version=values["version"],
        watching=values["watching"],
        ended_reason=values.get("ended_reason"),
        post_status=values.get("post_status"),
        scheduled_at=values.get("scheduled_at"),
        created_at=values.get("created_at"),
        accounts={
            account_id: AccountSnapshot.model_validate(state)
            for account_id, state in values.get("accounts", {}).items()
        },
        occurrences=values.get("emitted", {}),
        outbox=frozenset(PendingDelivery.decode(entry) for entry in values.get("outbox", ())),
        next_check_at=parse_ts(values.get("next_check_at")),
        settled_next_check_at=parse_ts(values.get("settled_next_check_at")),
        awaiting_retry=values.get("awaiting_retry", False),
        claimed_at=parse_ts(values.get("claimed_at")),
        registered_at=values["registered_at"],
        # shim: checked-at-fallback (docs/compatibility.md)
        # Watches written before 0.3.0 carry `checked_at`, the time of their last write: close enough.
        changed_at=parse_ts(values.get("changed_at") or values.get("checked_at")),
    )


def _is_condition_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)
    return False


class DynamoDbStore(WatchStore, WatchIndex, OperatorQueries, RelayState):
    """The one table behind every store port: watches, outbox, events, the pause and discover state."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, event_retention: timedelta, clock: Clock) -> None:
        self._client = client
        self._table = table_name
        self._event_retention = event_retention
        self._clock = clock

    def get(self, post_id: str) -> WatchRecord | None:
        answer = self._client.get_item(TableName=self._table, Key=self._watch_key(post_id), ConsistentRead=True)
        item = answer.get("Item")
        return watch_from_item(item) if item else None

    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]:
        keys = [self._watch_key(post_id) for post_id in dict.fromkeys(post_ids)]
        found: dict[str, WatchRecord] = {}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}
            }
            for _ in range(MAX_UNPROCESSED_ROUNDS):
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    record = watch_from_item(item)
                    found[record.post_id] = record
                request = dict(answer.get("UnprocessedKeys") or {})
                if not request:
                    break
            else:
                # Still unprocessed after every round (throttled): read those one by one.
                for key in request[self._table]["Keys"]:
                    single = self.get(key["pk"]["S"])
                    if single is not None:
                        found[single.post_id] = single
        return found

    def save(self, record: WatchRecord, *, expected_version: int, new_events: Sequence[RelayEvent]) -> None:
        if record.version != expected_version + 1:
            raise ValueError("a saved watch must be exactly one version ahead of the stored one")
        if expected_version == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        expires_at = int((self._clock() + self._event_retention).timestamp())
        actions: list[Any] = [{"Put": {"TableName": self._table, "Item": watch_to_item(record), **condition}}]
        # Event puts are unconditional: the same transition always has the same id and document body.
        actions.extend(
            {"Put": {"TableName": self._table, "Item": self._event_item(event, expires_at)}} for event in new_events
        )
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if _is_condition_failure(error):
                raise StateConflictError(record.post_id) from error
            raise

    def load_events(self, post_id: str, event_ids: Iterable[str]) -> list[RelayEvent]:
        keys = [{"pk": {"S": post_id}, "sk": {"S": EVENT_SK_PREFIX + event_id}} for event_id in sorted(set(event_ids))]
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {self._table: {"Keys": keys[start : start + BATCH_GET_LIMIT]}}
            for _ in range(MAX_UNPROCESSED_ROUNDS):
                answer = self._client.batch_get_item(RequestItems=request)
                items.extend(answer.get("Responses", {}).get(self._table, []))
                request = dict(answer.get("UnprocessedKeys") or {})
                if not request:
                    break
            else:
                logger.warning("Some stored events could not be read this time", extra={"post_id": post_id})
        events = [parse_event(item["document"]["S"]) for item in items]
        return sorted(events, key=lambda event: (event.detected_at, event.event_id))

    def find_events(self, selection: EventSelection) -> list[RelayEvent]:
        values: dict[str, Any] = {":prefix": {"S": EVENT_SK_PREFIX}}
        filters: list[str] = []
        if selection.since is not None:
            filters.append("detected_at >= :since")
            values[":since"] = {"S": format_ts(selection.since)}
        if selection.until is not None:
            filters.append("detected_at < :until")
            values[":until"] = {"S": format_ts(selection.until)}
        if 0 < len(selection.event_ids) <= MAX_IN_OPERANDS:
            names = {f":event{index}": event_id for index, event_id in enumerate(sorted(selection.event_ids))}
            filters.append(f"event_id IN ({', '.join(names)})")
            values.update({name: {"S": event_id} for name, event_id in names.items()})
        request: dict[str, Any] = {"TableName": self._table, "ProjectionExpression": "document"}
        if selection.post_id is not None:
            operation = "query"
            request["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            values[":pk"] = {"S": selection.post_id}
        else:
            operation = "scan"
            filters.insert(0, "begins_with(sk, :prefix)")
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        request["ExpressionAttributeValues"] = values
        events = [parse_event(item["document"]["S"]) for item in self._pages(operation, request)]
        return sorted(filter(selection.matches, events), key=lambda event: (event.detected_at, event.event_id))

    def watches(self) -> Iterator[WatchRecord]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :watch",
            "ExpressionAttributeValues": {":watch": {"S": WATCH_SK}},
        }
        return (watch_from_item(item) for item in self._pages("scan", request))

    def _pages(self, operation: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paginated query or scan."""
        call = self._client.query if operation == "query" else self._client.scan
        while True:
            answer = call(**request)
            yield from answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return
            request = {**request, "ExclusiveStartKey": answer["LastEvaluatedKey"]}

    def acknowledge(
        self,
        post_id: str,
        delivered: Iterable[PendingDelivery],
        *,
        settle_version: int | None = None,
        settled_next_check_at: datetime | None = None,
    ) -> None:
        done = {entry.encode() for entry in delivered}
        if not done:
            return
        if settle_version is not None:
            try:
                self._update_outbox(post_id, done, settle_version, settled_next_check_at)
                return
            except ClientError as error:
                if not _is_condition_failure(error):
                    raise
                # A check committed since: its own schedule stands; just take the deliveries off.
        try:
            self._update_outbox(post_id, done, None, None)
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            logger.info("Watch removed before its acknowledgement", extra={"post_id": post_id})

    def delete(self, post_id: str, *, expected_version: int) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._watch_key(post_id),
                ConditionExpression="version = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                raise StateConflictError(post_id) from error
            raise

    def due_watches(self, now: datetime) -> Iterator[DueWatch]:
        due = [
            DueWatch(item["pk"]["S"], parse_ts(item["next_check_at"]["S"]) or now)
            for shard in [*map(str, range(DUE_SHARDS)), RETRY_SHARD]
            for item in self._query_due(shard, "<=", now)
        ]
        # Each shard answers in index order; merged, the soonest due still come first.
        return iter(sorted(due, key=lambda watch: (watch.next_check_at, watch.post_id)))

    def claim_check(self, post_id: str, *, queued_at: datetime, now: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._watch_key(post_id),
                UpdateExpression="SET claimed_at = :now",
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(claimed_at) OR claimed_at < :queued)"
                ),
                ExpressionAttributeValues={":now": {"S": format_ts(now)}, ":queued": {"S": format_ts(queued_at)}},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def awaiting_retry(self, now: datetime, *, limit: int | None = None) -> Iterator[str]:
        return (item["pk"]["S"] for item in self._query_due(RETRY_SHARD, ">", now, limit=limit))

    def creation_moments(self, since: datetime, until: datetime, *, limit: int) -> list[datetime]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CREATED_INDEX,
            "KeyConditionExpression": "created_partition = :partition AND created_ts BETWEEN :since AND :until",
            "ExpressionAttributeValues": {
                ":partition": {"S": CREATED_PARTITION},
                ":since": {"S": format_ts(since)},
                ":until": {"S": format_ts(until)},
            },
            "ProjectionExpression": "created_ts",
            "Limit": limit,
        }
        items = itertools.islice(self._pages("query", request), limit)
        return [moment for item in items if (moment := parse_ts(item["created_ts"]["S"]))]

    def _query_due(
        self, shard: str, comparison: str, now: datetime, *, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": f"due_shard = :shard AND next_check_at {comparison} :now",
            "ExpressionAttributeValues": {":shard": {"S": shard}, ":now": {"S": format_ts(now)}},
        }
        if limit is not None:
            request["Limit"] = limit
        while True:
            answer = self._client.query(**request)
            yield from answer.get("Items", [])
            if "LastEvaluatedKey" not in answer or limit is not None:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def genviral_pause(self, now: datetime) -> str | None:
        item = self._client.get_item(TableName=self._table, Key=PAUSE_KEY, ConsistentRead=True).get("Item")
        if not item:
            return None
        until = parse_ts(item.get("until", {}).get("S"))
        return item.get("reason", {}).get("S", "paused") if until is not None and until > now else None

    def pause_genviral(self, *, until: datetime, reason: str) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={**PAUSE_KEY, "until": {"S": format_ts(until)}, "reason": {"S": reason}},
        )

    def discover_state(self) -> DiscoverState | None:
        item = self._client.get_item(TableName=self._table, Key=DISCOVER_KEY, ConsistentRead=True).get("Item")
        if not item:
            return None
        return DiscoverState.model_validate_json(item["state"]["S"])

    def save_discover_state(self, state: DiscoverState, *, expected_version: int) -> None:
        if state.version != expected_version + 1:
            raise ValueError("a saved discover state must be exactly one version ahead of the stored one")
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if expected_version == 0
            else {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        )
        item = {**DISCOVER_KEY, "version": {"N": str(state.version)}, "state": {"S": state.model_dump_json()}}
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as error:
            if _is_condition_failure(error):
                raise StateConflictError("discover state") from error
            raise

    def account_directory(self) -> AccountDirectory | None:
        item = self._client.get_item(TableName=self._table, Key=ACCOUNT_DIRECTORY_KEY).get("Item")
        if not item:
            return None
        return AccountDirectory.model_validate_json(item["directory"]["S"])

    def save_account_directory(self, directory: AccountDirectory) -> None:
        item = {**ACCOUNT_DIRECTORY_KEY, "directory": {"S": directory.model_dump_json()}}
        self._client.put_item(TableName=self._table, Item=item)

    def _update_outbox(
        self, post_id: str, done: set[str], settle_version: int | None, settled_next_check_at: datetime | None
    ) -> None:
        # Every acknowledgement bumps the version, so a check that read the outbox before it cannot
        # write the delivered entries back.
        update = "DELETE outbox :done ADD version :one"
        condition = "attribute_exists(pk)"
        values: dict[str, Any] = {":done": {"SS": sorted(done)}, ":one": {"N": "1"}}
        if settle_version is not None:
            condition += " AND version = :settle"
            values[":settle"] = {"N": str(settle_version)}
            if settled_next_check_at is None:
                update += " REMOVE next_check_at, due_shard"
            else:
                update += " SET next_check_at = :next, due_shard = if_not_exists(due_shard, :shard)"
                values[":next"] = {"S": format_ts(settled_next_check_at)}
                values[":shard"] = {"S": due_shard(post_id)}
        self._client.update_item(
            TableName=self._table,
            Key=self._watch_key(post_id),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def _event_item(self, event: RelayEvent, expires_at: int) -> dict[str, AttributeValueTypeDef]:
        return _to_item(
            {
                "pk": event.post_id,
                "sk": EVENT_SK_PREFIX + event.event_id,
                "event_id": event.event_id,
                "detected_at": event.detected_at,
                "document": event.model_dump_json(),
                "expires_at": expires_at,
            }
        )

    @staticmethod
    def _watch_key(post_id: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": post_id}, "sk": {"S": WATCH_SK}}
