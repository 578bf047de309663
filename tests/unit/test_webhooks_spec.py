"""The webhook use cases on the doubles: registration, fan-out, and what each attempt's outcome leads to."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from genviral_relay.aws.webhook_queues import delivery_body
from genviral_relay.errors import TooManyWebhooksError, WebhookExistsError, WebhookNotFoundError, WebhookSecretError
from genviral_relay.models.events import published_document
from genviral_relay.models.webhook_api import CreateWebhookRequest
from genviral_relay.models.webhooks import SigningSecret, WebhookDelivery, WebhookEndpoint
from genviral_relay.observability import Metric
from genviral_relay.rules.webhook_retries import MAX_ATTEMPTS, RETRY_DELAYS, events_kept_for
from genviral_relay.rules.webhook_signing import signed_headers
from genviral_relay.rules.webhook_urls import UrlRefusedError
from genviral_relay.webhooks.attempts import DeliveryItem
from genviral_relay.webhooks.fanout import FanoutItem
from genviral_relay.webhooks.ports import WebhookAnswer
from genviral_relay.webhooks.registry import ROTATION_OVERLAP, WebhookRegistry
from tests.builders import relay_event
from tests.support.doubles import (
    InMemorySecretBox,
    InMemoryWebhookStore,
    RecordingSender,
)
from tests.support.webhook_rig import RETENTION, START, WebhookRig
from tests.unit.world import emitted

URL = "https://hooks.example.com/genviral"


class Rig(WebhookRig):
    def __init__(self, *answers: WebhookAnswer, box: InMemorySecretBox | None = None) -> None:
        super().__init__(RecordingSender(*answers), box=box)

    def register(self, event_types: list[str] | None = None, url: str | None = None) -> str:
        """A new endpoint, by default at a path of its own (the same URL and types again is refused)."""
        url = url or f"{URL}/{len(self.store.items)}"
        return self.registry.create(CreateWebhookRequest(url=url, event_types=event_types)).id

    def keys(self, webhook_id: str, at: datetime | None = None) -> list[str]:
        """The endpoint's stored keys, opened: those signing `at`, or all of them."""
        endpoint = self.store.items[webhook_id]
        sealed = endpoint.signing_secrets(at) if at else [secret.value for secret in endpoint.secrets]
        return [self.box.open(webhook_id, value) for value in sealed]

    def event(self, event_type: str = "post.account.failed", event_id: str = "e1") -> None:
        """An event the check stored, fanned out (a test event is never stored as a relay event)."""
        post_id = "p1"
        if event_type != "webhook.test":
            stored = relay_event(event_type, event_id)
            self.events.add(stored)
            post_id = stored.post_id
        assert self.fanout.run([FanoutItem(f"m-{event_id}", event_id, event_type, post_id)]) == []

    def run_due(self) -> list[WebhookDelivery]:
        """Hand every queued delivery to the attempts, as SQS would once its delay is over."""
        taken = self.queue.take()
        self.attempts.run([DeliveryItem(f"d{index}", delivery) for index, delivery in enumerate(taken)])
        return taken


FAILED = WebhookAnswer(status=503, reason="Service Unavailable")


def test_a_failed_attempt_is_retried_after_each_delay_of_the_schedule_then_parked() -> None:
    rig = Rig(*[FAILED] * MAX_ATTEMPTS)
    webhook_id = rig.register()
    rig.event()
    attempts_at = []
    for wait in (timedelta(0), *RETRY_DELAYS):
        rig.now += wait
        (delivery,) = rig.run_due()
        attempts_at.append(rig.now)
        assert delivery.due_at <= rig.now
    assert [later - earlier for earlier, later in itertools.pairwise(attempts_at)] == list(RETRY_DELAYS)
    assert len(rig.sender.posts) == MAX_ATTEMPTS == 8
    ((parked, reason),) = rig.queue.parked
    assert (parked.attempt, reason) == (8, "HTTP 503: Service Unavailable")
    assert rig.queue.sent == []
    health = rig.store.items[webhook_id].health
    assert (health.attempts_pending, health.failing_since, health.last_failure_status) == (0, START, 503)
    assert {headers["webhook-id"] for _, headers, _ in rig.sender.posts} == {"e1"}
    assert len({body for _, _, body in rig.sender.posts}) == 1


