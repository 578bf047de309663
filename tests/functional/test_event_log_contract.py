"""The event feed in DynamoDB (moto) and its in-memory double: one script on both gives the same answers, so what
the feed specs see of the double is what a deployment's API serves; and the check's commit puts its feed entries in
the table (a slow commit twice), found by the `events` index. (The delivery log's half of the contract is in its own
file.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.aws.event_log import DynamoDbEventLog
from genviral_relay.clock import utc_now
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.event_log import FeedEntry
from genviral_relay.rules.event_feed import COMMIT_WINDOW, day_partition, end_of
from genviral_relay.rules.webhook_retries import events_kept_for
from local.stack import MotoStack
from tests.builders import relay_event
from tests.support.event_log_doubles import InMemoryEventLog

START = datetime(2026, 3, 2, 23, 59, 58, tzinfo=UTC)  # the entries cross midnight: two day partitions
RETENTION = events_kept_for(30)
POST = "11111111-1111-1111-1111-111111111111"
OTHER_POST = "22222222-2222-2222-2222-222222222222"


def event_id(number: int) -> str:
    return f"{number:08x}-0000-5000-8000-000000000000"


def entry(
    number: int,
    after: timedelta,
    *,
    event_type: str = "post.account.posted",
    post_id: str | None = POST,
    workspace: str | None = None,
) -> FeedEntry:
    return FeedEntry(
        committed_at=START + after,
        event_id=event_id(number),
        event_type=event_type,
        post_id=post_id,
        workspace=workspace,
        document=f'{{"event_id":"{event_id(number)}","n":{number}}}',
    )


def script(log: EventLog) -> list[Any]:
    second = timedelta(seconds=1)
    log.append([entry(2, 0 * second), entry(1, 0 * second), entry(3, second / 2)])  # 1 and 2: one moment
    log.append(
        [
            entry(4, 2 * second, event_type="post.completed", post_id=OTHER_POST),  # the next UTC day
            entry(5, 3 * second, event_type="webhook.endpoint.disabled", post_id=None),  # about no post
            entry(1, 4 * second),  # a second position of event 1 (a slow commit)
        ]
    )
    until = START + 10 * second
    first = log.page(after=None, until=until, limit=2)
    return [
        log.page(after=None, until=until, limit=100),
        first,
        log.page(after=first.reached, until=until, limit=2),
        log.page(after=None, until=START + second, limit=100),  # the horizon leaves the later ones out
        log.page(after=None, until=until, limit=100, event_type="post.completed"),
        log.page(after=None, until=until, limit=1, post_id=POST),
        log.page(after=None, until=until, limit=100, post_id=OTHER_POST, event_type="post.account.posted"),
        log.page(after=first.reached, until=START, limit=100),  # nothing more by then
        log.entry(event_id(1)),  # its first position
        log.entry(event_id(5)),
        log.entry(event_id(9)),
        list(log.between(START, START + 2 * second)),
        list(log.between(START + second, START + 5 * second)),
    ]


def test_the_double_answers_as_the_table(stack: MotoStack) -> None:
    table_log = DynamoDbEventLog(stack.client("dynamodb"), stack.ref("StateTable"), event_retention=RETENTION)

    expected = script(table_log)

    assert script(InMemoryEventLog()) == expected
    everything = expected[0]
    assert [e.event_id for e in everything.entries] == [event_id(n) for n in (1, 2, 3, 4, 5, 1)]
    assert everything.reached == "2026-03-03T00:00:08.000Z#~"  # read through to the horizon
    assert expected[1].reached == expected[1].entries[-1].position  # a full page ends at its last entry
    assert expected[8].committed_at == START


def by_workspace(log: EventLog) -> list[Any]:
    second = timedelta(seconds=1)
    log.append(
        [
            entry(1, 0 * second),  # default's (stored as none)
            entry(2, second / 2, workspace="acme"),
            entry(3, second, workspace="beta"),
            entry(4, 2 * second, event_type="webhook.endpoint.disabled", post_id=None),  # about no workspace
            entry(5, 3 * second, workspace="acme"),  # the next UTC day
        ]
    )
    until = START + 10 * second
    first = log.page(after=None, until=until, limit=1, workspace="acme")
    return [
        log.page(after=None, until=until, limit=100, workspace="acme"),
        log.page(after=None, until=until, limit=100, workspace="default"),
        log.page(after=None, until=until, limit=100, workspace="gamma"),  # a name no entry has: an empty page
        first,
        log.page(after=first.reached, until=until, limit=1, workspace="acme"),
        log.page(after=None, until=until, limit=100, workspace="acme", event_type="post.account.posted"),
    ]


def test_the_double_filters_by_workspace_as_the_table(stack: MotoStack) -> None:
    table_log = DynamoDbEventLog(stack.client("dynamodb"), stack.ref("StateTable"), event_retention=RETENTION)

    expected = by_workspace(table_log)

    assert by_workspace(InMemoryEventLog()) == expected
    acme, default, gamma, first, then, posted = expected
    assert [e.event_id for e in acme.entries] == [event_id(2), event_id(5)]
    assert [e.event_id for e in default.entries] == [event_id(1), event_id(4)]
    assert (gamma.entries, gamma.reached) == ([], "2026-03-03T00:00:08.000Z#~")  # `next` still moves
    assert [e.event_id for e in [*first.entries, *then.entries]] == [event_id(2), event_id(5)]
    assert [e.event_id for e in posted.entries] == [event_id(2), event_id(5)]  # both filters, not either


def test_an_entry_carries_its_day_its_index_key_and_its_ttl(stack: MotoStack) -> None:
    client, table = stack.client("dynamodb"), stack.ref("StateTable")
    DynamoDbEventLog(client, table, event_retention=RETENTION).append([entry(5, timedelta(0), post_id=None)])

    (item,) = client.scan(TableName=table)["Items"]

    assert item["pk"] == {"S": day_partition(START)}
    assert item["feed_event_id"] == {"S": event_id(5)}
    assert "post_id" not in item
    assert int(item["expires_at"]["N"]) == int((START + RETENTION).timestamp())
    assert "workspace" not in item  # default's, as 0.4 wrote nothing


def test_the_commit_stores_a_named_workspace_s_entries_with_it(stack: MotoStack) -> None:
    store = DynamoDbStore(stack.client("dynamodb"), stack.ref("StateTable"), event_retention=RETENTION, clock=utc_now)
    record = WatchRecord(post_id=POST, version=1, registered_at=START, workspace="acme")
    event = relay_event("post.account.posted", event_id(1)).model_copy(update={"post_id": POST, "workspace": "acme"})

    store.in_workspace("acme").save(record, expected_version=0, new_events=[event])

    (entry_found,) = store.feed.between(START - timedelta(days=400), utc_now() + timedelta(days=1))
    assert entry_found.workspace == "acme"


class JumpingClock:
    """The store's clock; `during_commit` is added while the transaction is in flight (a slow commit)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.during_commit = timedelta(0)

    def __call__(self) -> datetime:
        return self.now


