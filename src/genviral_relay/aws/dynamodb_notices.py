"""The notice outbox in the state table (`pk = "relay"`, the keys `dynamodb_items.py` documents): a versioned record
and its notices in one transaction, each notice's document kept for the events' retention, and a pending item per
notice naming the targets that have not taken it (with the document, so the flush reads everything in one Query).

A view of one workspace (`in_workspace`) reads and commits that workspace's records (`scoped` names); the notices
and what they are owed are the deployment's: any view's flush publishes every workspace's."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError
from pydantic import ValidationError

from genviral_relay.aws.dynamodb_items import (
    PENDING_NOTICE_SK_PREFIX,
    RELAY_PK,
    is_condition_failure,
    notice_key,
    paginated,
    relay_key,
    view_of,
)
from genviral_relay.aws.webhook_counts import transact
from genviral_relay.clock import format_ts, parse_ts
from genviral_relay.errors import StateConflictError
from genviral_relay.models.domain import OUTBOX_TARGETS, OutboxTarget
from genviral_relay.models.relay_notices import parse_notice
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.outbox import refuse_too_many
from genviral_relay.notices.ports import NoticeDocument, NoticeStore, PendingNotice, RelayRecord
from genviral_relay.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def pending_key(event_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": RELAY_PK}, "sk": {"S": PENDING_NOTICE_SK_PREFIX + event_id}}


class DynamoDbNoticeStore(NoticeStore):
    def __init__(self, client: DynamoDBClient, table_name: str, *, event_retention: timedelta) -> None:
        """`event_retention`: how long a notice's document is kept (as the events' documents)."""
        self._client = client
        self._table = table_name
        self._retention = event_retention
        self._workspace = DEFAULT_WORKSPACE

    def in_workspace(self, workspace: str) -> DynamoDbNoticeStore:
        """The same store, its records `workspace`'s."""
        view = copy.copy(self)
        view._workspace = view_of(workspace)
        return view

    def record(self, name: str) -> RelayRecord | None:
        key = relay_key(name, self._workspace)
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if not item:
            return None
        # An item a release before 0.5 wrote has no version (and no state): it counts as version 0.
        return RelayRecord(version=int(item.get("version", {}).get("N", "0")), state=item.get("state", {}).get("S", ""))

    def commit(
        self,
        name: str,
        state: str,
        *,
        expected_version: int,
        notices: Sequence[NoticeDocument],
        owed: Collection[OutboxTarget],
        committed_at: datetime,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        refuse_too_many(notices)
        record: dict[str, Any] = {
            "Item": {
                **relay_key(name, self._workspace),
                **{key: {"S": value} for key, value in (attributes or {}).items()},
                "version": {"N": str(expected_version + 1)},
                "state": {"S": state},
            },
            **_version_condition(expected_version),
        }
        if not notices:
            try:
                self._client.put_item(TableName=self._table, **record)
            except ClientError as error:
                if is_condition_failure(error):
                    raise StateConflictError(name) from error
                raise
            return
        expires_at = {"N": str(int((committed_at + self._retention).timestamp()))}
        items: list[dict[str, Any]] = [{"Put": record}]
        for notice in notices:
            document = {"S": notice.model_dump_json()}
            items.append(
                {
                    "Put": {
                        "Item": {
                            **notice_key(notice.event_id),
                            "event_type": {"S": notice.event_type},
                            "document": document,
                            "expires_at": expires_at,
                        }
                    }
                }
            )
            if owed:  # no expiry: a pending notice goes once every target took it
                pending = {"SS": sorted(owed)}
                stamp = {"S": format_ts(committed_at)}
                items.append(
                    {
                        "Put": {
                            "Item": {
                                **pending_key(notice.event_id),
                                "owed": pending,
                                "committed_at": stamp,
                                "document": document,
                            }
                        }
                    }
                )
        for reasons in transact(self._client, self._table, items):
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":  # the record's, the only condition
                raise StateConflictError(name)
            # Throttled, or an item refused: not a conflict, so the caller's message is retried and this logged.
            codes = [reason.get("Code", "None") for reason in reasons]
            raise RuntimeError(f"the commit of {name} with its notices was cancelled: {codes}")

    def pending(self) -> list[PendingNotice]:
        request = {**self._pending_query(), "FilterExpression": "attribute_exists(owed)", "ConsistentRead": True}
        found: list[PendingNotice] = []
        for item in paginated(self._client.query, request):
            committed_at = parse_ts(item.get("committed_at", {}).get("S"))
            notice = _notice_of(item)
            if notice is None or committed_at is None:
                continue
            owed = cast("frozenset[OutboxTarget]", frozenset(item.get("owed", {}).get("SS", ())))
            found.append(PendingNotice(notice, owed, committed_at))
        return sorted(found, key=lambda one: (one.committed_at, one.notice.event_id))

    def any_owed(self, committed_by: datetime) -> bool:
        request = self._pending_query()
        request["FilterExpression"] = "attribute_exists(owed) AND committed_at <= :by"  # format_ts: string order
        request["ExpressionAttributeValues"][":by"] = {"S": format_ts(committed_by)}
        request["ProjectionExpression"] = "committed_at"
        while True:  # a page the filter emptied may be followed by one it did not
            answer = self._client.query(**request)
            if answer.get("Items"):
                return True
            if "LastEvaluatedKey" not in answer:
                return False
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _pending_query(self) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": RELAY_PK}, ":prefix": {"S": PENDING_NOTICE_SK_PREFIX}},
        }

    def acknowledge(self, event_id: str, done: Collection[OutboxTarget]) -> None:
        if not done:
            return
        # One call when `done` is all that is owed (the usual case): delete the entry unless it owes another target,
        # so no crash can leave an emptied entry behind; otherwise take `done` out of it.
        others = [target for target in OUTBOX_TARGETS if target not in done]
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=pending_key(event_id),
                ConditionExpression=" AND ".join(
                    ["attribute_exists(pk)", *(f"NOT contains(owed, :other{i})" for i in range(len(others)))]
                ),
                **_values({f":other{i}": {"S": target} for i, target in enumerate(others)}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            if "Item" not in error.response:
                return  # no longer pending
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=pending_key(event_id),
                UpdateExpression="DELETE owed :done",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":done": {"SS": sorted(done)}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return  # no longer pending
            raise
        if answer.get("Attributes", {}).get("owed", {}).get("SS"):
            return
        try:  # another process took the rest meanwhile: the emptied entry goes (if this fails, it is skipped)
            self._client.delete_item(
                TableName=self._table, Key=pending_key(event_id), ConditionExpression="attribute_not_exists(owed)"
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    def notice(self, event_id: str) -> NoticeDocument | None:
        item = self._client.get_item(TableName=self._table, Key=notice_key(event_id)).get("Item")
        return _notice_of(item) if item else None


def _version_condition(expected_version: int) -> dict[str, Any]:
    if expected_version == 0:
        return {"ConditionExpression": "attribute_not_exists(version)"}
    return {
        "ConditionExpression": "version = :expected",
        "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
    }


def _values(values: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB refuses an empty `ExpressionAttributeValues`."""
    return {"ExpressionAttributeValues": values} if values else {}


def _notice_of(item: Mapping[str, Any]) -> NoticeDocument | None:
    try:
        return parse_notice(item["document"]["S"])
    except (KeyError, ValidationError):  # not a document this release reads: logged, never raised into a flush
        logger.error("Unreadable notice in the state table", extra={"sk": item.get("sk", {}).get("S")})
        return None