def test_a_delivery_handed_out_before_its_time_waits_again_without_being_sent() -> None:
    rig = Rig(FAILED)
    rig.register()
    rig.event()
    rig.run_due()  # fails: the retry is due in 5 s
    rig.now += timedelta(seconds=4)
    (waiting,) = rig.run_due()
    (again,) = rig.queue.sent
    assert again == waiting
    assert len(rig.sender.posts) == 1


def test_a_deleted_endpoints_delivery_is_dropped() -> None:
    rig = Rig(FAILED)
    webhook_id = rig.register()
    rig.event()
    rig.run_due()
    rig.registry.delete(webhook_id)
    rig.now += RETRY_DELAYS[0]
    rig.run_due()
    assert len(rig.sender.posts) == 1
    assert rig.queue.sent == []
    with pytest.raises(WebhookNotFoundError):
        rig.registry.delete(webhook_id)


def test_a_name_rebound_to_a_forbidden_address_is_not_sent_to_and_counts_as_a_failure() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.resolver.names["hooks.example.com"] = ["169.254.169.254"]
    rig.event()
    rig.run_due()
    assert rig.sender.posts == []
    health = rig.store.items[webhook_id].health
    assert health.last_failure_reason is not None
    assert "it resolves to 169.254.169.254, a link-local address" in health.last_failure_reason
    (retry,) = rig.queue.sent
    assert retry.attempt == 2


def test_each_attempt_connects_to_the_address_it_checked() -> None:
    rig = Rig()
    rig.register()
    rig.event()
    rig.run_due()
    ((where, headers, _),) = rig.sender.posts
    assert (where.host, where.address) == ("hooks.example.com", "93.184.216.34")
    assert headers["webhook-timestamp"] == str(int(START.timestamp()))


def test_the_fanout_makes_one_delivery_per_endpoint_that_takes_the_type_and_never_a_test_event() -> None:
    rig = Rig()
    failures = rig.register(["post.account.failed"])
    everything = rig.register()
    rig.event("post.account.failed", "e1")
    rig.event("post.account.posted", "e2")
    rig.event("webhook.test", "e3")
    assert sorted((d.webhook_id, d.event_id) for d in rig.queue.sent) == sorted(
        [(failures, "e1"), (everything, "e1"), (everything, "e2")]
    )


def test_an_event_whose_deliveries_could_not_be_queued_comes_back() -> None:
    rig = Rig()
    rig.register()
    rig.queue.failing = True
    assert rig.fanout.run([FanoutItem("m1", "e1", "post.account.posted", "p1")]) == ["m1"]


def test_a_delivery_sqs_refuses_alone_brings_its_event_back_and_the_others_count_as_queued() -> None:
    # Given two endpoints for every type, the second registered later, and SQS refusing its delivery alone
    rig = Rig()
    first = rig.register()
    rig.now += timedelta(seconds=1)  # the fan-out takes the endpoints oldest first
    rig.register()
    rig.queue.refused_entries = {1}

    # When the fan-out queues one event's deliveries
    comes_back = rig.fanout.run([FanoutItem("m1", "e1", "post.account.posted", "p1")])

    # Then the event comes back, and the one delivery queued is counted as queued
    assert comes_back == ["m1"]
    assert [delivery.webhook_id for delivery in rig.queue.sent] == [first]
    assert emitted(Metric.WEBHOOK_DELIVERIES_QUEUED) == [1.0]