def store_with(stack: MotoStack, clock: JumpingClock) -> DynamoDbStore:
    client = stack.client("dynamodb")
    transact: Callable[..., Any] = client.transact_write_items

    def slow(**request: Any) -> Any:
        answer = transact(**request)
        clock.now += clock.during_commit
        return answer

    client.transact_write_items = slow
    return DynamoDbStore(client, stack.ref("StateTable"), event_retention=RETENTION, clock=clock)


def commit(store: DynamoDbStore, *numbers: int) -> None:
    record = WatchRecord(post_id=POST, version=1, registered_at=START)
    events = [
        relay_event("post.account.posted", event_id(number)).model_copy(update={"post_id": POST}) for number in numbers
    ]
    store.save(record, expected_version=0, new_events=events)


def test_the_commit_puts_its_feed_entries_in_its_transaction_and_the_index_finds_them(stack: MotoStack) -> None:
    clock = JumpingClock(START)
    store = store_with(stack, clock)

    commit(store, 1, 2)

    page = store.feed.page(after=None, until=START, limit=100)
    assert [(e.event_id, e.committed_at) for e in page.entries] == [(event_id(1), START), (event_id(2), START)]
    found = store.feed.entry(event_id(2))
    assert found is not None
    assert found.document == page.entries[1].document


def test_a_commit_answered_late_appends_its_entries_again_at_a_fresh_position(stack: MotoStack) -> None:
    clock = JumpingClock(START)
    clock.during_commit = COMMIT_WINDOW + timedelta(milliseconds=1)
    store = store_with(stack, clock)

    commit(store, 1)

    late = START + clock.during_commit
    page = store.feed.page(after=None, until=late, limit=100)
    assert [(e.event_id, e.committed_at) for e in page.entries] == [(event_id(1), START), (event_id(1), late)]
    first = store.feed.entry(event_id(1))
    assert first is not None
    assert first.committed_at == START


class _EvaluatingPastTheHorizon:
    """A table whose filtered queries match nothing and say they evaluated through a key past the horizon (as a real
    query without an upper key bound may), recording the key conditions it was asked."""

    def __init__(self, past: str) -> None:
        self.past = past
        self.conditions: list[str] = []

    def query(self, **request: Any) -> dict[str, Any]:
        self.conditions.append(request["KeyConditionExpression"])
        return {
            "Items": [],
            "LastEvaluatedKey": {"pk": request["ExpressionAttributeValues"][":pk"], "sk": {"S": self.past}},
        }


def test_a_filtered_page_never_moves_next_past_the_horizon() -> None:
    until = START + timedelta(minutes=1)
    bound = end_of(until)
    table = _EvaluatingPastTheHorizon(end_of(until + timedelta(seconds=5)))
    log = DynamoDbEventLog(table, "table", event_retention=RETENTION)  # type: ignore[arg-type]

    page = log.page(after=end_of(START), until=until, limit=100, event_type="post.completed")

    assert page.reached == bound  # a commit landing in time behind the horizon is still served next
    assert table.conditions
    assert all(":bound" in condition for condition in table.conditions)
