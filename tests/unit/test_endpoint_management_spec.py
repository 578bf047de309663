"""Endpoint management on the doubles: filters and the switch at the fan-out, edits, enable and disable, resend."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from genviral_relay.clock import format_ts, parse_ts
from genviral_relay.errors import (
    EnqueueError,
    EventNotFoundError,
    MissedNotQueuedError,
    ResendRefusedError,
    WebhookConflictError,
    WebhookDisabledError,
    WebhookExistsError,
    WebhookNotFoundError,
)
from genviral_relay.models.event_log import DeliveryState, FeedEntry
from genviral_relay.models.events import published_document
from genviral_relay.models.webhook_api import CreateWebhookRequest, EditWebhookRequest, ResendRequest
from genviral_relay.models.webhooks import EndpointFilter, WebhookEndpoint
from genviral_relay.rules.webhook_urls import UrlRefusedError
from genviral_relay.webhooks.attempts import DeliveryItem
from genviral_relay.webhooks.fanout import FanoutItem
from genviral_relay.webhooks.ports import WebhookAnswer
from genviral_relay.webhooks.resend import RETRY_SPAN, WebhookResend
from tests.builders import relay_event
from tests.support.doubles import RecordingSender
from tests.support.webhook_rig import RETENTION, START, WebhookRig

URL = "https://hooks.example.com/genviral"
FAILED_ID = "00000000-0000-4000-8000-000000000001"
POSTED_ID = "00000000-0000-4000-8000-000000000002"


class Rig(WebhookRig):
    def __init__(self) -> None:
        super().__init__(RecordingSender())

    def register(self, **fields: Any) -> str:
        url = fields.pop("url", f"{URL}/{len(self.store.items)}")
        return self.registry.create(CreateWebhookRequest(url=url, **fields)).id

    def publish(self, event_type: str, event_id: str, *, at: datetime | None = None) -> None:
        """An event the check committed: stored, in the feed at `at` (default now), fanned out."""
        event = relay_event(event_type, event_id)
        self.events.add(event)
        document = published_document(event).decode()
        committed = at or self.now
        self.feed.append([FeedEntry(committed_at=committed, event_id=event_id, event_type=event_type,
                                    post_id=event.post_id, document=document)])  # fmt: skip
        self.fanout.run([FanoutItem(f"m-{event_id}", event_id, event_type, event.post_id, document)])

    def queued(self) -> list[tuple[str, str]]:
        return sorted((delivery.webhook_id, delivery.event_id) for delivery in self.queue.take())


# ---------------------------------------------------------------- the fan-out


def test_a_filter_decides_at_the_fan_out_and_what_it_leaves_out_is_recorded_filtered() -> None:
    rig = Rig()
    instagram = rig.register(filter=EndpointFilter(platforms=("instagram",)))  # the samples' account
    tiktok = rig.register(filter=EndpointFilter(platforms=("tiktok",)))
    media = rig.register(filter=EndpointFilter(error_categories=("media_rejected",)))
    everything = rig.register()
    rig.publish("post.account.failed", FAILED_ID)
    assert rig.queued() == sorted((webhook, FAILED_ID) for webhook in (instagram, media, everything))
    assert rig.delivery_log.deliveries(FAILED_ID) == [
        DeliveryState(webhook_id=tiktok, event_id=FAILED_ID, state="filtered")
    ]
    rig.publish("post.account.posted", POSTED_ID)  # on TikTok, no error category: a category filter leaves it out
    assert rig.queued() == sorted((webhook, POSTED_ID) for webhook in (tiktok, everything))
    assert {state.webhook_id for state in rig.delivery_log.deliveries(POSTED_ID)} == {instagram, media}


def test_a_disabled_endpoint_gets_nothing_and_each_event_is_recorded_disabled_in_one_write() -> None:
    rig = Rig()
    off = rig.register()
    on = rig.register()
    rig.registry.disable(off, "maintenance")
    writes: list[int] = []
    record = rig.delivery_log.record_states
    rig.delivery_log.record_states = lambda states: (writes.append(len(states)), record(states))  # type: ignore[method-assign]
    events = [relay_event("post.account.failed", f"00000000-0000-4000-8000-00000000001{n}") for n in range(3)]
    rig.fanout.run([FanoutItem(f"m{n}", e.event_id, e.event_type, e.post_id, published_document(e).decode())
                    for n, e in enumerate(events)])  # fmt: skip
    assert {webhook for webhook, _ in rig.queued()} == {on}
    assert writes == [3]  # one batch for the fan-out's batch
    assert all(rig.delivery_log.deliveries(e.event_id) == [DeliveryState(webhook_id=off, event_id=e.event_id,
               state="disabled")] for e in events)  # fmt: skip


def test_a_delivery_log_that_fails_never_fails_the_fan_out() -> None:
    rig = Rig()
    rig.register(filter=EndpointFilter(platforms=("tiktok",)))
    taken = rig.register()

    def broken(_: object) -> None:
        raise RuntimeError("throttled")

    rig.delivery_log.record_states = broken  # type: ignore[method-assign]
    rig.publish("post.account.failed", FAILED_ID)
    assert rig.queued() == [(taken, FAILED_ID)]


def test_a_fan_out_item_without_a_readable_document_leaves_the_filter_to_the_attempt() -> None:
    rig = Rig()
    filtered = rig.register(filter=EndpointFilter(platforms=("tiktok",)))
    assert rig.fanout.run([FanoutItem("m", FAILED_ID, "post.account.failed", "p1", None)]) == []
    assert rig.queued() == [(filtered, FAILED_ID)]


# ---------------------------------------------------------------- edits


def test_an_edit_changes_the_fields_given_and_null_clears_a_nullable_one() -> None:
    rig = Rig()
    webhook_id = rig.register(description="ops", rate_limit=5, filter=EndpointFilter(platforms=("tiktok",)))
    edited = rig.registry.edit(webhook_id, EditWebhookRequest.model_validate({"filter": None, "rate_limit": 2}))
    assert (edited.filter, edited.rate_limit, edited.description) == (None, 2, "ops")
    stored = rig.store.items[webhook_id]
    assert (stored.filter, stored.rate_limit, stored.description) == (None, 2, "ops")
    moved = rig.registry.edit(webhook_id, EditWebhookRequest(url=f"{URL}/elsewhere", event_types=["post.completed"]))
    assert (moved.url, moved.event_types) == (f"{URL}/elsewhere", ("post.completed",))
    assert rig.register(url=f"{URL}/0")  # the old URL is free again
    assert rig.store.items[webhook_id].secrets == moved.secrets  # an edit keeps the keys


def test_an_edit_checks_the_url_as_a_registration_and_refuses_a_taken_one() -> None:
    rig = Rig()
    first, second = rig.register(), rig.register()
    with pytest.raises(UrlRefusedError):
        rig.registry.edit(first, EditWebhookRequest(url="http://hooks.example.com/plain"))
    with pytest.raises(WebhookExistsError, match=second):
        rig.registry.edit(first, EditWebhookRequest(url=f"{URL}/1"))
    with pytest.raises(WebhookNotFoundError):
        rig.registry.edit("wh_" + "9" * 32, EditWebhookRequest(description="x"))


def test_an_edit_reads_again_when_another_came_first_and_gives_up_with_a_conflict() -> None:
    rig = Rig()
    webhook_id = rig.register()
    update = rig.store.update
    refusals = iter([False, True])  # another edit came first once: read again, then written
    rig.store.update = lambda endpoint, previous: next(refusals) and update(endpoint, previous=previous)  # type: ignore[method-assign]
    assert rig.registry.edit(webhook_id, EditWebhookRequest(description="again")).description == "again"
    rig.store.update = lambda endpoint, previous: False  # type: ignore[method-assign]
    with pytest.raises(WebhookConflictError):
        rig.registry.edit(webhook_id, EditWebhookRequest(description="never"))


def test_an_empty_edit_and_clearing_what_cannot_be_cleared_are_refused_naming_the_fields() -> None:
    with pytest.raises(ValidationError, match="url, event_types, filter, description, rate_limit, format"):
        EditWebhookRequest.model_validate({})
    with pytest.raises(ValidationError, match="url cannot be null"):
        EditWebhookRequest.model_validate({"url": None})
    with pytest.raises(ValidationError, match="known: tiktok"):
        EditWebhookRequest.model_validate({"filter": {"platforms": ["myspace"]}})
    with pytest.raises(ValidationError, match="less than or equal to 100"):
        EditWebhookRequest.model_validate({"rate_limit": 1000})
    with pytest.raises(ValidationError, match=r"greater than or equal to 0\.0166"):  # slower: past the retention
        EditWebhookRequest.model_validate({"rate_limit": 0.001})


# ---------------------------------------------------------------- the switch


def test_disable_and_enable_are_answered_once_each_way_and_enable_restarts_the_failing_clock() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.store.items[webhook_id] = rig.store.items[webhook_id].model_copy(
        update={"health": rig.store.items[webhook_id].health.model_copy(update={"failing_since": START})}
    )
    off = rig.registry.disable(webhook_id)
    assert (off.enabled, off.disabled_at, off.disabled_reason) == (False, START, "disabled by an operator")
    rig.now += timedelta(hours=1)
    assert rig.registry.disable(webhook_id, "again").disabled_at == START  # off already: kept as it was
    on, queued = rig.registry.enable(webhook_id)
    assert (on.enabled, on.disabled_at, on.health.failing_since, queued) == (True, None, None, 0)
    with pytest.raises(WebhookNotFoundError):
        rig.registry.enable("wh_" + "9" * 32)


def test_enable_with_resend_missed_resends_what_it_takes_since_it_began_failing() -> None:
    rig = Rig()
    webhook_id = rig.register(event_types=["post.account.failed"])
    rig.publish("post.account.failed", "00000000-0000-4000-8000-0000000000a0")  # before: delivered then
    rig.queue.take()
    endpoint = rig.store.items[webhook_id]
    failing_since = START + timedelta(minutes=1)
    rig.store.items[webhook_id] = endpoint.model_copy(
        update={"health": endpoint.health.model_copy(update={"failing_since": failing_since})}
    )
    rig.now = START + RETRY_SPAN + timedelta(hours=2)  # the event before lies before the retries' span too
    rig.registry.disable(webhook_id, "failing for 120 hours")
    missed = [f"00000000-0000-4000-8000-0000000000b{n}" for n in range(3)]
    for n, event_id in enumerate(missed):
        rig.now += timedelta(minutes=1)
        rig.publish("post.account.failed", event_id, at=failing_since + timedelta(minutes=n))
    rig.publish("post.account.posted", POSTED_ID, at=failing_since)  # a type it does not take
    assert rig.queued() == []  # the fan-out gave it nothing
    on, queued = rig.registry.enable(webhook_id, resend_missed=True)
    assert (on.enabled, queued) == (True, 3)
    sent = rig.queue.take()
    assert sorted(delivery.event_id for delivery in sent) == missed
    assert {(d.attempt, d.due_at, d.webhook_id) for d in sent} == {(1, rig.now, webhook_id)}
    assert rig.registry.enable(webhook_id, resend_missed=True) == (on, 0)  # on already: nothing twice


def test_enable_refuses_a_resend_over_the_limit_before_turning_the_endpoint_on() -> None:
    rig = Rig()
    rig.registry.resend = WebhookResend(feed=rig.feed, queue=rig.queue, clock=lambda: rig.now,
                                        event_retention=RETENTION, limit=2)  # fmt: skip
    webhook_id = rig.register()
    rig.registry.disable(webhook_id)
    rig.now += timedelta(minutes=1)
    for n in range(3):
        rig.publish("post.account.failed", f"00000000-0000-4000-8000-0000000000c{n}", at=START + timedelta(seconds=n))
    with pytest.raises(ResendRefusedError, match="more than 2 deliveries"):
        rig.registry.enable(webhook_id, resend_missed=True)
    assert rig.store.items[webhook_id].enabled is False


def test_enable_resend_missed_covers_a_retry_dropped_while_off() -> None:
    rig = Rig()
    webhook_id = rig.register(event_types=["post.account.failed", "post.account.posted"])
    rig.sender.answers = [WebhookAnswer(status=503, reason="Service Unavailable")]
    rig.publish("post.account.failed", FAILED_ID)
    rig.attempts.run([DeliveryItem("a", d) for d in rig.queue.take()])  # fails: its retry is queued
    retry = rig.queue.take()
    rig.now += timedelta(seconds=1)
    rig.publish("post.account.posted", POSTED_ID)
    rig.attempts.run([DeliveryItem("b", d) for d in rig.queue.take()])  # delivered: the failing clock stops
    assert rig.store.items[webhook_id].health.failing_since is None
    rig.registry.disable(webhook_id, "maintenance")
    rig.now += timedelta(minutes=10)
    rig.attempts.run([DeliveryItem("r", d) for d in retry])  # the retry's turn: dropped unsent
    assert [s.state for s in rig.delivery_log.deliveries(FAILED_ID) if s.webhook_id == webhook_id] == ["disabled"]
    rig.registry.enable(webhook_id, resend_missed=True)
    assert FAILED_ID in {delivery.event_id for delivery in rig.queue.take()}


def test_enable_whose_resend_sqs_refused_names_the_range_to_resend() -> None:
    rig = Rig()
    webhook_id = rig.register(event_types=["post.account.failed"])
    failing_since = START - timedelta(days=2)  # earlier than the retry span before the disable
    endpoint = rig.store.items[webhook_id]
    rig.store.items[webhook_id] = endpoint.model_copy(
        update={"health": endpoint.health.model_copy(update={"failing_since": failing_since})}
    )
    rig.now = START + timedelta(hours=2)
    rig.registry.disable(webhook_id, "failing")
    rig.publish("post.account.failed", FAILED_ID, at=START + timedelta(minutes=5))
    rig.queue.failing = True
    with pytest.raises(MissedNotQueuedError) as refused:
        rig.registry.enable(webhook_id, resend_missed=True)
    assert (refused.value.webhook_id, refused.value.since) == (webhook_id, format_ts(failing_since))
    rig.queue.failing = False
    assert rig.registry.enable(webhook_id, resend_missed=True)[1] == 0  # on now: enabling again resends nothing
    assert rig.registry.resend_between(webhook_id, parse_ts(refused.value.since), None) == 1  # the range named


def test_a_resend_over_a_range_of_too_many_feed_entries_is_refused_before_reading_them_all() -> None:
    rig = Rig()
    rig.registry.resend = WebhookResend(feed=rig.feed, queue=rig.queue, clock=lambda: rig.now,
                                        event_retention=RETENTION, scan_limit=2)  # fmt: skip
    selective = rig.register(event_types=["post.account.failed"])
    for n in range(3):  # none of its type: it would take none of them, but the range is read in full to say so
        rig.publish("post.account.posted", f"00000000-0000-4000-8000-0000000000d{n}", at=START + timedelta(seconds=n))
    rig.queue.take()
    rig.now += timedelta(minutes=1)
    with pytest.raises(ResendRefusedError, match=r"more than 2 events were committed .* narrow since/until"):
        rig.registry.resend_between(selective, START, None)
    rig.registry.disable(selective)
    with pytest.raises(ResendRefusedError, match="narrow since/until"):
        rig.registry.enable(selective, resend_missed=True)
    assert rig.store.items[selective].enabled is False


# ---------------------------------------------------------------- resend


def test_resend_of_one_event_queues_attempt_one_due_now_with_the_stored_document() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.publish("post.account.failed", FAILED_ID)
    (first,) = rig.queue.take()
    rig.now += timedelta(days=2)
    assert rig.registry.resend_one(webhook_id, FAILED_ID) == 1
    (again,) = rig.queue.take()
    assert again == first.model_copy(update={"due_at": rig.now})


def test_resend_of_an_event_the_endpoint_does_not_take_says_why() -> None:
    rig = Rig()
    typed = rig.register(event_types=["post.account.posted"])
    filtered = rig.register(filter=EndpointFilter(platforms=("tiktok",)))
    rig.publish("post.account.failed", FAILED_ID)
    with pytest.raises(
        ResendRefusedError, match=r"post\.account\.failed event and the endpoint takes post\.account\.posted"
    ):
        rig.registry.resend_one(typed, FAILED_ID)
    with pytest.raises(ResendRefusedError, match="filter leaves it out"):
        rig.registry.resend_one(filtered, FAILED_ID)
    with pytest.raises(EventNotFoundError, match=POSTED_ID):
        rig.registry.resend_one(typed, POSTED_ID)
    disabled_doc = json.dumps({"event_type": "webhook.endpoint.disabled", "event_id": POSTED_ID})
    rig.feed.append([FeedEntry(committed_at=rig.now, event_id=POSTED_ID, event_type="webhook.endpoint.disabled",
                               post_id=None, document=disabled_doc)])  # fmt: skip
    with pytest.raises(ResendRefusedError, match="not delivered to webhooks"):
        rig.registry.resend_one(rig.register(), POSTED_ID)


def test_resend_to_a_disabled_endpoint_is_refused_until_it_is_enabled() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.publish("post.account.failed", FAILED_ID)
    rig.registry.disable(webhook_id)
    with pytest.raises(WebhookDisabledError):
        rig.registry.resend_one(webhook_id, FAILED_ID)
    with pytest.raises(WebhookDisabledError):
        rig.registry.resend_between(webhook_id, START, None)


def test_a_test_to_a_disabled_endpoint_is_refused_until_it_is_enabled() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.registry.disable(webhook_id)
    with pytest.raises(WebhookDisabledError):
        rig.registry.send_test(webhook_id)
    assert rig.queue.take() == []
    rig.registry.enable(webhook_id)
    sent = rig.registry.send_test(webhook_id)
    assert rig.queue.take() == [sent]


def test_resend_of_a_range_takes_each_event_once_of_the_types_and_filter_it_takes() -> None:
    rig = Rig()
    webhook_id = rig.register(event_types=["post.account.failed"], filter=EndpointFilter(platforms=("instagram",)))
    ids = [f"00000000-0000-4000-8000-0000000000d{n}" for n in range(4)]
    for n, event_id in enumerate(ids):
        rig.publish("post.account.failed", event_id, at=START + timedelta(minutes=n))
    rig.publish("post.account.posted", POSTED_ID, at=START)
    again = rig.feed.entry(ids[1])
    assert again is not None
    rig.feed.append([again.model_copy(update={"committed_at": START + timedelta(minutes=2)})])  # a slow commit's
    rig.queue.take()
    rig.now = START + timedelta(hours=1)
    assert rig.registry.resend_between(webhook_id, START, START + timedelta(minutes=3)) == 3  # until: exclusive
    assert sorted(delivery.event_id for delivery in rig.queue.take()) == ids[:3]
    assert rig.registry.resend_between(webhook_id, START + timedelta(minutes=3), None) == 1


def test_a_range_past_the_retention_or_over_the_limit_is_refused_naming_the_bound() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.now = START + RETENTION + timedelta(days=1)
    with pytest.raises(ResendRefusedError, match=r"older than the retention: events are kept 30 days, since 2026-03"):
        rig.registry.resend_between(webhook_id, START, None)
    rig.registry.resend = WebhookResend(feed=rig.feed, queue=rig.queue, clock=lambda: rig.now,
                                        event_retention=RETENTION, limit=1)  # fmt: skip
    for n in range(2):
        rig.publish("post.account.failed", f"00000000-0000-4000-8000-0000000000e{n}", at=rig.now - timedelta(minutes=1))
    rig.queue.take()
    with pytest.raises(ResendRefusedError, match=r"more than 1 deliveries .* narrow since/until"):
        rig.registry.resend_between(webhook_id, rig.now - timedelta(hours=1), None)
    assert rig.queue.take() == []  # refused before anything is queued


def test_a_resend_the_queue_refuses_says_so() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.publish("post.account.failed", FAILED_ID)
    rig.queue.failing = True
    with pytest.raises(EnqueueError, match="1 of 1 resent deliveries"):
        rig.registry.resend_one(webhook_id, FAILED_ID)


def test_a_resend_request_takes_exactly_one_form() -> None:
    with pytest.raises(ValidationError, match="either"):
        ResendRequest.model_validate({})
    with pytest.raises(ValidationError, match="either"):
        ResendRequest.model_validate({"event_id": FAILED_ID, "since": "2026-03-01T00:00:00Z"})
    with pytest.raises(ValidationError, match="later than until"):
        ResendRequest.model_validate({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"})
    with pytest.raises(ValidationError, match="an event id is a UUID"):
        ResendRequest.model_validate({"event_id": "e1"})
    with pytest.raises(ValidationError, match="timezone"):
        ResendRequest.model_validate({"since": "2026-03-01T00:00:00"})


def test_every_view_of_an_endpoint_shows_the_new_fields() -> None:
    from genviral_relay.models.webhook_api import WebhookCreated, WebhookDetail, WebhookView

    endpoint = WebhookEndpoint(id="wh_" + "1" * 32, url=URL, created_at=START, rate_limit=2.0,
                               filter=EndpointFilter(account_ids=("a1",)), enabled=False, disabled_at=START,
                               disabled_reason="off")  # fmt: skip
    fields = {"filter", "rate_limit", "format", "enabled", "disabled_at", "disabled_reason"}
    for view in (WebhookView.of(endpoint), WebhookDetail.of(endpoint)):
        shown = json.loads(view.model_dump_json())
        assert fields <= set(shown)
        assert shown["filter"] == {
            "platforms": None,
            "account_ids": ["a1"],
            "error_categories": None,
            "workspaces": None,
        }
    assert fields <= set(WebhookCreated.model_fields)
