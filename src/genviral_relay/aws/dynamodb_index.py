"""The state table's indexes as polling reads them (`dynamodb_items.py` describes them): the due index's shards and
the created index's partition of one workspace (the store's view, `in_workspace`), and the claim a check takes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from genviral_relay.aws.dynamodb_items import (
    CREATED_INDEX,
    DUE_INDEX,
    created_partition,
    due_shards,
    is_condition_failure,
    paginated,
    retry_shard,
    watch_key,
)
from genviral_relay.clock import format_ts, parse_ts
from genviral_relay.models.domain import DueWatch
from genviral_relay.polling.ports import WatchIndex

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class DynamoDbIndex(WatchIndex):
    """The index reads of `DynamoDbStore`, on its client and table, for its view's workspace."""

    _client: DynamoDBClient
    _table: str
    _workspace: str

    def due_watches(self, now: datetime) -> Iterator[DueWatch]:
        due = [
            DueWatch(item["pk"]["S"], parse_ts(item["next_check_at"]["S"]) or now)
            for shard in due_shards(self._workspace)
            for item in self._query_due(shard, "<=", now)
        ]
        # Each shard answers in index order; merged, the soonest due still come first.
        return iter(sorted(due, key=lambda watch: (watch.next_check_at, watch.post_id)))

    def claim_check(self, post_id: str, *, queued_at: datetime, now: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=watch_key(post_id),
                UpdateExpression="SET claimed_at = :now",
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(claimed_at) OR claimed_at < :queued)"
                ),
                ExpressionAttributeValues={":now": {"S": format_ts(now)}, ":queued": {"S": format_ts(queued_at)}},
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def awaiting_retry(self, now: datetime, *, limit: int | None = None) -> Iterator[str]:
        return (item["pk"]["S"] for item in self._query_due(retry_shard(self._workspace), ">", now, limit=limit))

    def watched_post_ids(self, *, limit: int | None = None, awaiting_retry: bool = True) -> Iterator[str]:
        # `limit` per shard too: whether anything is watched costs one key a shard at most.
        shards = due_shards(self._workspace, awaiting_retry=awaiting_retry)
        return itertools.islice(
            (item["pk"]["S"] for shard in shards for item in self._query_due(shard, limit=limit)), limit
        )

    def creation_moments(self, since: datetime, until: datetime, *, limit: int) -> list[datetime]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CREATED_INDEX,
            "KeyConditionExpression": "created_partition = :partition AND created_ts BETWEEN :since AND :until",
            "ExpressionAttributeValues": {
                ":partition": {"S": created_partition(self._workspace)},
                ":since": {"S": format_ts(since)},
                ":until": {"S": format_ts(until)},
            },
            "ProjectionExpression": "created_ts",
            "Limit": limit,
        }
        items = itertools.islice(paginated(self._client.query, request), limit)
        return [moment for item in items if (moment := parse_ts(item["created_ts"]["S"]))]

    def _query_due(
        self, shard: str, comparison: str = "", now: datetime | None = None, *, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        values: dict[str, Any] = {":shard": {"S": shard}} | ({":now": {"S": format_ts(now)}} if now else {})
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_shard = :shard" + (f" AND next_check_at {comparison} :now" if now else ""),
            "ExpressionAttributeValues": values,
        }
        if limit is not None:
            request["Limit"] = limit
        while True:
            answer = self._client.query(**request)
            yield from answer.get("Items", [])
            if "LastEvaluatedKey" not in answer or limit is not None:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
