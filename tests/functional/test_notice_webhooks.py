"""The notices about an account or the relay on moto, through the real webhook functions, the API and the CLI: a
notice the notice outbox committed (its item, its feed entry, its fan-out message, as the relay writes them) is
delivered signed with its stored body, its story lists its deliveries, a resend sends it again, a parked delivery of
it is redriven, and the CLI's feed names what each document is about."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay import factories, webhook_factories
from genviral_relay.aws.dynamodb_items import notice_key
from genviral_relay.aws.publishers import WebhookFanoutPublisher
from genviral_relay.cli import main as cli_main
from genviral_relay.models.events import published_document
from genviral_relay.notices.ports import NoticeDocument
from genviral_relay.rules.event_feed import FEED_SETTLE, feed_entries
from genviral_relay.rules.webhook_retries import RETRY_DELAYS
from local.runner import LocalRunner
from local.stack import MotoStack
from local.webhook_receiver import WebhookReceiver
from tests.conftest import SECRETS
from tests.functional.test_cli import Cli
from tests.support.doubles import SteppingClock
from tests.support.notice_samples import NOTICES, TIKTOK

RETENTION = timedelta(days=30)


@pytest.fixture
def receiver(relay_clock: SteppingClock) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(clock=relay_clock) as running:
        yield running


def register(relay: LocalRunner, receiver: WebhookReceiver, **body: Any) -> str:
    answer = relay.api("POST", "/webhooks", {"url": receiver.url, **body})
    assert answer.status == 201, answer.body
    secret = answer.body["secret"]
    SECRETS.add(secret.removeprefix("whsec_"))
    receiver.trust(secret)
    return str(answer.body["id"])


def commit(stack: MotoStack, notice: NoticeDocument) -> None:
    """What the notice outbox does with a notice: its stored document (`NOTICE#<id>`), its feed entry, and its
    message on the fan-out queue written by the real publisher."""
    now = factories.utc_now()
    item = {**notice_key(notice.event_id), "document": {"S": published_document(notice).decode()},
            "expires_at": {"N": str(int((now + RETENTION).timestamp()))}}  # fmt: skip
    stack.client("dynamodb").put_item(TableName=stack.ref("StateTable"), Item=item)
    log = webhook_factories.build_event_log(stack.ref("StateTable"), RETENTION, client=stack.client)
    log.append(feed_entries([notice], now))
    publisher = WebhookFanoutPublisher(stack.client("sqs"), stack.ref("WebhookFanoutQueue"))
    assert publisher.publish([notice]).published == {notice.event_id}


@pytest.mark.parametrize("event_type", list(NOTICES))
def test_a_committed_notice_reaches_an_endpoint_signed_with_its_stored_body(
    relay: LocalRunner, receiver: WebhookReceiver, event_type: str
) -> None:
    register(relay, receiver, event_types=[event_type])
    notice = NOTICES[event_type]
    commit(relay.stack, notice)

    relay.deliver_webhooks()

    (delivered,) = receiver.received
    assert delivered.verified, delivered.problem
    assert delivered.webhook_id == notice.event_id
    assert delivered.body == published_document(notice)


def test_a_notices_story_lists_its_deliveries_and_a_resend_sends_it_again(
    relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    # Given a disconnect delivered to one endpoint; another endpoint, for TikTok accounts, registered later
    first = register(relay, receiver)
    notice = NOTICES["account.disconnected"]
    relay_clock.now += timedelta(seconds=1)
    commit(relay.stack, notice)
    relay.deliver_webhooks()
    with WebhookReceiver(clock=relay_clock) as other:
        relay_clock.now += timedelta(seconds=1)
        second = register(relay, other, filter={"platforms": ["tiktok"]})
        relay_clock.now += FEED_SETTLE

        # When its story is read, and it is resent to the later endpoint by its id, then by a range
        story = relay.api("GET", f"/events/{notice.event_id}")
        by_id = relay.api("POST", f"/webhooks/{second}/resend", {"event_id": notice.event_id})
        since = (relay_clock.now - timedelta(minutes=5)).isoformat()
        by_range = relay.api("POST", f"/webhooks/{second}/resend", {"since": since})
        relay.deliver_webhooks()

        # Then the story shows the delivery, and the later endpoint gets the stored notice twice, as the first did
        assert story.status == 200, story.body
        assert story.body["event"] == notice.model_dump(mode="json")
        assert [(d["webhook_id"], d["state"]) for d in story.body["deliveries"]] == [(first, "delivered")]
        assert (by_id.status, by_id.body) == (202, {"queued": 1})
        assert (by_range.status, by_range.body) == (202, {"queued": 1})
        assert [one.body for one in other.received] == [receiver.received[0].body] * 2
        assert all(one.verified for one in other.received)


def test_a_parked_notice_delivery_is_redriven_from_its_first_attempt(
    relay: LocalRunner,
    receiver: WebhookReceiver,
    relay_clock: SteppingClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a pause whose delivery was parked after its last attempt, and the endpoint fixed since
    register(relay, receiver)
    receiver.answer(*[500] * 8)
    notice = NOTICES["relay.paused"]
    commit(relay.stack, notice)
    relay.deliver_webhooks()
    for wait in RETRY_DELAYS:
        relay_clock.now += wait
        relay.deliver_webhooks()
    assert len(receiver.received) == 8

    # When an operator redrives the webhooks' dead-letter queue
    for name, value in relay.stack.cli_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("genviral_relay.clock.utc_now", relay_clock)
    assert cli_main.main(["redrive", "webhook-deliveries", "--yes"]) == 0
    assert "1 message(s) redriven and deleted, 0 left in the queue" in capsys.readouterr().out
    relay.deliver_webhooks()

    # Then the stored notice arrives, signed now
    redriven = receiver.received[-1]
    assert (len(receiver.received), redriven.answer) == (9, 200)
    assert redriven.verified, redriven.problem
    assert redriven.body == published_document(notice)


def test_the_cli_names_what_each_feed_document_is_about(
    relay: LocalRunner,
    relay_clock: SteppingClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in relay.stack.cli_environment().items():
        monkeypatch.setenv(name, value)
    cli = Cli(capsys, monkeypatch)
    for notice in (NOTICES["account.disconnected"], NOTICES["relay.paused"]):
        commit(relay.stack, notice)
    relay_clock.now += FEED_SETTLE

    listed = cli("events", "list")
    only = cli("events", "list", "--event-type", "account.disconnected", "--json")
    shown = cli("events", "show", NOTICES["relay.paused"].event_id)

    assert listed.code == only.code == shown.code == 0, listed.err + only.err + shown.err
    rows = {words[1]: " ".join(words) for words in map(str.split, listed.out.splitlines()) if len(words) > 2}
    assert f"account {TIKTOK.id}" in rows["account.disconnected"]
    assert "the relay" in rows["relay.paused"]
    assert [d["event_type"] for d in only.json()["data"]] == ["account.disconnected"]
    assert "relay.paused about the relay" in shown.out
    assert json.dumps(NOTICES["relay.paused"].reason) in shown.out
