"""An attempt on the doubles: whatever raises inside it is a recorded failure that follows the retry schedule, and
the delivery function starts no attempt it cannot finish before its own deadline."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay.models.webhook_api import CreateWebhookRequest
from genviral_relay.receivers import sender
from genviral_relay.receivers.sender import SystemResolver
from genviral_relay.rules.webhook_retries import RETRY_DELAYS
from genviral_relay.rules.webhook_urls import Destination
from genviral_relay.webhooks.attempts import RECORD_MARGIN, DeliveryItem, WebhookAttempts
from genviral_relay.webhooks.fanout import FanoutItem
from genviral_relay.webhooks.ports import WebhookAnswer
from tests.builders import relay_event
from tests.support.doubles import (
    RecordingSender,
    StaticResolver,
)
from tests.support.webhook_rig import START, WebhookRig


class RaisingSender(RecordingSender):
    """A sender that raises, its text holding what must never reach a record or a log."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        super().post(destination, headers, body)
        raise self.error


class Rig(WebhookRig):
    def __init__(self, sender: RecordingSender | None = None, *, threads: int = 1) -> None:
        super().__init__(sender or RecordingSender(), threads=threads)

    def register(self, url: str = "https://hooks.example.com/genviral") -> str:
        return self.registry.create(CreateWebhookRequest(url=url)).id

    def publish(self, count: int) -> None:
        for index in range(count):
            stored = relay_event("post.account.failed", f"e{index}")
            self.events.add(stored)
            fanned = FanoutItem(f"m{index}", stored.event_id, stored.event_type, stored.post_id)
            assert self.fanout.run([fanned]) == []

    def take(self) -> list[DeliveryItem]:
        return [DeliveryItem(f"d{index}", delivery) for index, delivery in enumerate(self.queue.take())]


@pytest.mark.parametrize(
    "error", [RuntimeError("boom whsec_c2VjcmV0"), UnicodeEncodeError("ascii", "ü", 0, 1, "no"), KeyError("k")]
)
def test_an_attempt_that_raises_is_a_recorded_failure_retried_on_the_schedule(error: Exception) -> None:
    # Given an endpoint whose sender raises
    rig = Rig(RaisingSender(error))
    webhook_id = rig.register()
    rig.publish(1)

    # When its delivery is attempted
    failed = rig.attempts.run(rig.take())

    # Then the message is done with (not handed back to SQS), the failure is recorded with the exception's type
    # alone, and the next attempt is queued after the schedule's first delay
    assert failed == []
    health = rig.store.items[webhook_id].health
    assert health.last_failure_reason == f"not delivered: the attempt raised {type(error).__name__}"
    assert (health.failing_since, health.attempts_pending) == (START, 1)
    (retry,) = rig.queue.sent
    assert (retry.attempt, retry.due_at) == (2, START + RETRY_DELAYS[0])
    assert len(rig.sender.posts) == 1


def test_a_resolver_that_raises_something_else_than_oserror_is_a_recorded_failure_too() -> None:
    class BrokenResolver(StaticResolver):
        def addresses(self, host: str, port: int) -> list[str]:
            if host == "broken.example.com":
                raise UnicodeError("label too long")
            return super().addresses(host, port)

    rig = Rig()
    rig.attempts = WebhookAttempts(
        store=rig.store,
        events=rig.events,
        secrets=rig.box,
        queue=rig.queue,
        sender=rig.sender,
        resolver=BrokenResolver({"hooks.example.com": ["93.184.216.34"]}),
        clock=lambda: rig.now,
        allow_private=False,
        log=rig.delivery_log,
        pacer=rig.pacer,
        disabler=rig.disabler,
    )
    webhook_id = rig.register()
    rig.store.items[webhook_id] = rig.store.items[webhook_id].model_copy(
        update={"url": "https://broken.example.com/hook"}
    )
    rig.publish(1)
    assert rig.attempts.run(rig.take()) == []
    assert rig.store.items[webhook_id].health.last_failure_reason == "not delivered: the attempt raised UnicodeError"
    assert [delivery.attempt for delivery in rig.queue.sent] == [2]


class Budget:
    """The delivery function's remaining time: `left` at first, less each attempt's sender timeout as it is made."""

    def __init__(self, rig: Rig, left: timedelta) -> None:
        self._rig = rig
        self._left = left

    def __call__(self) -> timedelta:
        return self._left - len(self._rig.sender.posts) * timedelta(seconds=self._rig.sender.timeout)


