"""The watch store in one DynamoDB table: its items are written as `dynamodb_items.py` says; the relay's own
items are read and written by `dynamodb_relay_state.py`, which makes a workspace's view (`in_workspace`): watches by
post id are anyone's, the index reads and the watches it saves its workspace's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from genviral_relay.aws.dynamodb_index import DynamoDbIndex
from genviral_relay.aws.dynamodb_items import (
    EVENT_SK_PREFIX,
    WATCH_SK,
    due_shard,
    event_key,
    event_to_item,
    is_condition_failure,
    paginated,
    refuse_other_workspace,
    watch_from_item,
    watch_key,
    watch_to_item,
)
from genviral_relay.aws.dynamodb_relay_state import DynamoDbRelayState
from genviral_relay.aws.event_log import DynamoDbEventLog
from genviral_relay.checking.ports import EventSelection, OperatorQueries, WatchStore
from genviral_relay.clock import Clock, format_ts
from genviral_relay.errors import StateConflictError
from genviral_relay.feed.appending import appended_after_commit
from genviral_relay.models.domain import OutboxEntry, WatchRecord
from genviral_relay.models.events import RelayEvent, parse_event
from genviral_relay.observability import logger
from genviral_relay.rules.event_feed import feed_entries

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BATCH_GET_LIMIT = 100  # DynamoDB's limit of keys in a BatchGetItem
MAX_UNPROCESSED_ROUNDS = 5
MAX_IN_OPERANDS = 100  # DynamoDB's limit for IN; a longer list is filtered after reading


class DynamoDbStore(WatchStore, DynamoDbIndex, OperatorQueries, DynamoDbRelayState):
    """The one table behind every store port: watches, outbox, events, the pause and discover state."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, event_retention: timedelta, clock: Clock) -> None:
        super().__init__(client, table_name, event_retention=event_retention)
        self._clock = clock
        self.feed = DynamoDbEventLog(client, table_name, event_retention=event_retention)

    def get(self, post_id: str) -> WatchRecord | None:
        item = self._client.get_item(TableName=self._table, Key=watch_key(post_id), ConsistentRead=True).get("Item")
        return watch_from_item(item) if item else None

    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]:
        keys = [watch_key(post_id) for post_id in dict.fromkeys(post_ids)]
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

    def save(self, record: WatchRecord, *, expected_version: int, new_events: Sequence[RelayEvent]) -> bool:
        if record.version != expected_version + 1:
            raise ValueError("a saved watch must be exactly one version ahead of the stored one")
        refuse_other_workspace(record, self._workspace)
        if expected_version == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        committed_at = self._clock()  # the feed entries' stamp: taken before the call (`rules/event_feed.py`)
        expires_at = self.feed.expires_at(committed_at)
        entries = feed_entries(new_events, committed_at)
        actions: list[Any] = [{"Put": {"TableName": self._table, "Item": watch_to_item(record), **condition}}]
        # Event puts are unconditional: the same transition always has the same id and document body.
        actions.extend(
            {"Put": {"TableName": self._table, "Item": event_to_item(event, expires_at)}} for event in new_events
        )
        actions.extend({"Put": self.feed.put_request(entry)} for entry in entries)
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if is_condition_failure(error):
                raise StateConflictError(record.post_id) from error
            raise
        return appended_after_commit(self.feed, entries, committed_at, self._clock)

    def load_events(self, post_id: str, event_ids: Iterable[str]) -> list[RelayEvent]:
        keys = [event_key(post_id, event_id) for event_id in sorted(set(event_ids))]
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
        return paginated(self._client.query if operation == "query" else self._client.scan, request)

    def acknowledge(
        self,
        post_id: str,
        published: Iterable[OutboxEntry],
        *,
        settle_version: int | None = None,
        settled_next_check_at: datetime | None = None,
    ) -> None:
        done = {entry.encode() for entry in published}
        if not done:
            return
        if settle_version is not None:
            try:
                self._update_outbox(post_id, done, settle_version, settled_next_check_at)
                return
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                # A check committed since: its own schedule stands; just take the deliveries off.
        try:
            self._update_outbox(post_id, done, None, None)
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            logger.info("Watch removed before its acknowledgement", extra={"post_id": post_id})

    def delete(self, post_id: str, *, expected_version: int) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=watch_key(post_id),
                ConditionExpression="version = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise StateConflictError(post_id) from error
            raise

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
                values[":shard"] = {"S": due_shard(post_id, self._workspace)}  # the watch the view just saved
        self._client.update_item(
            TableName=self._table,
            Key=watch_key(post_id),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