def test_only_the_message_whose_delivery_sqs_refused_comes_back_when_an_event_arrives_twice() -> None:
    # Given one endpoint, and SQS refusing the second delivery of the batch
    rig = Rig()
    rig.register()
    rig.queue.refused_entries = {1}

    # When the same event comes in two messages (SQS delivers at least once)
    comes_back = rig.fanout.run(
        [FanoutItem(message_id, "e1", "post.account.posted", "p1") for message_id in ("m1", "m2")]
    )

    # Then only the message whose delivery was refused comes back
    assert comes_back == ["m2"]
    assert emitted(Metric.WEBHOOK_DELIVERIES_QUEUED) == [1.0]


def test_an_outcome_that_could_not_be_queued_or_parked_makes_the_message_come_back() -> None:
    rig = Rig(FAILED, *[FAILED] * MAX_ATTEMPTS)
    rig.register()
    rig.event()
    taken = rig.queue.take()
    rig.queue.failing = True
    assert rig.attempts.run([DeliveryItem("d1", taken[0])]) == ["d1"]
    rig.queue.failing, rig.queue.parking_fails = False, True
    last = taken[0].model_copy(update={"attempt": MAX_ATTEMPTS})
    assert rig.attempts.run([DeliveryItem("d2", last)]) == ["d2"]


def test_a_rotation_keeps_the_old_key_for_a_day_and_drops_keys_past_their_end() -> None:
    rig = Rig()
    webhook_id = rig.register()
    (first,) = rig.keys(webhook_id)
    second = rig.registry.rotate_secret(webhook_id).secrets[0].value
    assert rig.keys(webhook_id, rig.now) == [second, first]
    assert rig.keys(webhook_id, rig.now + ROTATION_OVERLAP) == [second]
    rig.now += ROTATION_OVERLAP + timedelta(seconds=1)
    third = rig.registry.rotate_secret(webhook_id).secrets[0].value
    assert rig.keys(webhook_id) == [third, second]


