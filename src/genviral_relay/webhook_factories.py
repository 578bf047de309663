"""The composition root of webhook delivery: the endpoint store, the delivery queue, the stored events and the
signing keys' box, and the objects the API's webhook routes, the dispatcher and the delivery function build once.
Split from `factories.py` (the shared adapters, the check path, the poller and the worker) to keep each short;
the functions' clock is `factories.utc_now`, looked up when an object is built, as there."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from genviral_relay import factories
from genviral_relay.factories import ClientFactory, aws_client, built_once
from genviral_relay.observability import label_stack
from genviral_relay.rules.webhook_retries import events_kept_for
from genviral_relay.settings import api_settings, webhook_delivery_settings, webhook_dispatcher_settings

if TYPE_CHECKING:
    from datetime import timedelta

    from genviral_relay.feed.ports import EventLog
    from genviral_relay.feed.reader import EventFeed
    from genviral_relay.rules.webhook_urls import HostResolver
    from genviral_relay.webhooks.attempt_log import AttemptLog
    from genviral_relay.webhooks.attempts import WebhookAttempts
    from genviral_relay.webhooks.fanout import WebhookFanout
    from genviral_relay.webhooks.ports import DeliveryLog, DeliveryPacer, DeliveryQueue, StoredEvents, WebhookStore
    from genviral_relay.webhooks.registry import WebhookRegistry


def build_webhook_store(table_name: str, client: ClientFactory = aws_client) -> WebhookStore:
    from genviral_relay.aws.webhook_store import DynamoDbWebhookStore

    return DynamoDbWebhookStore(client("dynamodb"), table_name)


def build_stored_events(table_name: str, client: ClientFactory = aws_client) -> StoredEvents:
    from genviral_relay.aws.stored_events import DynamoDbStoredEvents

    return DynamoDbStoredEvents(client("dynamodb"), table_name)


def build_delivery_queue(queue_url: str, dead_letter_url: str, client: ClientFactory = aws_client) -> DeliveryQueue:
    from genviral_relay.aws.webhook_queues import SqsDeliveryQueue

    return SqsDeliveryQueue(client("sqs"), queue_url, dead_letter_url, clock=factories.utc_now)


def build_event_log(table_name: str, event_retention: timedelta, client: ClientFactory = aws_client) -> EventLog:
    from genviral_relay.aws.event_log import DynamoDbEventLog

    return DynamoDbEventLog(client("dynamodb"), table_name, event_retention=event_retention)


def build_delivery_log(table_name: str, event_retention: timedelta, client: ClientFactory = aws_client) -> DeliveryLog:
    from genviral_relay.aws.delivery_log import DynamoDbDeliveryLog

    return DynamoDbDeliveryLog(client("dynamodb"), table_name, event_retention=event_retention)


def build_pacer(table_name: str, client: ClientFactory = aws_client) -> DeliveryPacer:
    from genviral_relay.aws.delivery_pacer import DynamoDbPacer

    return DynamoDbPacer(client("dynamodb"), table_name)


def build_event_feed(
    table_name: str,
    event_retention: timedelta,
    client: ClientFactory = aws_client,
    *,
    deliveries: DeliveryLog | None = None,
) -> EventFeed:
    """The feed's reader on these resources (`deliveries`: the delivery log, the table's when None)."""
    from genviral_relay.feed.reader import EventFeed

    return EventFeed(
        log=build_event_log(table_name, event_retention, client),
        deliveries=deliveries or build_delivery_log(table_name, event_retention, client),
        webhooks=build_webhook_store(table_name, client),
        clock=factories.utc_now,
        event_retention=event_retention,
    )


@built_once
def event_feed() -> EventFeed:
    settings = api_settings()
    return build_event_feed(settings.table_name, events_kept_for(settings.event_retention_days))


@built_once
def host_resolver() -> HostResolver:
    """The system's DNS (a test replaces `SystemResolver` to answer what it likes)."""
    from genviral_relay.receivers.sender import SystemResolver

    return SystemResolver()


@built_once
def webhook_registry() -> WebhookRegistry:
    from genviral_relay.aws.webhook_secrets import KmsSecretBox
    from genviral_relay.webhooks.registry import WebhookRegistry

    settings = api_settings()
    retention = events_kept_for(settings.event_retention_days)
    return WebhookRegistry(
        store=build_webhook_store(settings.table_name),
        secrets=KmsSecretBox(aws_client("kms"), settings.webhook_secrets_key_arn),  # seals only: its role encrypts
        queue=build_delivery_queue(settings.webhook_delivery_queue_url, ""),  # the API never parks
        events=build_stored_events(settings.table_name),
        feed=build_event_log(settings.table_name, retention),
        resolver=host_resolver(),
        clock=factories.utc_now,
        allow_private=settings.allow_private_webhook_urls,
        event_retention=retention,
    )


@built_once
def attempt_log() -> AttemptLog:
    from genviral_relay.webhooks.attempt_log import AttemptLog

    settings = api_settings()
    retention = events_kept_for(settings.event_retention_days)
    return AttemptLog(
        store=build_webhook_store(settings.table_name), log=build_delivery_log(settings.table_name, retention)
    )


@built_once
def webhook_fanout() -> WebhookFanout:
    from genviral_relay.webhooks.fanout import WebhookFanout

    settings = webhook_dispatcher_settings()
    label_stack(settings.stack_name)
    retention = events_kept_for(settings.event_retention_days)
    return WebhookFanout(
        store=build_webhook_store(settings.table_name),
        queue=build_delivery_queue(settings.webhook_delivery_queue_url, ""),  # the fan-out never parks
        log=build_delivery_log(settings.table_name, retention),
        clock=factories.utc_now,
    )


@built_once
def webhook_attempts() -> WebhookAttempts:
    from genviral_relay.aws.webhook_secrets import KmsSecretBox
    from genviral_relay.receivers.sender import HttpWebhookSender
    from genviral_relay.rules.endpoint_health import disable_after
    from genviral_relay.webhooks.attempts import WebhookAttempts
    from genviral_relay.webhooks.endpoint_health import EndpointDisabler
    from genviral_relay.webhooks.ports import NoticePublisher

    settings = webhook_delivery_settings()
    label_stack(settings.stack_name)
    retention = events_kept_for(settings.event_retention_days)
    store = build_webhook_store(settings.table_name)
    publishers = factories.build_publishers(
        settings.targets, topic_arn=settings.topic_arn, event_bus_name=settings.event_bus_name
    )
    return WebhookAttempts(
        store=store,
        events=build_stored_events(settings.table_name),
        secrets=KmsSecretBox(aws_client("kms"), settings.webhook_secrets_key_arn),  # kept: it caches opened keys
        queue=build_delivery_queue(settings.webhook_delivery_queue_url, settings.webhook_dlq_url),
        sender=HttpWebhookSender(),
        resolver=host_resolver(),
        clock=factories.utc_now,
        allow_private=settings.allow_private_webhook_urls,
        log=build_delivery_log(settings.table_name, retention),
        pacer=build_pacer(settings.table_name),
        disabler=EndpointDisabler(
            store=store,
            publishers=[publisher for publisher in publishers if isinstance(publisher, NoticePublisher)],
            feed=functools.partial(build_event_log, settings.table_name, retention),
            disable_after=disable_after(settings.webhook_disable_after_hours),
            clock=factories.utc_now,
        ),
    )
