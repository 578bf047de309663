"""Composition root: the only place that builds AWS clients, the HTTP session and the use cases.

Everything is built on first use and kept for the life of the execution environment, so warm
invocations reuse clients and pooled connections and cold starts pay only for what they use.
The first store a function builds (every handler starts with one) also labels its metrics with
the stack's name.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from genviral_relay.clock import utc_now
from genviral_relay.logic.check_post import PostChecker
from genviral_relay.logic.ports import EventPublisher
from genviral_relay.logic.schedule import PollingPolicy, tick_of
from genviral_relay.observability import label_stack
from genviral_relay.settings import CheckerSettings, checker_settings, clear_settings_cache, poller_settings

if TYPE_CHECKING:
    from genviral_relay.aws.dynamodb_store import DynamoDbWatchStore
    from genviral_relay.aws.work_queue import SqsWorkQueue


@cache
def aws_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # The SDK's own retries cover throttled and failed calls; timeouts keep a stuck call from
    # eating the function's whole budget. AWS_ENDPOINT_URL (local stacks) is honoured by boto3.
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def _store(table_name: str, event_retention: timedelta) -> DynamoDbWatchStore:
    from genviral_relay.aws.dynamodb_store import DynamoDbWatchStore

    return DynamoDbWatchStore(aws_client("dynamodb"), table_name, event_retention=event_retention, clock=utc_now)


@cache
def poller_store() -> DynamoDbWatchStore:
    settings = poller_settings()
    label_stack(settings.stack_name)
    return _store(settings.table_name, timedelta(days=1))


@cache
def work_queue() -> SqsWorkQueue:
    from genviral_relay.aws.work_queue import SqsWorkQueue

    return SqsWorkQueue(aws_client("sqs"), poller_settings().work_queue_url)


def _publishers(settings: CheckerSettings) -> list[EventPublisher]:
    from genviral_relay.aws.publishers import EventBridgePublisher, SnsPublisher

    publishers: list[EventPublisher] = []
    if "sns" in settings.targets:
        publishers.append(SnsPublisher(aws_client("sns"), settings.topic_arn))
    if "eventbridge" in settings.targets:
        publishers.append(EventBridgePublisher(aws_client("events"), settings.event_bus_name))
    return publishers


@cache
def checker_store() -> DynamoDbWatchStore:
    settings = checker_settings()
    label_stack(settings.stack_name)
    return _store(settings.table_name, timedelta(days=settings.event_retention_days))


@cache
def post_checker() -> PostChecker:
    from genviral_relay.aws.dead_letters import SqsDeadLetters
    from genviral_relay.aws.secrets import SecretsManagerTokenSource
    from genviral_relay.genviral.client import GenviralClient

    settings = checker_settings()
    tokens = SecretsManagerTokenSource(aws_client("secretsmanager"), settings.genviral_secret_arn)
    return PostChecker(
        store=checker_store(),
        source=GenviralClient(str(settings.genviral_api_url), tokens),
        publishers=_publishers(settings),
        dead_letters=SqsDeadLetters(aws_client("sqs"), settings.events_dlq_url, clock=utc_now),
        clock=utc_now,
        policy=PollingPolicy(
            tick=tick_of(settings.poll_schedule),
            failed_retry_window=timedelta(hours=settings.failed_retry_window_hours),
        ),
    )


def reset() -> None:
    """Forget every built object and the settings (tests and the local runner change the environment)."""
    for factory in (aws_client, poller_store, work_queue, checker_store, post_checker):
        factory.cache_clear()
    clear_settings_cache()
