"""The notices about an account or the relay (`account.*`, `relay.*`) as webhook types, on the doubles: which
filters let them through, their fan-out (about no post), the stored notice as the one body a delivery signs, their
story, their resend and their chat message."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay.errors import ResendRefusedError
from genviral_relay.feed.reader import EventFeed
from genviral_relay.models.event_log import DeliveryState, FeedEntry
from genviral_relay.models.events import published_document
from genviral_relay.models.relay_notices import AccountStatusEvent, RelayStateEvent
from genviral_relay.models.webhook_api import CreateWebhookRequest
from genviral_relay.models.webhooks import WEBHOOK_EVENT_TYPES, EndpointFilter, WebhookDelivery
from genviral_relay.observability import Metric
from genviral_relay.rules.chat.render import chat_body
from genviral_relay.rules.webhook_filters import passes
from genviral_relay.rules.webhook_signing import signed_headers
from genviral_relay.webhooks.attempts import DeliveryItem
from genviral_relay.webhooks.fanout import FanoutItem
from tests.builders import relay_event
from tests.support.doubles import RecordingSender
from tests.support.notice_samples import NOTICES, TIKTOK, notice
from tests.support.webhook_rig import RETENTION, START, WebhookRig
from tests.unit.world import emitted

URL = "https://hooks.example.com/genviral"
ACCOUNT_TYPES = ("account.disconnected", "account.reconnected")
RELAY_TYPES = ("relay.paused", "relay.resumed")
NOTICE_TYPES = (*ACCOUNT_TYPES, *RELAY_TYPES)


class Rig(WebhookRig):
    def __init__(self) -> None:
        super().__init__(RecordingSender())
        self.resolver.names["hooks.slack.com"] = ["34.201.1.1"]

    def register(self, **fields: Any) -> str:
        url = fields.pop("url", f"{URL}/{len(self.store.items)}")
        return self.registry.create(CreateWebhookRequest(url=url, **fields)).id

    def commit(self, document: AccountStatusEvent | RelayStateEvent) -> str:
        """A notice the notice outbox committed: stored, in the feed; its fan-out message as the publisher writes it
        (the body's document, no post)."""
        self.events.add(document)
        body = published_document(document).decode()
        self.feed.append([FeedEntry(committed_at=self.now, event_id=document.event_id,
                                    event_type=document.event_type, post_id=None, document=body)])  # fmt: skip
        return body

    def fan_out(self, document: AccountStatusEvent | RelayStateEvent) -> None:
        body = self.commit(document)
        item = FanoutItem(f"m-{document.event_id}", document.event_id, document.event_type, None, body)
        assert self.fanout.run([item]) == []

    def queued(self) -> list[tuple[str, str, str | None]]:
        return sorted((one.webhook_id, one.event_id, one.post_id) for one in self.queue.sent)

    def run_due(self) -> list[WebhookDelivery]:
        taken = self.queue.take()
        self.attempts.run([DeliveryItem(f"d{index}", delivery) for index, delivery in enumerate(taken)])
        return taken


# ---------------------------------------------------------------- which types, which filters


def test_an_endpoint_may_subscribe_to_each_notice_type_and_one_without_types_takes_them() -> None:
    rig = Rig()
    assert set(NOTICE_TYPES) <= set(WEBHOOK_EVENT_TYPES)
    assert "webhook.endpoint.disabled" not in WEBHOOK_EVENT_TYPES
    every = rig.store.items[rig.register()]
    assert all(every.accepts(event_type) for event_type in NOTICE_TYPES)
    chosen = rig.store.items[rig.register(event_types=["account.disconnected"])]
    assert [chosen.accepts(event_type) for event_type in NOTICE_TYPES] == [True, False, False, False]


@pytest.mark.parametrize("event_type", ACCOUNT_TYPES)
def test_an_accounts_notice_is_its_one_account_with_no_error_category(event_type: str) -> None:
    document = NOTICES[event_type]
    assert passes(EndpointFilter(platforms=("tiktok",)), document)
    assert not passes(EndpointFilter(platforms=("instagram",)), document)
    assert passes(EndpointFilter(account_ids=(TIKTOK.id,)), document)
    assert not passes(EndpointFilter(account_ids=("another",)), document)
    assert passes(EndpointFilter(platforms=("tiktok",), account_ids=(TIKTOK.id,)), document)
    assert not passes(EndpointFilter(error_categories=("account_disconnected",)), document)  # no failure in it
    unlisted = notice(event_type, account={"id": TIKTOK.id})  # Genviral no longer lists it: no platform
    assert not passes(EndpointFilter(platforms=("tiktok",)), unlisted)


@pytest.mark.parametrize("event_type", RELAY_TYPES)
@pytest.mark.parametrize(
    "given",
    [
        EndpointFilter(platforms=("instagram",)),
        EndpointFilter(account_ids=("another",)),
        EndpointFilter(error_categories=("media_rejected",)),
        EndpointFilter(platforms=("x",), account_ids=("a",), error_categories=("unknown",)),
    ],
)
def test_the_relays_notice_is_about_every_account_and_passes_every_filter(event_type: str, given: Any) -> None:
    assert passes(given, NOTICES[event_type])


# ---------------------------------------------------------------- fan-out and attempts


def test_a_notice_fans_out_about_no_post_to_the_endpoints_that_take_it_and_records_the_filtered() -> None:
    rig = Rig()
    every = rig.register()
    accounts = rig.register(event_types=["account.disconnected"])
    failures = rig.register(event_types=["post.account.failed"])
    instagram = rig.register(filter=EndpointFilter(platforms=("instagram",)))
    categories = rig.register(filter=EndpointFilter(error_categories=("account_disconnected",)))
    disconnected = NOTICES["account.disconnected"]

    rig.fan_out(disconnected)

    assert rig.queued() == sorted([(every, disconnected.event_id, None), (accounts, disconnected.event_id, None)])
    assert {(state.webhook_id, state.state) for state in rig.delivery_log.deliveries(disconnected.event_id)} == {
        (instagram, "filtered"),
        (categories, "filtered"),
    }
    assert failures not in {webhook for webhook, _, _ in rig.queued()}


@pytest.mark.parametrize("event_type", NOTICE_TYPES)
def test_a_notices_delivery_signs_the_stored_notice(event_type: str) -> None:
    rig = Rig()
    webhook_id = rig.register()
    document = NOTICES[event_type]
    rig.fan_out(document)

    (delivery,) = rig.run_due()

    ((_, headers, body),) = rig.sender.posts
    assert delivery.post_id is None
    assert body == published_document(document)
    assert headers["webhook-id"] == document.event_id
    (key,) = [rig.box.open(webhook_id, secret.value) for secret in rig.store.items[webhook_id].secrets]
    expected = signed_headers([key], headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    assert headers["webhook-signature"] == expected["webhook-signature"]
    assert rig.delivery_log.deliveries(document.event_id)[0].state == "delivered"


def forged(webhook_id: str, event_id: str, event_type: str, post_id: str | None = None) -> WebhookDelivery:
    """A message someone other than the relay sent to the delivery queue."""
    values = {"webhook_id": webhook_id, "event_id": event_id, "event_type": event_type, "attempt": 1,
              "due_at": START, "post_id": post_id}  # fmt: skip
    return WebhookDelivery.model_validate(values)


DISCONNECTED = NOTICES["account.disconnected"]


@pytest.mark.parametrize(
    ("event_id", "event_type"),
    [
        pytest.param("0c0c0c0c-0000-5000-8000-000000000000", "account.disconnected", id="a notice never stored"),
        pytest.param(DISCONNECTED.event_id, "account.reconnected", id="a stored notice named with another type"),
        pytest.param(DISCONNECTED.event_id, "post.account.failed", id="a post's type naming no post"),
        pytest.param(DISCONNECTED.event_id, "webhook.endpoint.disabled", id="a type no endpoint takes"),
    ],
)
def test_a_message_naming_no_stored_notice_is_dropped_unsigned_and_counted(event_id: str, event_type: str) -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.commit(DISCONNECTED)

    assert rig.attempts.run([DeliveryItem("m1", forged(webhook_id, event_id, event_type))]) == []

    assert rig.sender.posts == []
    assert (rig.queue.sent, rig.queue.parked) == ([], [])
    assert emitted(Metric.WEBHOOK_MESSAGES_REJECTED) == [1.0]


def test_a_stored_notice_is_never_found_under_a_post() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.commit(DISCONNECTED)
    message = forged(webhook_id, DISCONNECTED.event_id, DISCONNECTED.event_type, post_id=relay_event().post_id)
    rig.attempts.run([DeliveryItem("m1", message)])
    assert rig.sender.posts == []
    assert emitted(Metric.WEBHOOK_MESSAGES_REJECTED) == [1.0]


def test_an_attempt_checks_the_endpoints_filter_on_the_stored_notice() -> None:
    # Queued before the endpoint's filter changed: the attempt drops it unsent, recorded filtered
    rig = Rig()
    webhook_id = rig.register()
    rig.fan_out(DISCONNECTED)
    endpoint = rig.store.items[webhook_id]
    rig.store.items[webhook_id] = endpoint.model_copy(update={"filter": EndpointFilter(platforms=("instagram",))})
    rig.run_due()
    assert rig.sender.posts == []
    assert [state.state for state in rig.delivery_log.deliveries(DISCONNECTED.event_id)] == ["filtered"]


@pytest.mark.parametrize("event_type", NOTICE_TYPES)
def test_a_chat_endpoint_is_sent_the_notice_written_for_people(event_type: str) -> None:
    rig = Rig()
    rig.registry.create(CreateWebhookRequest(url="https://hooks.slack.com/services/T0/B0/XXXX", rate_limit=None))
    rig.fan_out(NOTICES[event_type])
    rig.run_due()
    ((_, headers, body),) = rig.sender.posts
    assert body == chat_body("slack", NOTICES[event_type])
    assert "webhook-signature" not in headers


# ---------------------------------------------------------------- story and resend


def test_a_notices_story_shows_its_deliveries_per_endpoint() -> None:
    rig = Rig()
    delivered = rig.register()
    waiting = rig.register(event_types=["account.disconnected", "relay.paused"])
    rig.register(event_types=["post.account.failed"])  # takes no notice: not in the story
    rig.register(filter=EndpointFilter(platforms=("instagram",)))  # left out: recorded filtered
    rig.fan_out(DISCONNECTED)
    rig.delivery_log.record_states([DeliveryState(webhook_id=delivered, event_id=DISCONNECTED.event_id,
                                                  state="delivered", attempts=1, last_status=204)])  # fmt: skip
    reader = EventFeed(log=rig.feed, deliveries=rig.delivery_log, webhooks=rig.store, clock=lambda: rig.now,
                       event_retention=RETENTION)  # fmt: skip

    story = reader.story(DISCONNECTED.event_id)

    assert json.loads(story.entry.document) == DISCONNECTED.model_dump(mode="json")
    states = {(state.webhook_id, state.state) for state in story.deliveries}
    assert (delivered, "delivered") in states
    assert (waiting, "queued") in states
    assert {state for _, state in states} == {"delivered", "queued", "filtered"}
    assert len(states) == 3


def test_a_disabling_has_a_story_of_no_endpoint_and_reads_none() -> None:
    rig = Rig()
    rig.register()
    disabled = json.dumps({"event_type": "webhook.endpoint.disabled", "event_id": DISCONNECTED.event_id})
    rig.feed.append([FeedEntry(committed_at=rig.now, event_id=DISCONNECTED.event_id,
                               event_type="webhook.endpoint.disabled", post_id=None, document=disabled)])  # fmt: skip
    read: list[str] = []
    store_endpoints = rig.store.endpoints
    rig.store.endpoints = lambda: read.append("read") or store_endpoints()  # type: ignore[method-assign,func-returns-value]
    reader = EventFeed(log=rig.feed, deliveries=rig.delivery_log, webhooks=rig.store, clock=lambda: rig.now,
                       event_retention=RETENTION)  # fmt: skip
    assert reader.story(DISCONNECTED.event_id).deliveries == []
    assert read == []


@pytest.mark.parametrize("event_type", NOTICE_TYPES)
def test_a_notice_is_resent_by_its_id_and_delivered_again_with_the_same_body(event_type: str) -> None:
    rig = Rig()
    webhook_id = rig.register()
    document = NOTICES[event_type]
    rig.fan_out(document)
    rig.run_due()

    assert rig.registry.resend_one(webhook_id, document.event_id) == 1
    rig.run_due()

    (first, again) = rig.sender.posts
    assert again[2] == first[2] == published_document(document)
    assert again[1]["webhook-id"] == document.event_id


def test_a_range_resends_the_notices_with_the_events_it_holds_as_the_endpoint_takes_them() -> None:
    rig = Rig()
    tiktok = rig.register(filter=EndpointFilter(platforms=("tiktok",)))
    relay_only = rig.register(event_types=["relay.paused", "relay.resumed"])
    since = rig.now
    for document in NOTICES.values():
        rig.commit(document)
    instagram_failure = relay_event("post.account.failed", "e-failed")  # the sample fails on Instagram
    rig.events.add(instagram_failure)
    rig.feed.append([FeedEntry(committed_at=rig.now, event_id="e-failed", event_type="post.account.failed",
                               post_id=instagram_failure.post_id,
                               document=published_document(instagram_failure).decode())])  # fmt: skip
    rig.now += timedelta(minutes=1)

    assert rig.registry.resend_between(tiktok, since, None) == 4  # the account's two, the relay's two (no filter)
    assert rig.registry.resend_between(relay_only, since, None) == 2
    rig.run_due()
    assert sorted(json.loads(body)["event_type"] for _, _, body in rig.sender.posts) == sorted(
        [*NOTICE_TYPES, *RELAY_TYPES]
    )


def test_a_notice_the_endpoint_does_not_take_is_not_resent_and_the_answer_says_why() -> None:
    rig = Rig()
    failures = rig.register(event_types=["post.account.failed"])
    instagram = rig.register(filter=EndpointFilter(platforms=("instagram",)))
    rig.commit(DISCONNECTED)
    with pytest.raises(ResendRefusedError, match=r"account\.disconnected event and the endpoint takes"):
        rig.registry.resend_one(failures, DISCONNECTED.event_id)
    with pytest.raises(ResendRefusedError, match="filter leaves it out"):
        rig.registry.resend_one(instagram, DISCONNECTED.event_id)
