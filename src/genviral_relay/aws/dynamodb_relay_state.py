"""The relay's own items in the state table (`pk = "relay"`): the Genviral pause (read here, written by the notice
outbox, `dynamodb_notices.py`), discover mode's progress and the account directory (see `dynamodb_items.py` for the
table's layout). Each is one workspace's: a view (`in_workspace`) reads and writes that workspace's items, on the
same client."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from botocore.exceptions import ClientError

from genviral_relay.aws.dynamodb_items import (
    ACCOUNT_DIRECTORY_SK,
    DISCOVER_SK,
    is_condition_failure,
    relay_key,
    view_of,
)
from genviral_relay.aws.dynamodb_notices import DynamoDbNoticeStore
from genviral_relay.checking.ports import RelayState
from genviral_relay.errors import StateConflictError
from genviral_relay.models.domain import AccountDirectory, DiscoverState
from genviral_relay.models.pause import PAUSE_RECORD, PauseStatus
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class DynamoDbRelayState(RelayState):
    def __init__(self, client: DynamoDBClient, table_name: str, *, event_retention: timedelta) -> None:
        self._client = client
        self._table = table_name
        self._notices = DynamoDbNoticeStore(client, table_name, event_retention=event_retention)
        self._workspace = DEFAULT_WORKSPACE

    def in_workspace(self, workspace: str) -> Self:
        """A view of the same table (same client, no call made) whose per-workspace items and index reads are
        `workspace`'s; the plain store is `default`'s view, which reads and writes what 0.4 did."""
        view = copy.copy(self)
        view._workspace = view_of(workspace)
        view._notices = self._notices.in_workspace(workspace)
        return view

    @property
    def workspace(self) -> str:
        return self._workspace

    @property
    def notices(self) -> DynamoDbNoticeStore:
        return self._notices

    def genviral_pause(self, now: datetime) -> PauseStatus:
        key = relay_key(PAUSE_RECORD, self._workspace)  # the notice outbox's record
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item") or {}
        return PauseStatus.read(
            now,
            version=int(item.get("version", {}).get("N", "0")),
            state=item.get("state", {}).get("S"),
            until=item.get("until", {}).get("S"),
            reason=item.get("reason", {}).get("S"),
        )

    def discover_state(self) -> DiscoverState | None:
        key = relay_key(DISCOVER_SK, self._workspace)
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
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
        item = {
            **relay_key(DISCOVER_SK, self._workspace),
            "version": {"N": str(state.version)},
            "state": {"S": state.model_dump_json()},
        }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as error:
            if is_condition_failure(error):
                raise StateConflictError("discover state") from error
            raise

    def account_directory(self) -> AccountDirectory | None:
        key = relay_key(ACCOUNT_DIRECTORY_SK, self._workspace)
        item = self._client.get_item(TableName=self._table, Key=key).get("Item")
        if not item:
            return None
        return AccountDirectory.model_validate_json(item["directory"]["S"])

    def save_account_directory(self, directory: AccountDirectory) -> None:
        item = {**relay_key(ACCOUNT_DIRECTORY_SK, self._workspace), "directory": {"S": directory.model_dump_json()}}
        self._client.put_item(TableName=self._table, Item=item)
