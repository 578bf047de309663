"""Composition root: the only place that builds AWS clients, the HTTP session and the use cases. Everything is
built on first use and kept for the life of the execution environment, so warm invocations reuse clients and
pooled connections and cold starts pay only for what they use. The first store a function builds (every handler
starts with one) also labels its metrics with the stack's name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import _lru_cache_wrapper, cache
from typing import TYPE_CHECKING, Any, TypeVar

from genviral_relay import clock
from genviral_relay.clock import Clock
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.observability import label_stack
from genviral_relay.settings import (
    checker_settings,
    clear_settings_cache,
    poller_settings,
)

# Each function imports only what it builds (cold starts are measured): these are named for the annotations.
if TYPE_CHECKING:
    from botocore.config import Config

    from genviral_relay.aws.dynamodb_store import DynamoDbStore
    from genviral_relay.checking.ports import EventPublisher, PostSource, TokenSource, WorkspaceKeys
    from genviral_relay.genviral.client import GenviralClient
    from genviral_relay.models.domain import Target
    from genviral_relay.polling.ports import WorkQueue
    from genviral_relay.relay import Relay
    from genviral_relay.rules.schedule import PollingPolicy


ClientFactory = Callable[[str], Any]
"""Makes the boto3 client of one AWS service."""
utc_now: Clock = clock.utc_now
"""The functions' clock, looked up when an object is built: tests and the demo move it (then `reset`)."""
Built = TypeVar("Built")
_BUILT_ONCE: list[_lru_cache_wrapper[Any]] = []


def built_once(factory: Callable[..., Built]) -> _lru_cache_wrapper[Built]:
    """A factory whose object is kept for the execution environment, and forgotten by `reset` (here and in
    `webhook_factories.py`)."""
    kept = cache(factory)
    _BUILT_ONCE.append(kept)
    return kept


def aws_client_config() -> Config:
    from botocore.config import Config

    # The SDK's own retries cover throttled and failed calls; timeouts keep a stuck call from
    # eating the function's whole budget. AWS_ENDPOINT_URL (local stacks) is honoured by boto3.
    return Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


@built_once
def aws_client(service: str) -> Any:
    import boto3

    return boto3.client(service, config=aws_client_config())  # type: ignore[call-overload]


def build_store(table_name: str, event_retention: timedelta, client: ClientFactory = aws_client) -> DynamoDbStore:
    from genviral_relay.aws.dynamodb_store import DynamoDbStore

    return DynamoDbStore(client("dynamodb"), table_name, event_retention=event_retention, clock=utc_now)


@built_once
def poller_store() -> DynamoDbStore:
    settings = poller_settings()
    label_stack(settings.stack_name)
    return build_store(settings.table_name, timedelta(days=1))


def build_publishers(
    targets: Sequence[Target],
    *,
    topic_arn: str,
    event_bus_name: str,
    webhook_fanout_queue_url: str = "",
    client: ClientFactory = aws_client,
) -> list[EventPublisher]:
    from genviral_relay.aws.publishers import EventBridgePublisher, SnsPublisher, WebhookFanoutPublisher

    publishers: list[EventPublisher] = []
    if "sns" in targets:
        publishers.append(SnsPublisher(client("sns"), topic_arn))
    if "eventbridge" in targets:
        publishers.append(EventBridgePublisher(client("events"), event_bus_name))
    if "webhooks" in targets:
        publishers.append(WebhookFanoutPublisher(client("sqs"), webhook_fanout_queue_url))
    return publishers


def build_relay(
    *,
    store: DynamoDbStore,
    source: PostSource,
    targets: Sequence[Target],
    topic_arn: str,
    event_bus_name: str,
    events_dlq_url: str,
    policy: PollingPolicy,
    webhook_fanout_queue_url: str = "",
    client: ClientFactory = aws_client,
    deployment_key: bool = True,
    account_checks: bool = False,
    workspace: str = DEFAULT_WORKSPACE,
) -> Relay:
    """The check path on these AWS resources: the functions' (from their settings) or the operations CLI's
    (`deployment_key`: False when it calls Genviral with a key of its own; `account_checks`, `workspace`: see
    `compose_relay`; `store` is that workspace's view)."""
    from genviral_relay.aws.dead_letters import SqsDeadLetters
    from genviral_relay.relay import compose_relay

    return compose_relay(
        store=store,
        state=store,
        source=source,
        publishers=build_publishers(
            targets,
            topic_arn=topic_arn,
            event_bus_name=event_bus_name,
            webhook_fanout_queue_url=webhook_fanout_queue_url,
            client=client,
        ),
        dead_letters=SqsDeadLetters(client("sqs"), events_dlq_url, clock=utc_now),
        clock=utc_now,  # looked up when built: tests and the demo move this module's clock, then reset()
        policy=policy,
        feed=store.feed,
        deployment_key=deployment_key,
        account_checks=account_checks,
        workspace=workspace,
    )


@built_once
def checker_store() -> DynamoDbStore:
    settings = checker_settings()
    label_stack(settings.stack_name)
    from genviral_relay.rules.webhook_retries import events_kept_for

    return build_store(settings.table_name, events_kept_for(settings.event_retention_days))


def build_workspace_keys(secret_arn: str, client: ClientFactory = aws_client) -> WorkspaceKeys:
    """Every workspace's Genviral key, read from the one Secrets Manager secret (one cached read for all)."""
    from genviral_relay.aws.secrets import SecretsManagerWorkspaceKeys

    return SecretsManagerWorkspaceKeys(client("secretsmanager"), secret_arn)


def build_token_source(secret_arn: str, client: ClientFactory = aws_client) -> TokenSource:
    """The default workspace's Genviral key (a 0.4 secret's one key), read from its Secrets Manager secret."""
    return build_workspace_keys(secret_arn, client).token_source(DEFAULT_WORKSPACE)


def build_genviral_client(api_url: str, tokens: TokenSource) -> GenviralClient:
    from genviral_relay.genviral.client import GenviralClient

    return GenviralClient(api_url, tokens)


def build_work_queue(queue_url: str, client: ClientFactory = aws_client) -> WorkQueue:
    from genviral_relay.aws.work_queue import SqsWorkQueue

    return SqsWorkQueue(client("sqs"), queue_url)


# ---------------------------------------------------------------------- webhooks
def reset() -> None:
    """Forget every built object and the settings (tests and the local runner change the environment)."""
    for factory in _BUILT_ONCE:
        factory.cache_clear()
    clear_settings_cache()
