"""The state table seen by workspace (`in_workspace`), on moto: the default workspace writes exactly the keys 0.4
wrote, another workspace's carry `#<name>`, and a table 0.4 wrote is `default`'s as it stands, no other
workspace's."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.clock import format_ts, utc_now
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD
from genviral_relay.models.domain import AccountDirectory, DirectoryEntry, DiscoverState, WatchRecord
from genviral_relay.models.pause import PAUSE_RECORD, PauseRecord, PauseStatus
from genviral_relay.notices.ports import RelayRecord
from local.stack import MotoStack
from tests.builders import ACCOUNT_A
from tests.support.counting import CountingClient

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DUE = "00000000-0000-4000-8000-000000000001"  # due index shard 1
RETRYING = "00000000-0000-4000-8000-000000000002"
CREATED = "2025-02-01T09:00:00Z"
DIRECTORY = AccountDirectory(
    accounts={ACCOUNT_A: DirectoryEntry(platform="tiktok", username="cafe", display_name="Cafe", type="byo")},
    refreshed_at=NOW,
    last_attempt_at=NOW,
)
WALK = DiscoverState(version=1, baseline_before=NOW, walk_started_at=NOW)
PAUSE = PauseRecord(paused_at=NOW, until=NOW + timedelta(minutes=5), reason="402", http_status=402)


def store_of(stack: MotoStack, calls: Counter[str] | None = None) -> DynamoDbStore:
    client = stack.client("dynamodb") if calls is None else CountingClient(stack.client("dynamodb"), calls)
    return DynamoDbStore(client, stack.ref("StateTable"), event_retention=timedelta(days=1), clock=utc_now)


def write_everything(store: DynamoDbStore, workspace: str | None) -> None:
    """What a workspace's relay writes: two watches, its pause, discover state, directory and health record."""
    due = WatchRecord(
        post_id=DUE, version=1, registered_at=NOW, next_check_at=NOW, created_at=CREATED, workspace=workspace
    )
    retrying = WatchRecord(
        post_id=RETRYING, version=1, registered_at=NOW, next_check_at=NOW, awaiting_retry=True, workspace=workspace
    )
    for record in (due, retrying):
        store.save(record, expected_version=0, new_events=())
    store.notices.commit(
        PAUSE_RECORD,
        PAUSE.model_dump_json(),
        expected_version=0,
        notices=(),
        owed=(),
        committed_at=NOW,
        attributes={"until": format_ts(PAUSE.until), "reason": PAUSE.reason},
    )
    store.notices.commit(ACCOUNT_HEALTH_RECORD, "{}", expected_version=0, notices=(), owed=(), committed_at=NOW)
    store.save_discover_state(WALK, expected_version=0)
    store.save_account_directory(DIRECTORY)


def keys_written(stack: MotoStack) -> dict[str, Any]:
    """The relay's own items' sort keys, and each watch's workspace, shard and partition as stored."""
    client = stack.client("dynamodb")
    items = client.scan(TableName=stack.ref("StateTable"))["Items"]
    return {
        "relay": sorted(item["sk"]["S"] for item in items if item["pk"]["S"] == "relay"),
        "watches": {
            item["pk"]["S"]: (
                item.get("workspace", {}).get("S"),
                item.get("due_shard", {}).get("S"),
                item.get("created_partition", {}).get("S"),
            )
            for item in items
            if item["sk"]["S"] == "WATCH"
        },
    }


def test_the_default_workspace_writes_the_keys_0_4_wrote(stack: MotoStack) -> None:
    store = store_of(stack)

    write_everything(store.in_workspace("default"), "default")  # named explicitly: stored as absent

    assert keys_written(stack) == {
        "relay": ["ACCOUNT_DIRECTORY", "ACCOUNT_HEALTH", "DISCOVER", "GENVIRAL_PAUSE"],
        "watches": {DUE: (None, "1", "posts"), RETRYING: (None, "retry", None)},
    }
    assert store.get(DUE).workspace is None  # type: ignore[union-attr]


