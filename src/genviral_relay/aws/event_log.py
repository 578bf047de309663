"""The event feed in the state table: one item per position, `pk = "FEED#<UTC day of the commit>"`, `sk` = the
position (`<commit stamp>#<event_id>`), so one day is read in feed order by one query; the sparse `events` index
(`feed_event_id`, keys only) finds an event's positions. Kept as long as the events (TTL `expires_at`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from genviral_relay.aws.dynamodb_items import paginated
from genviral_relay.clock import format_ts
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.event_log import FeedEntry, FeedPage
from genviral_relay.models.workspaces import stored_workspace
from genviral_relay.rules.event_feed import PAGE_LIMIT, day_partition, days, end_of, position_moment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

EVENTS_INDEX = "events"
WORKSPACE = "workspace"
"""A named workspace's entries carry it; `default`'s and those about no workspace carry none (`stored_workspace`)."""
MAX_QUERIES_PER_PAGE = 100
"""The most queries one page makes (a day each, more where a filter skips entries): a default retention (30 days)
is read through in one page; beyond it a short page says how far it read, and `next` goes on from there."""


def feed_item(entry: FeedEntry, expires_at: int) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "pk": {"S": day_partition(entry.committed_at)},
        "sk": {"S": entry.position},
        "feed_event_id": {"S": entry.event_id},
        "event_type": {"S": entry.event_type},
        "document": {"S": entry.document},
        "expires_at": {"N": str(expires_at)},
    }
    if entry.post_id is not None:
        item["post_id"] = {"S": entry.post_id}
    if entry.workspace is not None:
        item[WORKSPACE] = {"S": entry.workspace}
    return item


def entry_from_item(item: dict[str, Any]) -> FeedEntry:
    position = item["sk"]["S"]
    return FeedEntry(
        committed_at=position_moment(position),
        event_id=item["feed_event_id"]["S"],
        event_type=item["event_type"]["S"],
        post_id=item.get("post_id", {}).get("S"),
        workspace=item.get(WORKSPACE, {}).get("S"),
        document=item["document"]["S"],
    )


class DynamoDbEventLog(EventLog):
    def __init__(self, client: DynamoDBClient, table_name: str, *, event_retention: timedelta) -> None:
        self._client = client
        self._table = table_name
        self._retention = event_retention

    def expires_at(self, committed_at: datetime) -> int:
        """The TTL of an entry committed then (as the events')."""
        return int((committed_at + self._retention).timestamp())

    def put_request(self, entry: FeedEntry) -> dict[str, Any]:
        """The entry as a `Put` of a transaction (the check's commit writes its entries with its state)."""
        return {"TableName": self._table, "Item": feed_item(entry, self.expires_at(entry.committed_at))}

    def append(self, entries: Sequence[FeedEntry]) -> None:
        # One PutItem each: an append is a few events of one post (or one announcement), and every role that
        # commits checks may already put items.
        for entry in entries:
            self._client.put_item(**self.put_request(entry))

    def page(
        self,
        *,
        after: str | None,
        until: datetime,
        limit: int,
        event_type: str | None = None,
        post_id: str | None = None,
        workspace: str | None = None,
    ) -> FeedPage:
        bound = end_of(until)
        if after is not None and after >= bound:  # a cursor from a clock ahead of this one: nothing is settled yet
            return FeedPage(entries=[], reached=after)
        start = position_moment(after) if after is not None else until - self._retention
        found: list[FeedEntry] = []
        reached = after
        queries = 0
        for day in days(start, until):
            start_key: dict[str, Any] | None = None
            while True:
                if queries == MAX_QUERIES_PER_PAGE:
                    return FeedPage(entries=found, reached=reached)
                queries += 1
                request = self._day_query(day, after, bound, limit - len(found), start_key)
                request.update(_filtered(event_type, post_id, workspace, request["ExpressionAttributeValues"]))
                answer = self._client.query(**request)
                for item in answer.get("Items", []):
                    if item["sk"]["S"] == after:  # the key condition's range includes its start
                        continue
                    reached = item["sk"]["S"]
                    found.append(entry_from_item(item))
                    if len(found) == limit:
                        return FeedPage(entries=found, reached=reached)
                start_key = answer.get("LastEvaluatedKey")
                if start_key is None:
                    break
                # Read through here, matching or not; never past the horizon (the key condition ends there)
                reached = min(start_key["sk"]["S"], bound)
            reached = max(reached or "", min(end_of(day + timedelta(days=1) - timedelta(milliseconds=1)), bound))
        return FeedPage(entries=found, reached=bound)

    def _day_query(
        self,
        day: datetime,
        after: str | None,
        bound: str,
        wanted: int,
        start_key: dict[str, Any] | None,
    ) -> dict[str, Any]:
        # The key condition ends at the horizon: a filtered query's LastEvaluatedKey must not pass it, or `next`
        # would skip positions a commit landing in time could still fill.
        values: dict[str, Any] = {":pk": {"S": day_partition(day)}, ":bound": {"S": bound}}
        condition = "pk = :pk AND sk <= :bound"
        if after is not None and after >= format_ts(day):
            condition = "pk = :pk AND sk BETWEEN :after AND :bound"
            values[":after"] = {"S": after}
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
            "Limit": wanted,
        }
        if start_key is not None:
            request["ExclusiveStartKey"] = start_key
        return request

    def entry(self, event_id: str) -> FeedEntry | None:
        answer = self._client.query(
            TableName=self._table,
            IndexName=EVENTS_INDEX,
            KeyConditionExpression="feed_event_id = :id",
            ExpressionAttributeValues={":id": {"S": event_id}},
        )
        keys = sorted((item["sk"]["S"], item["pk"]["S"]) for item in answer.get("Items", []))
        for position, partition in keys:  # the first position still there (the index lags the table a little)
            got = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": partition}, "sk": {"S": position}}, ConsistentRead=True
            )
            if "Item" in got:
                return entry_from_item(got["Item"])
        return None

    def between(self, since: datetime, until: datetime) -> Iterator[FeedEntry]:
        low, high = format_ts(since), format_ts(until)
        for day in days(since, until):
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
                "ExpressionAttributeValues": {
                    ":pk": {"S": day_partition(day)},
                    ":low": {"S": low},
                    ":high": {"S": high},  # `<high>#...` sorts after: entries at `until` are left out
                },
                "ConsistentRead": True,
            }
            yield from map(entry_from_item, paginated(self._client.query, request))


def _filtered(
    event_type: str | None, post_id: str | None, workspace: str | None, values: dict[str, Any]
) -> dict[str, Any]:
    """What a day query adds to read only entries of this type, post and workspace when given (its values go in
    `values`). A filter reads past what it skips: whole pages then; unfiltered, no more than the page needs."""
    filters: list[str] = []
    request: dict[str, Any] = {}
    if event_type is not None:
        filters.append("event_type = :type")
        values[":type"] = {"S": event_type}
    if post_id is not None:
        filters.append("post_id = :post")
        values[":post"] = {"S": post_id}
    if workspace is not None:
        request["ExpressionAttributeNames"] = {"#workspace": WORKSPACE}
        stored = stored_workspace(workspace)
        if stored is None:  # default's entries, and those about no workspace, name none
            filters.append("attribute_not_exists(#workspace)")
        else:
            filters.append("#workspace = :workspace")
            values[":workspace"] = {"S": stored}
    if filters:
        request.update(FilterExpression=" AND ".join(filters), Limit=PAGE_LIMIT)
    return request
