"""Chat deliveries end to end on moto: the template's functions, the real HTTPS sender's code path (http:// on
loopback), and loopback receivers answering as Slack, Discord and Teams do (statuses and bodies as the services
answer). Each receiver's path stands for the webhook's token: the sentinel fails the test if a log line holds it."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay.receivers import sender
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from local.webhook_receiver import Delivery, Reply, WebhookReceiver
from tests.conftest import SECRETS, TOKEN
from tests.functional.test_webhooks import check_now
from tests.support.doubles import StaticResolver, SteppingClock

HOSTILE_CAPTION = (
    "<!channel> <!here> <@U123> @everyone @here <https://evil.example|ok> **bold** [x](https://evil.example)"
)
HOSTILE_HANDLE = "<!here>@everyone"
HOSTILE_ERROR = "<!channel> Media rejected <@U999> [click](https://evil.example)"


def chat_receiver(clock: SteppingClock, service: str) -> WebhookReceiver:
    """A loopback stand-in for the service's webhook, its path a token no log line may hold."""
    token = secrets.token_hex(16)
    SECRETS.add(token)
    return WebhookReceiver(clock=clock, path=f"/{service}/hooks/{token}", chat=True)


def register(relay: LocalRunner, receiver: WebhookReceiver, chat_format: str, **body: Any) -> dict[str, Any]:
    answer = relay.api("POST", "/webhooks", {"url": receiver.url, "format": chat_format, **body})
    assert answer.status == 201, answer.body
    SECRETS.add(answer.body["secret"].removeprefix("whsec_"))
    return dict(answer.body)


def hostile_failure(emulator: GenviralEmulator, relay: LocalRunner) -> dict[str, Any]:
    """A watched post, of someone else's text everywhere, whose one account fails: one `post.account.failed` (one
    more account stays scheduled, so the post does not complete)."""
    post_id = emulator.create_post(accounts=2, scheduled_at=None, caption=HOSTILE_CAPTION)
    failing = emulator.account_ids(post_id)[0]
    emulator.set_account(failing, platform="tiktok", username=HOSTILE_HANDLE)
    assert relay.api("POST", "/watches", {"post_id": post_id}).status == 201
    emulator.mark_failed(post_id, failing, error_message=HOSTILE_ERROR)
    (event,) = check_now(relay, post_id)
    return event


def unsigned_json(delivery: Delivery) -> dict[str, Any]:
    assert delivery.headers["content-type"] == "application/json"
    assert not [name for name in delivery.headers if name.startswith("webhook-")]
    return dict(json.loads(delivery.body))


def test_a_slack_endpoint_gets_block_kit_with_every_piece_of_someone_elses_text_inert(
    emulator: GenviralEmulator, relay: LocalRunner, relay_clock: SteppingClock
) -> None:
    with chat_receiver(relay_clock, "slack") as slack:
        slack.answer(Reply(200, body="ok"))
        created = register(relay, slack, "slack")
        assert (created["format"], created["rate_limit"]) == ("slack", 1.0)
        hostile_failure(emulator, relay)
        relay.deliver_webhooks()

        (delivery,) = slack.received
        payload = unsigned_json(delivery)
        text = json.dumps(payload)
        assert {"text", "blocks"} <= set(payload)
        for live in ("<!channel>", "<!here>", "<@U123>", "<@U999>", "<https://evil.example|ok>"):
            assert live not in text
        assert "&lt;!channel&gt;" in text
        assert all(part.get("type") == "plain_text" for part in _texts(payload["blocks"]))  # no mrkdwn at all
        detail = relay.api("GET", f"/webhooks/{created['id']}").body
        assert detail["delivery"]["last_success_at"] is not None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)