def test_another_workspace_writes_its_own_scoped_keys(stack: MotoStack) -> None:
    calls: Counter[str] = Counter()
    store = store_of(stack, calls)

    acme = store.in_workspace("acme")
    assert calls == Counter()  # a view is made without a call, on the same client
    assert acme._client is store._client
    write_everything(acme, "acme")

    assert keys_written(stack) == {
        "relay": ["ACCOUNT_DIRECTORY#acme", "ACCOUNT_HEALTH#acme", "DISCOVER#acme", "GENVIRAL_PAUSE#acme"],
        "watches": {DUE: ("acme", "1#acme", "posts#acme"), RETRYING: ("acme", "retry#acme", None)},
    }
    assert store.get(DUE).workspace == "acme"  # type: ignore[union-attr]


def test_a_table_0_4_wrote_is_the_default_workspaces_and_no_other(stack: MotoStack) -> None:
    client = stack.client("dynamodb")
    table = stack.ref("StateTable")
    written_by_04: list[dict[str, Any]] = [
        {
            "pk": {"S": DUE},
            "sk": {"S": "WATCH"},
            "version": {"N": "3"},
            "watching": {"BOOL": True},
            "accounts": {"M": {}},
            "emitted": {"M": {}},
            "registered_at": {"S": "2026-03-01T12:00:00.000Z"},
            "next_check_at": {"S": "2026-03-02T11:55:00.000Z"},
            "due_shard": {"S": "1"},
            "created_at": {"S": CREATED},
            "created_partition": {"S": "posts"},
            "created_ts": {"S": "2025-02-01T09:00:00.000Z"},
        },
        {
            "pk": {"S": RETRYING},
            "sk": {"S": "WATCH"},
            "version": {"N": "5"},
            "watching": {"BOOL": False},
            "ended_reason": {"S": "finished"},
            "accounts": {"M": {}},
            "emitted": {"M": {}},
            "registered_at": {"S": "2026-03-01T12:00:00.000Z"},
            "next_check_at": {"S": "2026-03-02T20:00:00.000Z"},
            "due_shard": {"S": "retry"},
            "awaiting_retry": {"BOOL": True},
        },
        {"pk": {"S": "relay"}, "sk": {"S": "GENVIRAL_PAUSE"}, "until": {"S": "2026-03-02T12:05:00.000Z"},
         "reason": {"S": "402"}},
        {"pk": {"S": "relay"}, "sk": {"S": "DISCOVER"}, "version": {"N": "1"}, "state": {"S": WALK.model_dump_json()}},
        {"pk": {"S": "relay"}, "sk": {"S": "ACCOUNT_DIRECTORY"}, "directory": {"S": DIRECTORY.model_dump_json()}},
    ]  # fmt: skip
    for item in written_by_04:
        client.put_item(TableName=table, Item=item)
    store = store_of(stack)
    moment = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
    window = (moment, moment + timedelta(hours=1))

    for default in (store, store.in_workspace("default")):
        assert [due.post_id for due in default.due_watches(NOW)] == [DUE]
        assert list(default.awaiting_retry(NOW)) == [RETRYING]
        assert sorted(default.watched_post_ids()) == sorted([DUE, RETRYING])
        assert default.creation_moments(*window, limit=10) == [moment]
        assert default.genviral_pause(NOW) == PauseStatus(reason="402", version=0, record=None)
        assert default.notices.record(PAUSE_RECORD) == RelayRecord(0, "")
        assert default.discover_state() == WALK
        assert default.account_directory() == DIRECTORY
        watch = default.get(DUE)
        assert watch is not None
        assert (watch.workspace, watch.version) == (None, 3)

    acme = store.in_workspace("acme")
    assert list(acme.due_watches(NOW + timedelta(days=1))) == []
    assert list(acme.awaiting_retry(NOW)) == []
    assert list(acme.watched_post_ids()) == []
    assert acme.creation_moments(*window, limit=10) == []
    assert acme.genviral_pause(NOW) == PauseStatus()
    assert acme.notices.record(PAUSE_RECORD) is None
    assert acme.discover_state() is None
    assert acme.account_directory() is None

    # Read, nothing was rewritten; the next save of a 0.4 watch keeps 0.4's item
    items = client.scan(TableName=table)["Items"]
    assert sorted(items, key=str) == sorted(written_by_04, key=str)
    checked = store.get(DUE).model_copy(update={"version": 4})  # type: ignore[union-attr]
    store.save(checked, expected_version=3, new_events=())
    assert keys_written(stack)["watches"][DUE] == (None, "1", "posts")
