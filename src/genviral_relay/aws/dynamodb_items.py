"""The state table's items and keys: how a watch, an event and the relay's own items are written in DynamoDB.

Items (partition key `pk` = post id):
- `sk = "WATCH"`: the watch: last-seen states, `version` (optimistic lock), `outbox` (a string
  set of pending "target:event_id" deliveries) and the schedule. While the watch is due for
  checks or owes events it carries `due_shard` + `next_check_at`, the keys of the sparse `due`
  index the poller queries. Once its post's `created_at` is known it carries `created_partition` +
  `created_ts`, the keys of the `created` index (what the relay knows of the workspace's creation
  windows, `polling/bulk_refresh.py`); they never change after, so later saves write nothing to it.
  A watch of a workspace other than `default` carries `workspace` and writes its workspace's shards and partition
  (`scoped`: `"0#acme"`, `"retry#acme"`, `"posts#acme"`); a `default` watch writes exactly what 0.4 wrote.
- `sk = "EVENT#<event_id>"`: the event document, kept for `event_retention` (TTL `expires_at`).
Items under a webhook endpoint's id (`pk = "wh_..."`; the endpoint itself is under `pk = "webhooks"`):
- `sk = "TEST_EVENT#<event_id>"`: a `webhook.test` document the test route queued, for its deliveries to sign
  (`stored_events.py`), kept for `event_retention` too.
- `pk = "relay"`: the deployment's own items (`dynamodb_relay_state.py`), `sk = "GENVIRAL_PAUSE"` (calls
  stopped after a refused key), `sk = "DISCOVER"` (how far discover mode has listed the workspace) and
  `sk = "ACCOUNT_DIRECTORY"` (the accounts `GET /accounts` listed, as JSON: about 150 bytes an account,
  so thousands fit in an item). Each is a workspace's: `scoped` names another workspace's (`"DISCOVER#acme"`).
- `pk = "relay"`, the notice outbox (`dynamodb_notices.py`): `sk = <record name>` a versioned record of the relay's
  own state committed with its notices (`ACCOUNT_HEALTH`; `GENVIRAL_PAUSE` is one too, its `until` and `reason`
  kept as 0.4 wrote them), `sk = "NOTICE#<event_id>"` a notice's document (TTL `expires_at`), `sk =
  "PENDING#<event_id>"` what a notice is still owed (a string set `owed` of targets, `committed_at`). The records are
  a workspace's (scoped names, `"ACCOUNT_HEALTH#acme"`); the notices are the deployment's (one flush for all).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from genviral_relay.clock import format_ts, format_ts_or_none, parse_ts
from genviral_relay.models.domain import AccountSnapshot, OutboxEntry, WatchRecord
from genviral_relay.models.events import RelayEvent
from genviral_relay.models.pause import PAUSE_RECORD
from genviral_relay.models.workspaces import WORKSPACE_NAME, scoped, stored_workspace, workspace_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

WATCH_SK = "WATCH"
RELAY_PK = "relay"
DISCOVER_SK = "DISCOVER"
ACCOUNT_DIRECTORY_SK = "ACCOUNT_DIRECTORY"
PAUSE_KEY = {"pk": {"S": RELAY_PK}, "sk": {"S": PAUSE_RECORD}}
"""The default workspace's pause, as 0.4 wrote it (`relay_key` names any workspace's)."""
NOTICE_SK_PREFIX = "NOTICE#"
PENDING_NOTICE_SK_PREFIX = "PENDING#"
EVENT_SK_PREFIX = "EVENT#"
TEST_EVENT_SK_PREFIX = "TEST_EVENT#"  # not EVENT#: the event scans (find_events) read relay events only
DUE_INDEX = "due"
DUE_SHARDS = 4  # spreads the due index over partitions; the poller queries each shard
# Watches the retry sweep covers; next_check_at is their own next check, as for any watch.
RETRY_SHARD = "retry"
CREATED_INDEX = "created"
CREATED_PARTITION = "posts"
"""The created index's one partition: it is written once per post and read only by the poller."""

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def due_shard(post_id: str, workspace: str | None = None) -> str:
    """The due index shard of a watch of `workspace` that is not awaiting the retry sweep."""
    return scoped(str(zlib.crc32(post_id.encode()) % DUE_SHARDS), workspace)