def _texts(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for block in blocks:
        found.extend([block["text"]] if "text" in block else block.get("elements", []))
        if "accessory" in block:
            found.append(block["accessory"]["text"])
    return found


def test_a_discord_endpoint_gets_an_embed_that_pings_no_one_and_its_deleted_webhook_is_parked_at_once(
    emulator: GenviralEmulator, relay: LocalRunner, relay_clock: SteppingClock
) -> None:
    with chat_receiver(relay_clock, "discord") as discord:
        unknown = json.dumps({"message": "Unknown Webhook", "code": 10015})
        discord.answer(Reply(404, body=unknown, content_type="application/json"))
        created = register(relay, discord, "discord")
        assert created["rate_limit"] == 0.5
        event = hostile_failure(emulator, relay)
        relay.deliver_webhooks()
        relay_clock.now += timedelta(hours=1)
        relay.deliver_webhooks()  # nothing is retried

        (delivery,) = discord.received
        payload = unsigned_json(delivery)
        assert payload["allowed_mentions"] == {"parse": []}
        shown = "\n".join(_strings(payload["embeds"]))
        assert "@everyone" in shown  # shown, escaped: Discord reads `\@` as a plain @
        assert not re.search(r"(?<!\\)(@everyone|@here|<@|\[x\]\(https)", shown)

        reason = "HTTP 404: the Discord webhook was deleted (Unknown Webhook)"
        sqs = relay.stack.client("sqs")
        (parked,) = sqs.receive_message(QueueUrl=relay.stack.ref("WebhookDLQ"), MessageAttributeNames=["All"])[
            "Messages"
        ]
        assert parked["MessageAttributes"]["reason"]["StringValue"] == reason
        assert parked["MessageAttributes"]["attempt"]["StringValue"] == "1"
        assert discord.url.split("/")[-1] not in json.dumps(parked)
        health = relay.api("GET", f"/webhooks/{created['id']}").body["delivery"]
        assert (health["last_failure_status"], health["last_failure_reason"]) == (404, reason)
        assert health["failing_since"] is not None
        (attempt,) = relay.api("GET", f"/webhooks/{created['id']}/attempts").body["data"]
        assert (attempt["event_id"], attempt["outcome"], attempt["reason"]) == (event["event_id"], "failed", reason)
        (state,) = relay.api("GET", f"/events/{event['event_id']}").body["deliveries"]
        assert state["state"] == "parked"


def test_each_services_answers_lead_where_they_say(
    emulator: GenviralEmulator, relay: LocalRunner, relay_clock: SteppingClock
) -> None:
    with (
        chat_receiver(relay_clock, "slack") as slack,
        chat_receiver(relay_clock, "discord") as discord,
        chat_receiver(relay_clock, "teams") as teams,
    ):
        slack.answer(Reply(410, body="channel_is_archived"))
        limited = json.dumps({"message": "You are being rate limited.", "retry_after": 900.0, "global": False})
        discord.answer(Reply(429, retry_after="2", body=limited, content_type="application/json"), Reply(204))
        teams.answer(Reply(202))
        ids = {name: register(relay, receiver, name)["id"] for name, receiver in
               (("slack", slack), ("discord", discord), ("teams", teams))}  # fmt: skip
        hostile_failure(emulator, relay)
        relay.deliver_webhooks()

        health = {name: relay.api("GET", f"/webhooks/{webhook}").body["delivery"] for name, webhook in ids.items()}
        assert health["slack"]["last_failure_reason"] == "HTTP 410: the Slack channel is archived (channel_is_archived)"
        assert health["teams"]["last_success_at"] is not None
        assert (health["discord"]["last_failure_status"], health["discord"]["attempts_pending"]) == (429, 1)
        teams_card = unsigned_json(teams.received[0])["attachments"][0]
        assert teams_card["contentType"] == "application/vnd.microsoft.card.adaptive"

        relay_clock.now += timedelta(seconds=600)  # past the schedule's 5 s, short of Discord's 900 s
        relay.deliver_webhooks()
        assert len(discord.received) == 1
        relay_clock.now += timedelta(seconds=301)
        relay.deliver_webhooks()
        assert len(discord.received) == 2
        assert discord.received[1].body == discord.received[0].body
        assert relay.api("GET", f"/webhooks/{ids['discord']}").body["delivery"]["failing_since"] is None
        assert len(slack.received) == 1  # archived: not retried


def test_the_test_route_reaches_a_chat_endpoint_as_a_test_message(
    relay: LocalRunner, relay_clock: SteppingClock
) -> None:
    with chat_receiver(relay_clock, "slack") as slack:
        created = register(relay, slack, "slack")
        assert relay.api("POST", f"/webhooks/{created['id']}/test").status == 202
        relay.deliver_webhooks()
        (delivery,) = slack.received
        assert "Test message from genviral-relay" in unsigned_json(delivery)["text"]


@pytest.fixture
def public_api(emulator: GenviralEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRunner]:
    # The services' hosts resolve to public addresses, without DNS
    names = {"hooks.slack.com": ["34.201.1.1"], "discord.com": ["162.159.1.1"], "hooks.example.com": ["93.184.216.34"]}
    monkeypatch.setattr(sender, "SystemResolver", lambda: StaticResolver(names))
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN) as running:
        yield LocalRunner(running)


def test_the_api_detects_a_services_url_and_refuses_a_pace_above_its_published_limit(public_api: LocalRunner) -> None:
    slack_url = "https://hooks.slack.com/services/T000/B000/" + secrets.token_hex(12)
    SECRETS.add(slack_url.rsplit("/", 1)[1])
    refused = public_api.api("POST", "/webhooks", {"url": slack_url, "rate_limit": 5})
    assert refused.status == 400
    assert refused.body["error"] == "bad_request"
    assert "(1 per second)" in refused.body["message"]

    created = public_api.api("POST", "/webhooks", {"url": slack_url})
    assert created.status == 201, created.body
    SECRETS.add(created.body["secret"].removeprefix("whsec_"))
    assert (created.body["format"], created.body["rate_limit"]) == ("slack", 1.0)
    path = f"/webhooks/{created.body['id']}"
    discord_url = "https://discord.com/api/webhooks/1/" + secrets.token_hex(12)
    SECRETS.add(discord_url.rsplit("/", 1)[1])
    edited = public_api.api("PATCH", path, {"url": discord_url})
    assert (edited.status, edited.body["format"], edited.body["rate_limit"]) == (200, "discord", 0.5)
    refused = public_api.api("PATCH", path, {"rate_limit": 3})
    assert refused.status == 400
    assert "(0.5 per second)" in refused.body["message"]
    refused = public_api.api("POST", "/webhooks", {"url": "https://hooks.example.com/x", "format": "telegram"})
    assert refused.status == 400
    assert "format" in refused.body["message"]
