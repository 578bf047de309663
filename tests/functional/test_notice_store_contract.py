"""The notice outbox's DynamoDB store (on moto) and `InMemoryNoticeStore`, the store of the fast specs, run one script
each: they must answer alike, step by step, and make the same DynamoDB calls (the in-memory store counts the calls
the real one would make), as `test_store_contract.py` holds the watch store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from genviral_relay.aws.dynamodb_items import PAUSE_KEY
from genviral_relay.aws.dynamodb_notices import DynamoDbNoticeStore, pending_key
from genviral_relay.errors import RelayError, StateConflictError
from genviral_relay.models.relay_notices import MAX_NOTICES_PER_COMMIT, RelayStateEvent
from genviral_relay.notices.ports import NoticeStore, PendingNotice, RelayRecord
from local.stack import MotoStack
from tests.support.counting import CountingClient
from tests.support.fault_matrix import FlakyClient
from tests.support.notice_doubles import InMemoryNoticeStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def notice(event_id: str, event_type: str = "relay.paused") -> RelayStateEvent:
    return RelayStateEvent(
        event_id=event_id,
        event_type=event_type,  # type: ignore[arg-type]
        detected_at="2026-03-02T12:00:00.000Z",
        reason="GenviralSubscriptionRequiredError (HTTP 402 subscription_required): no plan",
        http_status=402,
        until="2026-03-02T12:05:00.000Z",
        paused_at="2026-03-02T12:00:00.000Z",
    )


PAUSED = notice("00000000-0000-5000-8000-000000000001")
RESUMED = notice("00000000-0000-5000-8000-000000000002", "relay.resumed")
QUIET = notice("00000000-0000-5000-8000-000000000003")


@dataclass(frozen=True)
class Raised:
    error: str


@dataclass
class Run:
    store: NoticeStore
    calls: Counter[str]
    empty: Callable[[str], None]
    """Leave a pending entry with nothing owed, as a crash between the two calls of 0.5's `acknowledge` did."""
    steps: list[tuple[str, object, dict[str, int]]] = field(default_factory=list)

    def step(self, name: str, action: Callable[[NoticeStore], T]) -> T | Raised:
        before = Counter(self.calls)
        answer: T | Raised
        try:
            answer = action(self.store)
        except (RelayError, ValueError) as error:
            answer = Raised(type(error).__name__)
        self.steps.append((name, answer, dict(sorted((self.calls - before).items()))))
        return answer


def script(run: Run) -> None:
    assert run.step("no record", lambda s: s.record("GENVIRAL_PAUSE")) is None
    run.step(
        "a record without notices",
        lambda s: s.commit(
            "GENVIRAL_PAUSE", "{}", expected_version=0, notices=(), owed=("sns",), committed_at=NOW, attributes={}
        ),
    )
    assert run.step("read it", lambda s: s.record("GENVIRAL_PAUSE")) == RelayRecord(1, "{}")
    stale = run.step(
        "a stale version, no notices",
        lambda s: s.commit("GENVIRAL_PAUSE", "{}", expected_version=0, notices=(), owed=(), committed_at=NOW),
    )
    assert stale == Raised(StateConflictError.__name__)

    owed = ("sns", "eventbridge", "feed")
    run.step(
        "a record with a notice",
        lambda s: s.commit(
            "GENVIRAL_PAUSE",
            '{"open": true}',
            expected_version=1,
            notices=(PAUSED,),
            owed=owed,
            committed_at=NOW,
            attributes={"until": "2026-03-02T12:05:00.000Z", "reason": "402"},
        ),
    )
    lost = run.step(
        "a stale version with a notice: nothing of it stored",
        lambda s: s.commit("GENVIRAL_PAUSE", "{}", expected_version=1, notices=(RESUMED,), owed=owed, committed_at=NOW),
    )
    assert lost == Raised(StateConflictError.__name__)
    assert run.step("read it again", lambda s: s.record("GENVIRAL_PAUSE")) == RelayRecord(2, '{"open": true}')
    later = NOW + timedelta(minutes=1)
    run.step(
        "another record, its notice owed to nobody",
        lambda s: s.commit("OTHER", "{}", expected_version=0, notices=(QUIET,), owed=(), committed_at=later),
    )
    run.step(
        "a later notice",
        lambda s: s.commit(
            "GENVIRAL_PAUSE", "{}", expected_version=2, notices=(RESUMED,), owed=("sns",), committed_at=later
        ),
    )

    too_many = [notice(f"00000000-0000-5000-8000-1{i:011d}") for i in range(MAX_NOTICES_PER_COMMIT + 1)]
    refused = run.step(
        "more notices than one commit takes: nothing of it stored",
        lambda s: s.commit("GENVIRAL_PAUSE", "{}", expected_version=3, notices=too_many, owed=owed, committed_at=later),
    )
    assert refused == Raised(ValueError.__name__)

    assert run.step("none owed before the first commit", lambda s: s.any_owed(NOW - timedelta(seconds=1))) is False
    assert run.step("one owed since the first commit", lambda s: s.any_owed(NOW)) is True
    assert run.step("pending, oldest first", lambda s: s.pending()) == [
        PendingNotice(PAUSED, frozenset(owed), NOW),
        PendingNotice(RESUMED, frozenset({"sns"}), later),
    ]
    assert run.step("a stored notice", lambda s: s.notice(PAUSED.event_id)) == PAUSED
    assert run.step("one owed to nobody is stored", lambda s: s.notice(QUIET.event_id)) == QUIET
    assert run.step("no such notice", lambda s: s.notice("missing")) is None

    run.step("acknowledge part", lambda s: s.acknowledge(PAUSED.event_id, ("sns", "feed")))
    run.step("acknowledge a target twice", lambda s: s.acknowledge(PAUSED.event_id, ("sns",)))
    assert run.step("the rest pending", lambda s: s.pending()) == [
        PendingNotice(PAUSED, frozenset({"eventbridge"}), NOW),
        PendingNotice(RESUMED, frozenset({"sns"}), later),
    ]
    run.step("acknowledge the rest", lambda s: s.acknowledge(PAUSED.event_id, ("eventbridge",)))
    run.step("acknowledge one no longer pending", lambda s: s.acknowledge(PAUSED.event_id, ("sns",)))
    run.step("acknowledge nothing", lambda s: s.acknowledge(RESUMED.event_id, ()))
    assert run.step("one left", lambda s: s.pending()) == [PendingNotice(RESUMED, frozenset({"sns"}), later)]
    assert run.step("none owed since the first commit now", lambda s: s.any_owed(NOW)) is False
    assert run.step("the later one is", lambda s: s.any_owed(later)) is True

    run.empty(RESUMED.event_id)
    assert run.step("an emptied entry is pending no more", lambda s: s.pending()) == []
    assert run.step("nor owed", lambda s: s.any_owed(later)) is False
    run.step("acknowledging it deletes it, in one call", lambda s: s.acknowledge(RESUMED.event_id, ("sns",)))
    run.step("and it is gone", lambda s: s.acknowledge(RESUMED.event_id, ("sns",)))
    assert run.step("the document outlives its pending entry", lambda s: s.notice(PAUSED.event_id)) == PAUSED


