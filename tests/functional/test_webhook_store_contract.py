"""One script on the DynamoDB webhook store (moto) and on its in-memory double: the same answers, so what the
specs see of the double is what a deployment does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from genviral_relay.aws.webhook_store import DynamoDbWebhookStore
from genviral_relay.models.webhooks import SigningSecret, WebhookEndpoint
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
    store.create(second)
    store.create(first)
    answers: list[Any] = [store.endpoints(), store.endpoint(first.id), store.endpoint("wh_" + "9" * 32)]
    store.record_attempt(first.id, AttemptRecord(START, False, 503, "HTTP 503: Service Unavailable", 1))
    store.record_attempt(first.id, AttemptRecord(START + timedelta(seconds=5), False, None, "connection reset", 0))
    answers.append(store.endpoint(first.id))
    store.record_attempt(first.id, AttemptRecord(START + timedelta(minutes=5), True, 200, None, -1))
    answers.append(store.endpoint(first.id))
    rotated = (SigningSecret(value="whsec_dHdv"), SigningSecret(value="whsec_b25l", expires_at=START + timedelta(1)))
    answers += [store.replace_secrets(first.id, rotated), store.endpoint(first.id)]
    answers += [store.delete(first.id), store.delete(first.id), store.replace_secrets(first.id, rotated)]
    store.record_attempt(first.id, AttemptRecord(START, False, 500, "gone", 1))  # nothing: no such endpoint
    answers += [store.endpoint(first.id), store.endpoints()]
    return answers


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
