"""The webhook use cases wired on the in-memory doubles, as the three webhook functions wire them on AWS: what the
webhook specs drive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from genviral_relay.rules.endpoint_health import DEFAULT_DISABLE_AFTER_HOURS, disable_after
from genviral_relay.webhooks.attempts import WebhookAttempts
from genviral_relay.webhooks.endpoint_health import EndpointDisabler
from genviral_relay.webhooks.fanout import WebhookFanout
from genviral_relay.webhooks.registry import WebhookRegistry
from tests.support.doubles import (
    InMemoryDeliveryQueue,
    InMemorySecretBox,
    InMemoryStoredEvents,
    InMemoryWebhookStore,
    RecordingSender,
    StaticResolver,
)
from tests.support.event_log_doubles import InMemoryDeliveryLog, InMemoryEventLog, InMemoryPacer, RecordingNotices

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
RETENTION = timedelta(days=30)


class WebhookRig:
    def __init__(self, sender: RecordingSender, *, threads: int = 10, box: InMemorySecretBox | None = None) -> None:
        self.now = START
        self.store = InMemoryWebhookStore()
        self.box = box or InMemorySecretBox()
        self.queue = InMemoryDeliveryQueue()
        self.resolver = StaticResolver({"hooks.example.com": ["93.184.216.34"]})
        self.sender = sender
        self.events = InMemoryStoredEvents()
        self.delivery_log = InMemoryDeliveryLog()
        self.pacer = InMemoryPacer()
        self.feed = InMemoryEventLog()
        self.notices = RecordingNotices()
        self.disabler = EndpointDisabler(
            store=self.store,
            publishers=[self.notices],
            feed=lambda: self.feed,
            disable_after=disable_after(DEFAULT_DISABLE_AFTER_HOURS),
            clock=lambda: self.now,
        )
        self.registry = WebhookRegistry(
            store=self.store,
            secrets=self.box,
            queue=self.queue,
            events=self.events,
            feed=self.feed,
            resolver=self.resolver,
            clock=lambda: self.now,
            allow_private=False,
            event_retention=RETENTION,
        )
        self.fanout = WebhookFanout(store=self.store, queue=self.queue, log=self.delivery_log, clock=lambda: self.now)
        self.attempts = WebhookAttempts(
            store=self.store,
            events=self.events,
            secrets=self.box,
            queue=self.queue,
            sender=self.sender,
            resolver=self.resolver,
            clock=lambda: self.now,
            allow_private=False,
            log=self.delivery_log,
            pacer=self.pacer,
            disabler=self.disabler,
            threads=threads,
        )
