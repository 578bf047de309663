"""One script on the DynamoDB webhook store (moto) and on its in-memory double: the same answers, so what the
specs see of the double is what a deployment does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from genviral_relay.aws.webhook_counts import SUBSCRIPTIONS_PK
from genviral_relay.aws.webhook_items import endpoint_to_item
from genviral_relay.aws.webhook_store import DynamoDbWebhookStore
from genviral_relay.errors import TooManyWebhooksError, WebhookExistsError
from genviral_relay.models.webhooks import EndpointFilter, SigningSecret, WebhookEndpoint
from genviral_relay.webhooks.ports import AttemptRecord, WebhookStore
from local.stack import MotoStack
from tests.support.doubles import InMemoryWebhookStore

START = datetime(2026, 3, 2, 12, 0, 0, 123000, tzinfo=UTC)  # milliseconds: what the table keeps


def script(store: WebhookStore) -> list[Any]:
    first = WebhookEndpoint(
        id="wh_" + "1" * 32,
        url="https://hooks.example.com/a",
        event_types=("post.account.failed",),
        description="ops",
        created_at=START,
        secrets=(SigningSecret(value="whsec_b25l"),),
    )
    second = WebhookEndpoint(id="wh_" + "2" * 32, url="https://hooks.example.com/b", created_at=START + timedelta(1))
    store.create(second, limit=100)
    store.create(first, limit=100)
    answers: list[Any] = [store.endpoints(), store.endpoint(first.id), store.endpoint("wh_" + "9" * 32)]
    store.record_attempt(first.id, AttemptRecord(START, False, 503, "HTTP 503: Service Unavailable", 1))
    store.record_attempt(first.id, AttemptRecord(START + timedelta(seconds=5), False, None, "connection reset", 0))
    answers.append(store.endpoint(first.id))
    store.record_attempt(first.id, AttemptRecord(START + timedelta(minutes=5), True, 200, None, -1))
    answers.append(store.endpoint(first.id))
    rotated = (SigningSecret(value="whsec_dHdv"), SigningSecret(value="whsec_b25l", expires_at=START + timedelta(1)))
    answers += [[endpoint.id for endpoint in store.plaintext_keyed()]]  # the second holds no key
    sealed = (SigningSecret(value="kms:c2VhbGVk"),)
    stale = (SigningSecret(value="whsec_b3RoZXI="),)
    answers += [store.replace_secrets(first.id, sealed, replacing=stale), store.endpoint(first.id)]  # kept
    answers += [store.replace_secrets(first.id, rotated), store.endpoint(first.id)]
    answers += [store.replace_secrets(first.id, sealed, replacing=rotated), store.plaintext_keyed()]
    answers += [store.replace_secrets(first.id, rotated, replacing=sealed)]
    answers += [store.delete(first.id), store.delete(first.id), store.replace_secrets(first.id, rotated)]
    store.record_attempt(first.id, AttemptRecord(START, False, 500, "gone", 1))  # nothing: no such endpoint
    answers += [store.endpoint(first.id), store.endpoints()]
    return answers


def registrations(store: WebhookStore, legacy: Callable[[WebhookEndpoint], None]) -> list[Any]:
    """The limit and the subscriptions, on a table 0.4 wrote (`legacy` stores an endpoint as it did: no count, no
    subscription): the same URL twice among them, which both keep."""
    url = "https://hooks.example.com/same"
    old = [WebhookEndpoint(id=f"wh_{n:032x}", url=url, created_at=START + timedelta(seconds=n)) for n in range(2)]
    for endpoint in reversed(old):
        legacy(endpoint)
    new = [
        WebhookEndpoint(id=f"wh_{n:032x}", url=f"https://hooks.example.com/{n}", created_at=START) for n in range(2, 5)
    ]
    typed = WebhookEndpoint(id="wh_" + "c" * 32, url=url, event_types=("post.completed",), created_at=START)
    answers: list[Any] = [attempt(store.create, new[0], limit=3), attempt(store.create, new[1], limit=3)]
    answers += [
        attempt(store.create, new[2], limit=3),
        attempt(store.create, new[0].model_copy(update={"id": "x"}), limit=9),
    ]
    answers += [attempt(store.create, old[0].model_copy(update={"id": "y"}), limit=9)]
    answers += [store.delete(new[0].id), attempt(store.create, new[2], limit=3), attempt(store.create, typed, limit=9)]
    answers += [store.delete(old[0].id), attempt(store.create, old[0].model_copy(update={"id": "z"}), limit=9)]
    answers += [[endpoint.id for endpoint in store.endpoints()]]
    return answers


def deleted_first(store: WebhookStore, legacy: Callable[[WebhookEndpoint], None]) -> list[Any]:
    """A table 0.4 wrote, whose first change is the deletion of its one endpoint: the deletion upgrades the table
    (the endpoint gets its subscription) and takes that subscription with it, so the URL is free again."""
    old = WebhookEndpoint(id="wh_" + "d" * 32, url="https://hooks.example.com/old", created_at=START)
    legacy(old)
    again = old.model_copy(update={"id": "wh_" + "e" * 32})
    answers: list[Any] = [store.delete(old.id), attempt(store.create, again, limit=9)]
    return [*answers, store.delete(again.id), attempt(store.create, old, limit=9)]


def attempt(call: Callable[..., None], *args: Any, **kwargs: Any) -> str:
    try:
        call(*args, **kwargs)
    except (TooManyWebhooksError, WebhookExistsError) as error:
        return f"{type(error).__name__}: {error}"
    return "created"


def test_registrations_hold_the_limit_and_refuse_a_subscription_twice_on_both(stack: MotoStack) -> None:
    table = DynamoDbWebhookStore(stack.client("dynamodb"), stack.ref("StateTable"))

    def as_04(endpoint: WebhookEndpoint) -> None:
        item = endpoint_to_item(endpoint)
        del item["subscription_key"]
        stack.client("dynamodb").put_item(TableName=stack.ref("StateTable"), Item=item)

    double = InMemoryWebhookStore()
    expected = registrations(table, as_04)
    assert registrations(double, double.add_04) == expected
    first_04 = f"wh_{0:032x}"
    assert expected[:9] == [
        "created",  # the first use counts the two 0.4 endpoints: 3 of 3
        "TooManyWebhooksError: at most 3 webhook endpoints; delete one first",
        "TooManyWebhooksError: at most 3 webhook endpoints; delete one first",
        f"WebhookExistsError: wh_{2:032x}",
        f"WebhookExistsError: {first_04}",  # the older of the two 0.4 endpoints owns their URL
        True,
        "created",  # the deletion made room
        "created",  # the same URL with other event types
        True,
    ]
    # The owner of the 0.4 subscription deleted, the URL is free again (its 0.4 duplicate keeps delivering)
    assert expected[9] == "created"


def test_deleting_a_04_endpoint_first_frees_its_url_on_both(stack: MotoStack) -> None:
    def as_04(endpoint: WebhookEndpoint) -> None:
        item = endpoint_to_item(endpoint)
        del item["subscription_key"]
        stack.client("dynamodb").put_item(TableName=stack.ref("StateTable"), Item=item)

    double = InMemoryWebhookStore()
    expected = deleted_first(DynamoDbWebhookStore(stack.client("dynamodb"), stack.ref("StateTable")), as_04)
    assert expected == [True, "created", True, "created"]
    assert deleted_first(double, double.add_04) == expected
    subscriptions = stack.client("dynamodb").query(
        TableName=stack.ref("StateTable"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": SUBSCRIPTIONS_PK}},
    )["Items"]
    assert [item["webhook_id"]["S"] for item in subscriptions] == ["wh_" + "d" * 32]  # no orphan left behind


def test_the_double_answers_as_the_dynamodb_store(stack: MotoStack) -> None:
    table = DynamoDbWebhookStore(stack.client("dynamodb"), stack.ref("StateTable"))
    expected = script(table)
    assert script(InMemoryWebhookStore()) == expected
    listed = expected[0]
    assert [endpoint.id for endpoint in listed] == ["wh_" + "1" * 32, "wh_" + "2" * 32]  # oldest first
    assert all(endpoint.secrets == () for endpoint in listed)  # the listing never reads a secret
    failing, recovered = expected[3].health, expected[4].health
    assert (failing.attempts_pending, failing.failing_since, failing.last_failure_status) == (1, START, None)
    assert (recovered.attempts_pending, recovered.failing_since, recovered.last_success_at) == (
        0, None, START + timedelta(minutes=5)
    )  # fmt: skip
    assert expected[-2] is None
    assert expected[5:7] == [["wh_" + "1" * 32], False]  # a conditional write on other keys changes nothing
    assert expected[7].secrets == expected[1].secrets
    assert expected[10:13] == [True, [], True]  # on the keys it read, it writes


def edits(store: WebhookStore, legacy: Callable[[WebhookEndpoint], None]) -> list[Any]:
    """`update` and `set_enabled`: an edit in place, two edits from the same read (the second is refused, whatever
    field it changes: it would write back the first one's fields as it read them), subscription moves (refused when
    the new URL and types are taken, the old ones free again after), a 0.4 endpoint with no subscription item, and
    the switch (one call wins each way; enabling restarts the failing clock)."""
    a = WebhookEndpoint(
        id="wh_" + "a" * 32, url="https://hooks.example.com/a", event_types=("post.account.failed",), created_at=START
    )
    b = WebhookEndpoint(id="wh_" + "b" * 32, url="https://hooks.example.com/b", created_at=START + timedelta(1))
    store.create(a, limit=9)
    store.create(b, limit=9)
    described = a.model_copy(update={"description": "ops", "rate_limit": 2.5})
    answers: list[Any] = [store.update(described, previous=a), store.endpoint(a.id)]
    # Two edits from the same read: the types first, then the description (on the stale read)
    retyped = described.model_copy(update={"event_types": ("post.account.posted",)})
    stale = described.model_copy(update={"description": "stale", "filter": EndpointFilter(platforms=("tiktok",))})
    answers += [store.update(retyped, previous=described), store.update(stale, previous=described)]
    answers += [store.endpoint(a.id)]
    onto_b = retyped.model_copy(update={"url": b.url, "event_types": None})
    answers += [attempt(lambda: store.update(onto_b, previous=retyped) and None)]
    moved = retyped.model_copy(update={"url": "https://hooks.example.com/c", "filter": None, "format": "standard"})
    answers += [store.update(moved, previous=retyped), store.endpoint(a.id)]
    again = retyped.model_copy(update={"id": "wh_" + "f" * 32})
    answers += [
        attempt(store.create, again, limit=9),
        attempt(store.create, moved.model_copy(update={"id": "x"}), limit=9),
    ]
    nowhere = moved.model_copy(update={"id": "wh_" + "9" * 32})
    answers += [store.update(nowhere, previous=nowhere)]  # no such endpoint
    # 0.4: no subscription item, no format attribute
    old = WebhookEndpoint(id="wh_" + "0" * 32, url="https://hooks.example.com/old", created_at=START - timedelta(1))
    legacy(old)
    old_moved = old.model_copy(update={"url": "https://hooks.example.com/new", "description": "moved"})
    answers += [store.update(old_moved, previous=old), store.endpoint(old.id)]
    answers += [attempt(store.create, old.model_copy(update={"id": "wh_" + "e" * 32}), limit=9)]
    answers += [attempt(store.create, old_moved.model_copy(update={"id": "y"}), limit=9)]
    # The switch
    store.record_attempt(b.id, AttemptRecord(START, False, 503, "HTTP 503", 1))
    later = START + timedelta(hours=1)
    answers += [store.set_enabled(b.id, False, at=later, reason="failing for 120 hours")]
    answers += [store.set_enabled(b.id, False, at=later + timedelta(1), reason="again"), store.endpoint(b.id)]
    answers += [store.set_enabled(b.id, True, at=later), store.set_enabled(b.id, True, at=later), store.endpoint(b.id)]
    answers += [store.set_enabled("wh_" + "9" * 32, False, at=later)]
    # Disabling for failing too long, on the failing clock read (an enable or a success since wins)
    store.record_attempt(b.id, AttemptRecord(later, False, 503, "HTTP 503", 1))
    answers += [store.set_enabled(b.id, False, at=later, reason="stale", failing_since=START)]
    answers += [store.set_enabled(b.id, False, at=later, reason="current", failing_since=later)]
    # A retry dropped unsent gives back its pending count and nothing else
    store.record_attempt(b.id, AttemptRecord(later + timedelta(1), False, pending_change=-1, made=False))
    answers += [store.endpoint(b.id)]
    return answers


def test_edits_and_the_switch_answer_the_same_on_both(stack: MotoStack) -> None:
    def as_04(endpoint: WebhookEndpoint) -> None:
        item = endpoint_to_item(endpoint)
        del item["subscription_key"], item["format"], item["enabled"]
        stack.client("dynamodb").put_item(TableName=stack.ref("StateTable"), Item=item)

    double = InMemoryWebhookStore()
    expected = edits(DynamoDbWebhookStore(stack.client("dynamodb"), stack.ref("StateTable")), as_04)
    assert edits(double, double.add_04) == expected
    a_id, b_id = "wh_" + "a" * 32, "wh_" + "b" * 32
    assert expected[0] is True
    assert (expected[1].description, expected[1].rate_limit) == ("ops", 2.5)
    assert expected[2:4] == [True, False]  # the edit on a stale read is refused
    assert (expected[4].event_types, expected[4].description, expected[4].filter) == (
        ("post.account.posted",), "ops", None
    )  # fmt: skip
    assert expected[5] == f"WebhookExistsError: {b_id}"
    assert expected[6] is True
    assert expected[7].url == "https://hooks.example.com/c"
    assert expected[8:10] == ["created", f"WebhookExistsError: {a_id}"]  # the old URL free, the new one taken
    assert expected[10] is False
    assert expected[11] is True
    assert (expected[12].url, expected[12].description) == ("https://hooks.example.com/new", "moved")
    assert expected[13:15] == ["created", f"WebhookExistsError: {'wh_' + '0' * 32}"]
    assert expected[15:17] == [True, False]  # one disabling wins
    disabled = expected[17]
    assert (disabled.enabled, disabled.disabled_at, disabled.disabled_reason) == (
        False, START + timedelta(hours=1), "failing for 120 hours"
    )  # fmt: skip
    assert disabled.health.failing_since == START
    assert expected[18:20] == [True, False]
    enabled = expected[20]
    assert (enabled.enabled, enabled.disabled_at, enabled.disabled_reason, enabled.health.failing_since) == (
        True, None, None, None
    )  # fmt: skip
    assert expected[21] is False
    assert expected[22:24] == [False, True]  # the stale failing clock is refused, the current one switches it off
    dropped, later = expected[24], START + timedelta(hours=1)
    assert (dropped.disabled_reason, dropped.health.attempts_pending) == ("current", 1)
    assert (dropped.health.failing_since, dropped.health.last_failure_at) == (later, later)
