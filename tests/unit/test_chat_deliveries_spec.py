"""Chat deliveries on the doubles: what a chat endpoint is sent (the event written for people, unsigned), and what
each service's answer leads to (delivered, retried when it asks, parked at once when it refuses for good), recorded
like any attempt."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from genviral_relay.models.chat import ChatFormat
from genviral_relay.models.webhook_api import CreateWebhookRequest
from genviral_relay.models.webhooks import WebhookDelivery
from genviral_relay.observability import Metric
from genviral_relay.rules.chat.render import chat_body
from genviral_relay.rules.endpoint_health import DEFAULT_DISABLE_AFTER_HOURS
from genviral_relay.rules.webhook_retries import RETRY_DELAYS
from genviral_relay.webhooks.attempts import DeliveryItem
from genviral_relay.webhooks.fanout import FanoutItem
from genviral_relay.webhooks.ports import WebhookAnswer
from tests.builders import relay_event
from tests.support.doubles import RecordingSender
from tests.support.webhook_rig import WebhookRig
from tests.unit.world import emitted

URLS: dict[ChatFormat, str] = {
    "slack": "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX",
    "discord": "https://discord.com/api/webhooks/123456/token-abc",
    "teams": "https://prod-00.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=xyz",
}


class Rig(WebhookRig):
    def __init__(self, *answers: WebhookAnswer) -> None:
        super().__init__(RecordingSender(*answers))
        self.resolver.names.update(
            {"hooks.slack.com": ["34.201.1.1"], "discord.com": ["162.159.1.1"],
             "prod-00.westus.logic.azure.com": ["20.42.1.1"]}
        )  # fmt: skip

    def register(self, chat_format: ChatFormat) -> str:
        request = CreateWebhookRequest(url=URLS[chat_format], format=chat_format, rate_limit=None)
        return self.registry.create(request).id

    def event(self, event_type: str = "post.account.failed", event_id: str = "e1") -> None:
        stored = relay_event(event_type, event_id)
        self.events.add(stored)
        assert self.fanout.run([FanoutItem(f"m-{event_id}", event_id, event_type, stored.post_id)]) == []

    def run_due(self) -> list[WebhookDelivery]:
        taken = self.queue.take()
        self.attempts.run([DeliveryItem(f"d{index}", delivery) for index, delivery in enumerate(taken)])
        return taken


def _answer(status: int, text: str = "", retry_after: float | None = None) -> WebhookAnswer:
    return WebhookAnswer(status=status, reason="", retry_after=retry_after, text=text)


@pytest.mark.parametrize("chat_format", ["slack", "discord", "teams"])
def test_a_chat_endpoint_is_sent_the_event_written_for_people_unsigned(chat_format: ChatFormat) -> None:
    status = {"slack": 200, "discord": 204, "teams": 202}[chat_format]
    rig = Rig(_answer(status, "ok" if chat_format == "slack" else ""))
    webhook_id = rig.register(chat_format)
    rig.event()
    rig.run_due()
    ((where, headers, body),) = rig.sender.posts
    assert body == chat_body(chat_format, relay_event("post.account.failed", "e1"))
    assert headers == {"content-type": "application/json"}  # no webhook-id, -timestamp, -signature
    assert where.host == URLS[chat_format].split("/")[2]
    assert rig.store.items[webhook_id].health.last_success_at == rig.now
    (entry,) = rig.delivery_log.log[webhook_id].values()
    assert (entry.outcome, entry.status) == ("delivered", status)
    assert rig.delivery_log.states[("e1", webhook_id)].state == "delivered"


def test_a_chat_endpoint_needs_no_signing_key() -> None:
    rig = Rig()
    webhook_id = rig.register("slack")
    rig.store.items[webhook_id] = rig.store.items[webhook_id].model_copy(update={"secrets": ()})
    rig.event()
    rig.run_due()
    assert len(rig.sender.posts) == 1
    assert rig.delivery_log.states[("e1", webhook_id)].state == "delivered"


@pytest.mark.parametrize("chat_format", ["slack", "discord", "teams"])
def test_the_test_event_reaches_a_chat_endpoint_as_a_test_message(chat_format: ChatFormat) -> None:
    rig = Rig()
    webhook_id = rig.register(chat_format)
    rig.registry.send_test(webhook_id)
    rig.run_due()
    ((_, headers, body),) = rig.sender.posts
    assert "webhook-signature" not in headers
    text = body.decode()
    assert "Test message from genviral" in text
    assert "Sent 2026-03-01 12:00 UTC" in text
    assert "schema_version" not in json.loads(body)


@pytest.mark.parametrize(
    ("code", "reason"),
    [(("slack", 410, "channel_is_archived"), "the Slack channel is archived (channel_is_archived)"),
     (("slack", 404, "channel_not_found"), "the Slack channel was deleted"),
     (("slack", 403, "action_prohibited"), "a Slack admin restricted posting to the channel"),
     (("slack", 400, "invalid_payload"), "Slack refused the message as malformed"),
     (("discord", 404, '{"message": "Unknown Webhook", "code": 10015}'), "the Discord webhook was deleted"),
     (("teams", 400, '{"error": {"code": "InvalidRequest", "message": "bad card"}}'), "Teams answered 400")],
)  # fmt: skip
def test_a_refusal_for_good_is_parked_at_once_with_the_services_reason_in_the_endpoints_health(
    code: tuple[ChatFormat, int, str], reason: str
) -> None:
    chat_format, status, text = code
    rig = Rig(_answer(status, text))
    webhook_id = rig.register(chat_format)
    rig.event()
    rig.run_due()
    assert rig.queue.sent == []  # no retry
    ((parked, why),) = rig.queue.parked
    assert (parked.event_id, parked.attempt) == ("e1", 1)
    assert why.startswith(f"HTTP {status}: ")
    assert reason in why
    health = rig.store.items[webhook_id].health
    assert (health.last_failure_status, health.failing_since) == (status, rig.now)
    assert reason in (health.last_failure_reason or "")
    (entry,) = rig.delivery_log.log[webhook_id].values()
    assert (entry.outcome, entry.status) == ("failed", status)
    assert reason in (entry.reason or "")
    assert rig.delivery_log.states[("e1", webhook_id)].state == "parked"
    assert emitted(Metric.WEBHOOK_DELIVERIES_DEAD_LETTERED) == [1]


def test_a_refusal_for_good_counts_toward_disabling_the_endpoint_as_any_failure() -> None:
    unknown = _answer(404, '{"message": "Unknown Webhook", "code": 10015}')
    rig = Rig(unknown, unknown)
    webhook_id = rig.register("discord")
    rig.event(event_id="e1")
    rig.run_due()
    assert rig.store.items[webhook_id].enabled  # one refusal: the failing clock starts, the endpoint stays on
    rig.now += timedelta(hours=DEFAULT_DISABLE_AFTER_HOURS)
    rig.event(event_id="e2")
    rig.run_due()
    endpoint = rig.store.items[webhook_id]
    assert not endpoint.enabled
    assert endpoint.disabled_at == rig.now
    assert rig.delivery_log.states[("e2", webhook_id)].state == "disabled"
    (notice,) = rig.notices.published
    assert "the Discord webhook was deleted" in (notice.last_failure_reason or "")
    assert notice.host == "discord.com"


def test_discord_rate_limiting_is_retried_no_earlier_than_its_body_asks() -> None:
    rig = Rig(_answer(429, '{"message": "You are being rate limited.", "retry_after": 1800.5, "global": false}', 2))
    webhook_id = rig.register("discord")
    rig.event()
    rig.run_due()
    (retry,) = rig.queue.sent
    assert retry.attempt == 2
    assert retry.due_at == rig.now + timedelta(seconds=1800.5)
    assert rig.delivery_log.states[("e1", webhook_id)].state == "retrying"
    assert rig.store.items[webhook_id].health.last_failure_reason == "HTTP 429: rate limited"


@pytest.mark.parametrize("chat_format", ["slack", "teams"])
def test_a_services_outage_is_retried_on_the_schedule(chat_format: ChatFormat) -> None:
    rig = Rig(_answer(500, "internal_error"), _answer(502, "<html>bad gateway</html>"))
    rig.register(chat_format)
    rig.event()
    rig.run_due()
    (retry,) = rig.queue.sent
    assert retry.due_at == rig.now + RETRY_DELAYS[0]
    assert rig.queue.parked == []


def test_no_answer_from_a_chat_service_is_retried_as_any_delivery() -> None:
    rig = Rig(WebhookAnswer(status=None, reason="no answer within 10 s"))
    webhook_id = rig.register("slack")
    rig.event()
    rig.run_due()
    assert [delivery.attempt for delivery in rig.queue.sent] == [2]
    assert rig.store.items[webhook_id].health.last_failure_reason == "no answer within 10 s"
