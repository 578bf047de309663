"""Registrations under concurrency, on the real adapters (moto): the endpoint limit and one endpoint per URL and
event types hold when registrations race, and a table 0.4 wrote (no count, no subscriptions) is upgraded on first
use. Threads call the API's use case on the DynamoDB and KMS adapters (the Powertools resolver the handler runs is
one per process); the answers themselves are asked of the API function."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay import webhook_factories
from genviral_relay.aws.webhook_counts import COUNT_KEY
from genviral_relay.aws.webhook_items import endpoint_to_item
from genviral_relay.aws.webhook_secrets import KmsSecretBox
from genviral_relay.clock import utc_now
from genviral_relay.errors import TooManyWebhooksError, WebhookExistsError
from genviral_relay.models.webhook_api import CreateWebhookRequest
from genviral_relay.models.webhooks import SigningSecret, WebhookEndpoint
from genviral_relay.receivers import sender
from genviral_relay.webhooks.registry import MAX_ENDPOINTS, WebhookRegistry
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import SECRETS, TOKEN
from tests.support.doubles import StaticResolver

HOOKS = "https://hooks.example.com"


@pytest.fixture
def local_stack(emulator: GenviralEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStack]:
    # The API function resolves the hooks' host to a public address, without DNS
    monkeypatch.setattr(sender, "SystemResolver", lambda: StaticResolver({"hooks.example.com": ["93.184.216.34"]}))
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN) as running:
        yield running


def registry_on(stack: MotoStack) -> WebhookRegistry:
    """What the API function builds (webhook_factories.webhook_registry), on the stack's clients and a resolver that
    answers a public address for the hooks' host (no DNS)."""
    return WebhookRegistry(
        store=webhook_factories.build_webhook_store(stack.ref("StateTable"), client=stack.client),
        secrets=KmsSecretBox(stack.client("kms"), stack.resolver.attributes[("WebhookSecretsKey", "Arn")]),
        queue=webhook_factories.build_delivery_queue(stack.ref("WebhookDeliveryQueue"), "", client=stack.client),
        events=webhook_factories.build_stored_events(stack.ref("StateTable"), client=stack.client),
        resolver=StaticResolver({"hooks.example.com": ["93.184.216.34"]}),
        clock=utc_now,
        allow_private=False,
        event_retention=timedelta(days=1),
    )


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Each call on a thread of its own, all released together; what each answered or raised."""
    start = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            answers[index] = calls[index]()
        except Exception as error:  # the answer under test
            answers[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def stored_count(stack: MotoStack) -> int:
    item = stack.client("dynamodb").get_item(TableName=stack.ref("StateTable"), Key=COUNT_KEY)["Item"]
    return int(item["count"]["N"])


def test_twenty_concurrent_registrations_on_top_of_95_stop_at_exactly_100(local_stack: MotoStack) -> None:
    registry = registry_on(local_stack)
    for index in range(95):
        registry.create(CreateWebhookRequest(url=f"{HOOKS}/stored/{index}"))

    answers = at_once(
        [lambda n=index: registry.create(CreateWebhookRequest(url=f"{HOOKS}/new/{n}")) for index in range(20)]
    )

    refused = [answer for answer in answers if isinstance(answer, TooManyWebhooksError)]
    assert (len(refused), len(answers) - len(refused)) == (15, 5)
    assert len(registry.endpoints()) == MAX_ENDPOINTS == stored_count(local_stack)
    answer = LocalRunner(local_stack).api("POST", "/webhooks", {"url": f"{HOOKS}/one-more"})
    assert (answer.status, answer.body["error"]) == (409, "too_many_webhooks")
    # a deletion makes room for one
    deleted = registry.endpoints()[0].id
    registry.delete(deleted)
    assert registry.create(CreateWebhookRequest(url=f"{HOOKS}/one-more")).id != deleted
    assert stored_count(local_stack) == MAX_ENDPOINTS


def test_the_same_url_and_types_registered_twice_at_once_make_one_endpoint_and_name_it(local_stack: MotoStack) -> None:
    registry = registry_on(local_stack)
    for round_ in range(5):
        request = CreateWebhookRequest(url=f"{HOOKS}/same/{round_}", event_types=["post.account.failed"])
        answers = at_once([lambda request=request: registry.create(request)] * 2)

        (created,) = [answer for answer in answers if isinstance(answer, WebhookEndpoint)]
        (refused,) = [answer for answer in answers if isinstance(answer, WebhookExistsError)]
        assert str(refused) == created.id
    assert len(registry.endpoints()) == stored_count(local_stack) == 5


def test_the_api_answers_409_webhook_exists_naming_the_endpoint(local_stack: MotoStack) -> None:
    runner = LocalRunner(local_stack)
    body = {"url": f"{HOOKS}/crm", "event_types": ["post.completed", "post.account.failed"]}

    created = runner.api("POST", "/webhooks", body)
    again = runner.api("POST", "/webhooks", {**body, "event_types": list(reversed(body["event_types"]))})

    assert created.status == 201, created.body
    SECRETS.add(created.body["secret"].removeprefix("whsec_"))  # the sentinel: no log line may hold it
    assert again.status == 409
    assert again.body["error"] == "webhook_exists"
    assert created.body["id"] in again.body["message"]
    assert again.body["webhook_id"] == created.body["id"]  # for a program, without parsing the message
    assert created.body["secret"] not in str(again.body)
    # the same endpoint written otherwise: the host's case, the default port
    alias = runner.api("POST", "/webhooks", {**body, "url": "https://HOOKS.Example.com:443/crm"})
    assert (alias.status, alias.body["webhook_id"]) == (409, created.body["id"])


def test_a_table_written_by_0_4_is_counted_and_its_subscriptions_written_on_first_use(local_stack: MotoStack) -> None:
    dynamodb, table = local_stack.client("dynamodb"), local_stack.ref("StateTable")
    old = [
        WebhookEndpoint(
            id=f"wh_{n:032x}",
            url=f"{HOOKS}/old" if n < 2 else f"{HOOKS}/old/{n}",  # the first two: the same URL, as 0.4 allowed
            created_at=utc_now(),
            secrets=(SigningSecret(value="whsec_b25l"),),
        )
        for n in range(98)
    ]
    for endpoint in old:
        item = endpoint_to_item(endpoint)
        del item["subscription_key"]
        dynamodb.put_item(TableName=table, Item=item)
    registry = registry_on(local_stack)

    answers = at_once(
        [
            lambda: registry.create(CreateWebhookRequest(url=f"{HOOKS}/old")),
            *[lambda n=index: registry.create(CreateWebhookRequest(url=f"{HOOKS}/new/{n}")) for index in range(3)],
        ]
    )

    assert isinstance(answers[0], WebhookExistsError)
    assert str(answers[0]) == old[0].id  # the older of the two 0.4 endpoints with that URL
    assert sum(isinstance(answer, WebhookEndpoint) for answer in answers) == 2
    assert sum(isinstance(answer, TooManyWebhooksError) for answer in answers) == 1
    assert len(registry.endpoints()) == stored_count(local_stack) == MAX_ENDPOINTS


def test_a_04_endpoint_deleted_first_leaves_its_url_free_through_the_api(local_stack: MotoStack) -> None:
    old = WebhookEndpoint(id=f"wh_{4:032x}", url=f"{HOOKS}/old", created_at=utc_now())
    item = endpoint_to_item(old)
    del item["subscription_key"]  # as 0.4 wrote it: no subscription, no count
    local_stack.client("dynamodb").put_item(TableName=local_stack.ref("StateTable"), Item=item)
    runner = LocalRunner(local_stack)

    assert runner.api("DELETE", f"/webhooks/{old.id}").status == 200
    again = runner.api("POST", "/webhooks", {"url": f"{HOOKS}/old"})

    assert again.status == 201, again.body  # before: 409 naming the deleted endpoint, forever
    SECRETS.add(again.body["secret"].removeprefix("whsec_"))
    assert stored_count(local_stack) == 1
