"""The composition root of webhook delivery: the endpoint store, the delivery queue, the stored events and the
signing keys' box, and the objects the API's webhook routes, the dispatcher and the delivery function build once.
Split from `factories.py` (the shared adapters, the check path, the poller and the worker) to keep each short;
the functions' clock is `factories.utc_now`, looked up when an object is built, as there."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from genviral_relay import factories
from genviral_relay.factories import ClientFactory, aws_client, built_once
from genviral_relay.observability import label_stack
from genviral_relay.rules.webhook_retries import events_kept_for
from genviral_relay.settings import api_settings, webhook_delivery_settings, webhook_dispatcher_settings

if TYPE_CHECKING:
    from genviral_relay.feed.ports import EventLog
    from genviral_relay.rules.webhook_urls import HostResolver
    from genviral_relay.webhooks.attempts import WebhookAttempts
    from genviral_relay.webhooks.fanout import WebhookFanout
    from genviral_relay.webhooks.ports import DeliveryQueue, StoredEvents, WebhookStore
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


def build_event_log(table_name: str, retention: timedelta, client: ClientFactory = aws_client) -> EventLog:
    """The feed (`aws/event_log.py`), built on first use."""
    feed: EventLog = _later("event_log", "DynamoDbEventLog", client("dynamodb"), table_name, retention)
    return feed


def _later(module: str, name: str, client: Any, table_name: str, retention: timedelta) -> Any:
    """The table adapter `genviral_relay.aws.<module>.<name>(client, table_name, event_retention=retention)`,
    imported and built on its first use, not with the object that holds it: the feed's and the delivery log's
    (issue 22) are written beside this wiring, and a function that never reads them (an API request other than a
    resend, a fan-out that records nothing) does not depend on them."""
    return _Later(lambda: getattr(importlib.import_module(f"genviral_relay.aws.{module}"), name)(
        client, table_name, event_retention=retention
    ))  # fmt: skip


class _Later:
    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._built: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._built is None:
            self._built = self._build()
        return getattr(self._built, attribute)


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
def webhook_fanout() -> WebhookFanout:
    from genviral_relay.webhooks.fanout import WebhookFanout

    settings = webhook_dispatcher_settings()
    label_stack(settings.stack_name)
    retention = events_kept_for(settings.event_retention_days)
    return WebhookFanout(
        store=build_webhook_store(settings.table_name),
        queue=build_delivery_queue(settings.webhook_delivery_queue_url, ""),  # the fan-out never parks
        log=_later("delivery_log", "DynamoDbDeliveryLog", aws_client("dynamodb"), settings.table_name, retention),
        clock=factories.utc_now,
    )


@built_once
def webhook_attempts() -> WebhookAttempts:
    from genviral_relay.aws.webhook_secrets import KmsSecretBox
    from genviral_relay.receivers.sender import HttpWebhookSender
    from genviral_relay.webhooks.attempts import WebhookAttempts

    settings = webhook_delivery_settings()
    label_stack(settings.stack_name)
    return WebhookAttempts(
        store=build_webhook_store(settings.table_name),
        events=build_stored_events(settings.table_name),
        secrets=KmsSecretBox(aws_client("kms"), settings.webhook_secrets_key_arn),  # kept: it caches opened keys
        queue=build_delivery_queue(settings.webhook_delivery_queue_url, settings.webhook_dlq_url),
        sender=HttpWebhookSender(),
        resolver=host_resolver(),
        clock=factories.utc_now,
        allow_private=settings.allow_private_webhook_urls,
    )