def acme(store: NoticeStore) -> NoticeStore:
    """acme's view of the same store (no call made)."""
    assert isinstance(store, DynamoDbNoticeStore | InMemoryNoticeStore)
    return store.in_workspace("acme")


def two_workspaces(run: Run) -> None:
    """A workspace's records are its own (same name, apart); the notices are the deployment's: either view's flush
    reads and acknowledges every workspace's."""
    later = NOW + timedelta(seconds=1)
    run.step(
        "default's health",
        lambda s: s.commit(
            "ACCOUNT_HEALTH", "{}", expected_version=0, notices=(PAUSED,), owed=("sns",), committed_at=NOW
        ),
    )
    run.step(
        "acme's health, at its own version 0",
        lambda s: acme(s).commit(
            "ACCOUNT_HEALTH", '{"acme": 1}', expected_version=0, notices=(RESUMED,), owed=("feed",), committed_at=later
        ),
    )
    assert run.step("default's record", lambda s: s.record("ACCOUNT_HEALTH")) == RelayRecord(1, "{}")
    assert run.step("acme's record", lambda s: acme(s).record("ACCOUNT_HEALTH")) == RelayRecord(1, '{"acme": 1}')
    stale = run.step(
        "acme's own version guards it",
        lambda s: acme(s).commit("ACCOUNT_HEALTH", "{}", expected_version=0, notices=(), owed=(), committed_at=later),
    )
    assert stale == Raised(StateConflictError.__name__)
    assert run.step("acme is not paused", lambda s: acme(s).record("GENVIRAL_PAUSE")) is None

    both = [PendingNotice(PAUSED, frozenset({"sns"}), NOW), PendingNotice(RESUMED, frozenset({"feed"}), later)]
    assert run.step("default's flush sees both", lambda s: s.pending()) == both
    assert run.step("acme's flush sees both", lambda s: acme(s).pending()) == both
    assert run.step("acme sees default's owed", lambda s: acme(s).any_owed(NOW)) is True
    assert run.step("acme reads default's notice", lambda s: acme(s).notice(PAUSED.event_id)) == PAUSED
    run.step("acme takes default's", lambda s: acme(s).acknowledge(PAUSED.event_id, ("sns",)))
    run.step("default takes acme's", lambda s: s.acknowledge(RESUMED.event_id, ("feed",)))
    assert run.step("none left", lambda s: s.pending()) == []