def test_a_second_rotation_within_a_day_signs_with_three_keys_each_until_its_own_end() -> None:
    # What docs/webhooks.md says of rotations: one signature per key still signing, newest first.
    rig = Rig()
    webhook_id = rig.register()
    (first,) = rig.keys(webhook_id)
    second = rig.registry.rotate_secret(webhook_id).secrets[0].value
    rotated_at = rig.now
    rig.now += timedelta(hours=1)
    third = rig.registry.rotate_secret(webhook_id).secrets[0].value

    assert rig.keys(webhook_id, rig.now) == [third, second, first]
    headers = signed_headers(rig.keys(webhook_id, rig.now), "evt", 1, b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 3
    # The first key ends a day after the rotation that replaced it, the second a day after its own
    assert rig.keys(webhook_id, rotated_at + ROTATION_OVERLAP) == [third, second]
    assert rig.keys(webhook_id, rig.now + ROTATION_OVERLAP) == [third]


def test_registration_checks_the_url_and_the_limit() -> None:
    rig = Rig()
    with pytest.raises(UrlRefusedError, match="does not resolve"):
        rig.registry.create(CreateWebhookRequest(url="https://nowhere.example.com/"))
    small = WebhookRegistry(
        store=rig.store, secrets=rig.box, queue=rig.queue, events=rig.events, feed=rig.feed, resolver=rig.resolver,
        clock=lambda: rig.now, allow_private=False, event_retention=RETENTION, max_endpoints=1,
    )  # fmt: skip
    small.create(CreateWebhookRequest(url=URL))
    with pytest.raises(TooManyWebhooksError):
        small.create(CreateWebhookRequest(url=URL, event_types=["post.account.failed"]))


def test_an_unknown_or_empty_event_type_list_is_refused_with_the_known_types() -> None:
    with pytest.raises(ValueError, match=r"unknown event type\(s\) post\.deleted; known: post\.account\.posted"):
        CreateWebhookRequest(url=URL, event_types=["post.deleted"])
    with pytest.raises(ValueError, match="at least one type"):
        CreateWebhookRequest(url=URL, event_types=[])
    assert CreateWebhookRequest(url=URL, event_types=["webhook.test", "webhook.test"]).event_types == ["webhook.test"]


def test_an_attempt_that_fails_unexpectedly_fails_its_own_message_only() -> None:
    rig = Rig()
    rig.register()
    rig.register()
    rig.event()
    first, second = rig.queue.take()
    broken = first.model_copy(update={"webhook_id": "wh_broken"})

    def failing_endpoint(webhook_id: str) -> object:
        if webhook_id == "wh_broken":
            raise RuntimeError("the table is unavailable")
        return InMemoryWebhookStore.endpoint(rig.store, webhook_id)

    rig.store.endpoint = failing_endpoint  # type: ignore[method-assign,assignment]
    assert rig.attempts.run([DeliveryItem("d1", broken), DeliveryItem("d2", second)]) == ["d1"]
    assert len(rig.sender.posts) == 1


def test_an_international_host_must_be_written_in_its_ascii_form() -> None:
    rig = Rig()
    with pytest.raises(UrlRefusedError, match="xn-- form"):
        rig.registry.create(CreateWebhookRequest(url="https://bücher.example/hook"))


# ---------------------------------------------------------------------- what a delivery may sign (issue 21, item 2)
STORED_POST = relay_event().post_id


def forged(rig: Rig, webhook_id: str, **fields: object) -> WebhookDelivery:
    """A message sent to the delivery queue by someone other than the relay (by default: an event never stored)."""
    values: dict[str, object] = {
        "webhook_id": webhook_id, "event_id": "forged", "event_type": "post.account.posted", "attempt": 1,
        "due_at": rig.now, "post_id": STORED_POST,
    }  # fmt: skip
    return WebhookDelivery.model_validate({**values, **fields})


def test_a_delivery_signs_the_document_the_relay_stored() -> None:
    rig = Rig()
    rig.register()
    rig.event("post.account.failed", "e1")
    (delivery,) = rig.run_due()
    ((_, headers, body),) = rig.sender.posts
    assert body == published_document(rig.events.relay[(delivery.post_id or "", "e1")])
    assert headers["webhook-id"] == "e1"


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="an event never stored"),
        pytest.param({"event_id": "e1", "event_type": "post.account.posted"}, id="a stored event of another type"),
        pytest.param({"event_id": "e1", "event_type": "post.account.failed", "post_id": None}, id="no post"),
        pytest.param({"event_id": "e1", "event_type": "post.account.failed", "post_id": "p2"}, id="another post"),
        pytest.param({"event_id": "e1", "event_type": "webhook.test"}, id="a stored relay event named as a test"),
        pytest.param({"event_type": "webhook.test"}, id="a test event never stored"),
        pytest.param({"due_at": START + timedelta(days=400)}, id="an event never stored, due in a year"),
    ],
)
def test_a_message_naming_no_stored_event_is_dropped_unsigned_counted_and_never_retried(
    fields: dict[str, object],
) -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.events.add(relay_event("post.account.failed", "e1"))
    message = forged(rig, webhook_id, **fields)

    assert rig.attempts.run([DeliveryItem("m1", message)]) == []  # not received again

    assert rig.sender.posts == []
    assert (rig.queue.sent, rig.queue.parked) == ([], [])  # no retry, no hop, nothing parked
    assert emitted(Metric.WEBHOOK_MESSAGES_REJECTED) == [1.0]
    assert rig.store.items[webhook_id].health.last_failure_at is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda document: {**document, "message": "Wire the refund to account 42."},
        lambda document: {**document, "event_type": "post.account.posted"},
        lambda document: {**document, "extra": "field"},
        lambda document: {**document, "detected_at": "yesterday"},
        lambda document: "not json",
    ],
)
def test_a_stored_test_item_that_is_not_the_relays_own_test_document_is_never_signed(tamper: Any) -> None:
    # Given a test event whose stored item someone who can write the table rewrote
    rig = Rig()
    webhook_id = rig.register()
    sent = rig.registry.send_test(webhook_id)
    ((stored, expires_at),) = rig.events.tests.values()
    changed = tamper(json.loads(stored))
    rig.events.tests[(webhook_id, sent.event_id)] = (
        changed if isinstance(changed, str) else json.dumps(changed, separators=(",", ":"), sort_keys=True),
        expires_at,
    )

    # When its delivery is attempted
    rig.run_due()

    # Then nothing is signed nor sent, and the message is counted as rejected, not retried
    assert rig.sender.posts == []
    assert rig.queue.sent == []
    assert emitted(Metric.WEBHOOK_MESSAGES_REJECTED) == [1.0]