def test_the_batch_starts_only_the_attempts_that_fit_in_the_functions_time_and_queues_the_rest_unchanged() -> None:
    # Given five due deliveries, and time for three attempts (each needs the sender's timeout and a margin)
    rig = Rig()
    webhook_id = rig.register()
    rig.publish(5)
    items = rig.take()
    need = timedelta(seconds=rig.sender.timeout) + RECORD_MARGIN
    budget = Budget(rig, left=2 * timedelta(seconds=rig.sender.timeout) + need)

    # When the delivery function runs them
    failed = rig.attempts.run(items, time_left=budget)

    # Then three are attempted; two go back to the queue as they were, neither attempted nor counted
    assert failed == []
    assert [headers["webhook-id"] for _, headers, _ in rig.sender.posts] == ["e0", "e1", "e2"]
    assert rig.queue.sent == [item.delivery for item in items[3:]]
    assert all(delivery.attempt == 1 for delivery in rig.queue.sent)
    health = rig.store.items[webhook_id].health
    assert (health.attempts_pending, health.failing_since, health.last_failure_reason) == (0, None, None)


def test_no_attempt_starts_when_the_function_has_not_the_time_for_one_even_on_many_threads() -> None:
    rig = Rig(threads=10)
    rig.register()
    rig.publish(3)
    items = rig.take()
    just_short = timedelta(seconds=rig.sender.timeout) + RECORD_MARGIN - timedelta(milliseconds=1)

    assert rig.attempts.run(items, time_left=lambda: just_short) == []

    assert rig.sender.posts == []
    assert sorted(rig.queue.sent, key=lambda d: d.event_id) == [item.delivery for item in items]


def test_a_delivery_that_could_not_be_queued_again_comes_back_from_sqs_instead() -> None:
    rig = Rig()
    rig.register()
    rig.publish(1)
    items = rig.take()
    rig.queue.failing = True
    assert rig.attempts.run(items, time_left=lambda: timedelta(0)) == ["d0"]
    assert rig.sender.posts == []


def test_an_attempt_whose_lookup_and_keys_took_the_time_its_send_needs_goes_back_unsent() -> None:
    # Given time for one attempt when the batch starts, and a name lookup (the endpoint owner's DNS) that eats it
    rig = Rig()
    rig.register()
    rig.publish(1)
    (item,) = rig.take()
    need = timedelta(seconds=rig.sender.timeout) + RECORD_MARGIN
    left = [need + timedelta(seconds=1)]

    class StallingResolver(StaticResolver):
        def addresses(self, host: str, port: int) -> list[str]:
            left[0] -= timedelta(seconds=2)
            return super().addresses(host, port)

    rig.attempts = WebhookAttempts(
        store=rig.store, events=rig.events, secrets=rig.box, queue=rig.queue, sender=rig.sender,
        resolver=StallingResolver({"hooks.example.com": ["93.184.216.34"]}), clock=lambda: rig.now,
        allow_private=False, log=rig.delivery_log, pacer=rig.pacer, disabler=rig.disabler,
    )  # fmt: skip

    # When it is attempted
    assert rig.attempts.run([item], time_left=lambda: left[0]) == []

    # Then nothing is sent: it is queued again as it was (carrying its event's document), not counted as an attempt
    assert rig.sender.posts == []
    (again,) = rig.queue.sent
    assert again.model_copy(update={"document": None}) == item.delivery
    assert again.document is not None
    assert json.loads(again.document)["event_id"] == item.delivery.event_id


def test_every_message_an_attempt_queues_carries_the_stored_document_for_a_04_function() -> None:
    # Given an endpoint that refuses the first attempt
    rig = Rig(RecordingSender(WebhookAnswer(status=503, reason="busy")))
    rig.register()
    rig.publish(1)

    # When it is attempted
    rig.attempts.run(rig.take())

    # Then the retry's message carries exactly the document that was signed
    ((_, _, signed),) = rig.sender.posts
    (retry,) = rig.queue.sent
    assert retry.document is not None
    assert retry.document.encode() == signed


def test_the_systems_lookup_gives_up_after_its_budget() -> None:
    held = threading.Event()

    def stalled(*_: object, **__: object) -> list[Any]:
        held.wait(timeout=30)
        return []

    original = sender.socket.getaddrinfo
    sender.socket.getaddrinfo = stalled  # type: ignore[assignment]
    try:
        with pytest.raises(OSError, match=r"took over 0\.05 s"):
            SystemResolver(timeout=0.05).addresses("hooks.example.com", 443)
    finally:
        held.set()
        sender.socket.getaddrinfo = original