@pytest.mark.parametrize("script", [script, two_workspaces])
def test_both_notice_stores_answer_alike_and_make_the_same_calls(
    stack: MotoStack, script: Callable[[Run], None]
) -> None:
    calls: Counter[str] = Counter()
    counted = CountingClient(stack.client("dynamodb"), calls)
    table = stack.ref("StateTable")
    raw = stack.client("dynamodb")

    def empty(event_id: str) -> None:
        owed = raw.get_item(TableName=table, Key=pending_key(event_id))["Item"]["owed"]
        raw.update_item(
            TableName=table,
            Key=pending_key(event_id),
            UpdateExpression="DELETE owed :all",
            ExpressionAttributeValues={":all": owed},
        )

    dynamodb = Run(DynamoDbNoticeStore(counted, table, event_retention=timedelta(days=1)), calls, empty)
    memory_store = InMemoryNoticeStore()
    memory = Run(memory_store, memory_store.calls, memory_store.empty)

    script(dynamodb)
    script(memory)

    for real, double in zip(dynamodb.steps, memory.steps, strict=True):
        assert double == real  # (step, answer, DynamoDB calls made)
    assert memory.calls == dynamodb.calls
    if script is two_workspaces:
        assert all(made for _, _, made in dynamodb.steps), "every step of the script calls DynamoDB"
        return
    made = {name: calls for name, _, calls in dynamodb.steps}
    assert made["acknowledge the rest"] == {"delete_item": 1}  # all that was owed: one call, nothing left behind
    assert made["acknowledging it deletes it, in one call"] == {"delete_item": 1}
    assert made["more notices than one commit takes: nothing of it stored"] == {}


def test_the_ticks_look_at_owed_notices_reads_only_when_they_were_committed(stack: MotoStack) -> None:
    client = stack.client("dynamodb")
    queries: list[dict[str, Any]] = []
    store = DynamoDbNoticeStore(Recording(client, queries), stack.ref("StateTable"), event_retention=timedelta(days=1))
    store.commit("GENVIRAL_PAUSE", "{}", expected_version=0, notices=(PAUSED,), owed=("sns",), committed_at=NOW)

    assert store.any_owed(NOW) is True

    (query,) = queries
    assert query["ProjectionExpression"] == "committed_at"
    assert "ConsistentRead" not in query  # eventually consistent: half the read, and a stale answer costs a flush


class Recording:
    def __init__(self, inner: Any, queries: list[dict[str, Any]]) -> None:
        self._inner = inner
        self._queries = queries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def query(self, **request: Any) -> Any:
        self._queries.append(request)
        return self._inner.query(**request)


def test_the_record_item_keeps_its_plain_attributes_and_an_unversioned_item_counts_as_version_0(
    stack: MotoStack,
) -> None:
    client = stack.client("dynamodb")
    table = stack.ref("StateTable")
    store = DynamoDbNoticeStore(client, table, event_retention=timedelta(days=1))
    # The pause item as 0.4 wrote it: `until` and `reason`, no version
    client.put_item(
        TableName=table, Item={**PAUSE_KEY, "until": {"S": "2026-03-02T12:05:00.000Z"}, "reason": {"S": "x"}}
    )
    assert store.record("GENVIRAL_PAUSE") == RelayRecord(0, "")

    store.commit(
        "GENVIRAL_PAUSE",
        "{}",
        expected_version=0,
        notices=(PAUSED,),
        owed=("sns",),
        committed_at=NOW,
        attributes={"until": "2026-03-02T12:10:00.000Z", "reason": "402"},
    )

    item = client.get_item(TableName=table, Key=PAUSE_KEY)["Item"]
    assert (item["until"], item["reason"], item["version"]) == (
        {"S": "2026-03-02T12:10:00.000Z"},
        {"S": "402"},
        {"N": "1"},
    )
    document = client.get_item(TableName=table, Key={"pk": {"S": "relay"}, "sk": {"S": "NOTICE#" + PAUSED.event_id}})
    expires_at = int(document["Item"]["expires_at"]["N"])
    assert expires_at == int((NOW + timedelta(days=1)).timestamp())  # kept as long as the events


@pytest.mark.parametrize(
    "reasons",
    [
        ["None", "ThrottlingError", "None"],  # one item throttled
        ["ValidationError", "None", "None"],  # the record refused (over 400 KB)
    ],
)
def test_a_commit_cancelled_for_anything_but_the_records_condition_is_no_conflict(
    stack: MotoStack, reasons: list[str]
) -> None:
    def cancel(_: dict[str, Any]) -> dict[str, Any]:
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                "CancellationReasons": [{"Code": code} for code in reasons],
            },
            "TransactWriteItems",
        )

    flaky = FlakyClient(stack.client("dynamodb"), "transact_write_items", cancel, 1)
    store = DynamoDbNoticeStore(flaky, stack.ref("StateTable"), event_retention=timedelta(days=1))

    def commit() -> None:
        store.commit("GENVIRAL_PAUSE", "{}", expected_version=0, notices=(PAUSED,), owed=("sns",), committed_at=NOW)

    with pytest.raises(RuntimeError, match=str(reasons).replace("[", r"\[").replace("]", r"\]")):
        commit()  # raised as it is: the caller's message is retried, the error logged
    assert store.record("GENVIRAL_PAUSE") is None
    assert store.pending() == []

    commit()  # the retry stores it

    assert store.pending() == [PendingNotice(PAUSED, frozenset({"sns"}), NOW)]