def test_a_stored_event_of_a_type_the_endpoint_does_not_take_is_never_sent_to_it() -> None:
    # Given an endpoint that takes failures only, and a real stored posted event
    rig = Rig()
    webhook_id = rig.register(["post.account.failed"])
    stored = relay_event("post.account.posted", "e-posted")
    rig.events.add(stored)

    # When a message names that event for that endpoint (the fan-out never makes one)
    rig.attempts.run([DeliveryItem("d1", forged(rig, webhook_id, event_id="e-posted", post_id=stored.post_id))])

    # Then it is rejected unsigned
    assert rig.sender.posts == []
    assert emitted(Metric.WEBHOOK_MESSAGES_REJECTED) == [1.0]


def test_a_test_event_is_stored_for_its_endpoint_and_signed_from_there() -> None:
    rig = Rig()
    webhook_id = rig.register()
    other = rig.register()
    sent = rig.registry.send_test(webhook_id)

    ((stored, expires_at),) = rig.events.tests.values()
    assert expires_at == START + RETENTION
    assert json.loads(stored) == {
        "schema_version": "1", "event_id": sent.event_id, "event_type": "webhook.test",
        "detected_at": "2026-03-01T12:00:00.000Z", "webhook_id": webhook_id,
        "message": "A test delivery from genviral-relay (POST /webhooks/{id}/test).",
    }  # fmt: skip
    # The same event named for another endpoint names nothing: a test event is stored under its own endpoint
    (queued,) = rig.queue.take()
    elsewhere = queued.model_copy(update={"webhook_id": other})
    rig.attempts.run([DeliveryItem("d1", queued), DeliveryItem("d2", elsewhere)])
    ((_, headers, body),) = rig.sender.posts
    assert (body, headers["webhook-id"]) == (stored.encode(), sent.event_id)
    assert emitted(Metric.WEBHOOK_MESSAGES_REJECTED) == [1.0]