def due_shards(workspace: str | None, *, awaiting_retry: bool = True) -> list[str]:
    """Every due index shard of `workspace`, in the order the store queries them (the retry shard last)."""
    shards = [scoped(str(shard), workspace) for shard in range(DUE_SHARDS)]
    return [*shards, retry_shard(workspace)] if awaiting_retry else shards


def retry_shard(workspace: str | None) -> str:
    return scoped(RETRY_SHARD, workspace)


def created_partition(workspace: str | None) -> str:
    return scoped(CREATED_PARTITION, workspace)


def relay_key(name: str, workspace: str | None) -> dict[str, AttributeValueTypeDef]:
    """The key of a workspace's own item (its pause, discover state, account directory, notice records)."""
    return {"pk": {"S": RELAY_PK}, "sk": {"S": scoped(name, workspace)}}


def view_of(workspace: str) -> str:
    """The workspace a view of the table is for: a name the secret may hold, else a wiring error."""
    if not WORKSPACE_NAME.match(workspace):
        raise ValueError(f"not a workspace name: {workspace!r}")
    return workspace


def refuse_other_workspace(record: WatchRecord, workspace: str) -> None:
    """A view of one workspace writes only that workspace's watches: another's would land in the wrong shards."""
    if workspace_of(record.workspace) != workspace:
        raise ValueError(f"a watch of workspace {workspace_of(record.workspace)!r} saved through {workspace!r}'s view")


def watch_key(post_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": post_id}, "sk": {"S": WATCH_SK}}


def event_key(post_id: str, event_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": post_id}, "sk": {"S": EVENT_SK_PREFIX + event_id}}


def notice_key(event_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": RELAY_PK}, "sk": {"S": NOTICE_SK_PREFIX + event_id}}


def test_event_key(webhook_id: str, event_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": webhook_id}, "sk": {"S": TEST_EVENT_SK_PREFIX + event_id}}


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
    workspace = stored_workspace(workspace_of(record.workspace))  # absent for default: 0.4's item
    return _to_item(
        {
            "pk": record.post_id,
            "sk": WATCH_SK,
            "workspace": workspace,
            "version": record.version,
            "watching": record.watching,
            "ended_reason": record.ended_reason,
            "post_status": record.post_status,
            "scheduled_at": record.scheduled_at,
            "created_at": record.created_at,
            "created_partition": created_partition(workspace) if created is not None else None,
            "created_ts": format_ts_or_none(created),
            "accounts": {account_id: state.model_dump() for account_id, state in record.accounts.items()},
            # shim: emitted-attribute (docs/compatibility.md)
            "emitted": record.occurrences,  # the 0.3.0 attribute name, kept so stored watches read back
            "outbox": {entry.encode() for entry in record.outbox} or None,
            "due_shard": (
                (retry_shard(workspace) if record.awaiting_retry else due_shard(record.post_id, workspace))
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
        workspace=values.get("workspace"),
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
        outbox=frozenset(OutboxEntry.decode(entry) for entry in values.get("outbox", ())),
        next_check_at=parse_ts(values.get("next_check_at")),
        settled_next_check_at=parse_ts(values.get("settled_next_check_at")),
        awaiting_retry=values.get("awaiting_retry", False),
        claimed_at=parse_ts(values.get("claimed_at")),
        registered_at=values["registered_at"],
        # shim: checked-at-fallback (docs/compatibility.md)
        # Watches written before 0.3.0 carry `checked_at`, the time of their last write: close enough.
        changed_at=parse_ts(values.get("changed_at") or values.get("checked_at")),
    )


def event_to_item(event: RelayEvent, expires_at: int) -> dict[str, AttributeValueTypeDef]:
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


def paginated(call: Callable[..., Any], request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item of a query or a scan (`call`: the client's `query` or `scan`), page after page."""
    while True:
        answer = call(**request)
        yield from answer.get("Items", [])
        if "LastEvaluatedKey" not in answer:
            return
        request = {**request, "ExclusiveStartKey": answer["LastEvaluatedKey"]}


def is_condition_failure(error: ClientError) -> bool:
    """A conditional write refused for its condition, alone or within a transaction."""
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)
    return False