# ---------------------------------------------------------------------- the keys at rest, the cap, duplicates
def signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = signed_headers([secret], headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return expected["webhook-signature"] in headers["webhook-signature"].split(" ")


def test_the_store_holds_only_sealed_keys_and_the_delivery_signs_with_the_opened_one() -> None:
    rig = Rig()
    created = rig.registry.create(CreateWebhookRequest(url=URL))
    shown = created.secrets[0].value
    rotated = rig.registry.rotate_secret(created.id).secrets[0].value

    stored = [secret.value for secret in rig.store.items[created.id].secrets]
    assert all(shown not in value and rotated not in value for value in stored)
    assert all(value.startswith(InMemorySecretBox.PREFIX) for value in stored)
    assert rig.keys(created.id) == [rotated, shown]
    rig.event()
    rig.run_due()
    ((_, headers, body),) = rig.sender.posts
    assert signed_by(shown, dict(headers), body)
    assert signed_by(rotated, dict(headers), body)


def test_a_key_sealed_for_another_endpoint_does_not_sign_and_the_attempt_is_a_recorded_failure() -> None:
    rig = Rig()
    first, second = rig.register(), rig.register(["post.account.failed"])
    copied = rig.store.items[first].secrets
    rig.store.items[second] = rig.store.items[second].model_copy(update={"secrets": copied})
    rig.event()
    taken = rig.queue.take()

    # The copied key does not open: that attempt is a recorded failure, retried on the schedule (never lost)
    assert rig.attempts.run([DeliveryItem(f"d-{d.webhook_id}", d) for d in taken]) == []
    assert [headers["webhook-id"] for _, headers, _ in rig.sender.posts] == ["e1"]  # the first endpoint's only
    health = rig.store.items[second].health
    assert health.last_failure_reason == "not delivered: the attempt raised WebhookSecretError"
    assert [(retry.webhook_id, retry.attempt) for retry in rig.queue.sent] == [(second, 2)]


def test_a_04_key_stored_in_the_clear_still_signs_and_a_rotation_seals_it() -> None:
    rig = Rig()
    legacy = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    webhook_id = "wh_" + "4" * 32
    rig.store.add_04(WebhookEndpoint(id=webhook_id, url=URL, created_at=START, secrets=(SigningSecret(value=legacy),)))
    rig.event()
    rig.run_due()
    ((_, headers, body),) = rig.sender.posts
    assert signed_by(legacy, dict(headers), body)

    new = rig.registry.rotate_secret(webhook_id).secrets[0].value
    assert all(secret.value.startswith(InMemorySecretBox.PREFIX) for secret in rig.store.items[webhook_id].secrets)
    assert rig.keys(webhook_id, rig.now) == [new, legacy]  # none lost: the 0.4 key signs out its day


LEGACY = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def with_04_endpoint(rig: Rig, number: int = 4) -> str:
    """An endpoint as 0.4 stored it: its key in the clear."""
    webhook_id = "wh_" + str(number) * 32
    endpoint = WebhookEndpoint(
        id=webhook_id, url=f"{URL}/{number}", created_at=START, secrets=(SigningSecret(value=LEGACY),)
    )
    rig.store.add_04(endpoint)
    return webhook_id


@pytest.mark.parametrize(
    "first_request",
    [
        pytest.param(lambda rig, _: rig.registry.endpoints(), id="GET /webhooks"),
        pytest.param(lambda rig, webhook_id: rig.registry.endpoint(webhook_id), id="GET /webhooks/{id}"),
        pytest.param(lambda rig, webhook_id: rig.registry.send_test(webhook_id), id="test"),
        pytest.param(lambda rig, _: rig.register(["post.completed"], url=f"{URL}/new"), id="POST /webhooks"),
        pytest.param(lambda rig, _: rig.registry.delete(rig.register(url=f"{URL}/new")), id="DELETE"),
    ],
)
def test_a_04_key_is_sealed_in_place_by_the_first_request_and_signs_as_before(first_request: Any) -> None:
    rig = Rig()
    webhook_id = with_04_endpoint(rig)

    first_request(rig, webhook_id)

    (stored,) = rig.store.items[webhook_id].secrets
    assert stored.value.startswith(InMemorySecretBox.PREFIX)
    assert LEGACY not in stored.value
    assert rig.keys(webhook_id) == [LEGACY]  # the same key: the receiver holds it
    rig.queue.take()
    rig.event()
    rig.run_due()
    ((_, headers, body),) = rig.sender.posts
    assert headers["webhook-signature"].count(" ") == 0  # one key: the 0.4 one
    assert signed_by(LEGACY, dict(headers), body)


def test_a_04_key_written_after_the_first_request_is_sealed_when_its_endpoint_is_read() -> None:
    rig = Rig()
    rig.registry.endpoints()  # the environment's first request: nothing to seal then
    webhook_id = with_04_endpoint(rig)  # a 0.4 function still answering during the upgrade

    rig.registry.endpoints()
    assert rig.store.items[webhook_id].secrets[0].value == LEGACY  # the sweep ran once
    rig.registry.endpoint(webhook_id)

    assert rig.keys(webhook_id) == [LEGACY]
    assert rig.store.items[webhook_id].secrets[0].value.startswith(InMemorySecretBox.PREFIX)


class RefusingBox(InMemorySecretBox):
    refusing = True

    def seal(self, webhook_id: str, secret: str) -> str:
        if self.refusing:
            raise WebhookSecretError(f"could not seal the signing key of {webhook_id}: AccessDeniedException")
        return super().seal(webhook_id, secret)


def test_a_04_key_kms_will_not_seal_keeps_signing_and_the_next_request_seals_it() -> None:
    box = RefusingBox()
    rig = Rig(box=box)
    webhook_id = with_04_endpoint(rig)

    assert [endpoint.id for endpoint in rig.registry.endpoints()] == [webhook_id]  # answered all the same
    assert rig.store.items[webhook_id].secrets[0].value == LEGACY
    box.refusing = False
    rig.registry.endpoints()
    assert rig.store.items[webhook_id].secrets[0].value.startswith(InMemorySecretBox.PREFIX)
    assert rig.keys(webhook_id) == [LEGACY]


def test_the_same_url_and_event_types_again_is_refused_naming_the_endpoint_that_has_them() -> None:
    rig = Rig()
    first = rig.register(["post.account.failed", "post.account.posted"], url=URL)
    with pytest.raises(WebhookExistsError) as again:
        rig.register(["post.account.posted", "post.account.failed"], url=URL)  # the same types, in another order

    assert str(again.value) == first
    others = [rig.register(url=URL), rig.register(["post.account.failed"], url=URL)]  # every type; other types
    assert len({first, *others}) == 3
    rig.registry.delete(first)
    assert rig.register(["post.account.failed", "post.account.posted"], url=URL) not in (first, *others)


def test_a_url_that_differs_only_in_scheme_or_host_case_or_a_default_port_is_the_same_endpoint() -> None:
    rig = Rig()
    first = rig.register(url="https://hooks.example.com/genviral?to=ops")
    for same in (
        "HTTPS://Hooks.EXAMPLE.com/genviral?to=ops",
        "https://hooks.example.com:443/genviral?to=ops",
        "https://hooks.example.com:/genviral?to=ops",
    ):
        with pytest.raises(WebhookExistsError) as again:
            rig.register(url=same)
        assert str(again.value) == first, same
    root = rig.register(url="https://hooks.example.com")
    with pytest.raises(WebhookExistsError, match=root):
        rig.register(url="https://hooks.example.com:443/")  # no path is the path /
    # The path and the query are the receiver's to read: another case, port or query is another endpoint
    others = [
        "https://hooks.example.com/Genviral?to=ops",
        "https://hooks.example.com/genviral?to=OPS",
        "https://hooks.example.com:8443/genviral?to=ops",
        "https://hooks.example.com/genviral?to=ops&x=1",
    ]
    assert len({first, root, *(rig.register(url=url) for url in others)}) == 6


def test_a_delivery_carries_its_events_document_for_a_04_delivery_function_and_the_attempt_never_reads_it() -> None:
    # Given a fan-out message whose body is the event's document (as the outbox publishes it)
    rig = Rig()
    rig.register()
    stored = relay_event("post.account.failed", "e1")
    rig.events.add(stored)
    document = published_document(stored).decode()
    assert rig.fanout.run([FanoutItem("m1", "e1", "post.account.failed", stored.post_id, document)]) == []

    # Then its delivery's message body is that document, as 0.4's delivery function reads it during an update
    (queued,) = rig.queue.take()
    assert delivery_body(queued) == document

    # And an attempt signs the stored document even when the carried one says otherwise
    rig.attempts.run([DeliveryItem("d1", queued.model_copy(update={"document": '{"forged": true}'}))])
    ((_, _, body),) = rig.sender.posts
    assert body == published_document(stored)


def test_stored_events_outlive_a_deliverys_last_retry_whatever_the_retention() -> None:
    # Every wait of the schedule, each made of hops of at most 15 minutes, plus the hop that ends the last one
    last_retry_at = sum(RETRY_DELAYS, timedelta()) + timedelta(minutes=15) * (len(RETRY_DELAYS) + 1)
    assert events_kept_for(1) > last_retry_at
    assert events_kept_for(30) == timedelta(days=30)  # a longer retention is kept as it is
