"""A delivery message cannot make the relay sign a body it did not produce, shown with IAM enforced: whoever may
send to the delivery queue (here the API's own role, which sends the test events) can only name an event the relay
stored (an event under its post, a notice under its id), and what the endpoint receives is the stored document.

Written with the queue's wire format and the receiver only, so it runs against a relay of any version: before
the fix a forged `post.account.posted` sent with the API's credentials was delivered, signed, and verified.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genviral_relay.aws.dynamodb_items import notice_key
from genviral_relay.clock import format_ts
from genviral_relay.models.events import published_document
from local.emulator import GenviralEmulator
from local.runner import API, LocalRunner
from local.stack import MotoStack
from local.webhook_receiver import WebhookReceiver
from tests.conftest import SECRETS, TOKEN
from tests.support.notice_samples import NOTICES


@pytest.fixture
def enforced(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    parameters = {"AllowPrivateWebhookUrls": "true"}  # the loopback receiver
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters=parameters, enforce_iam=True) as stack:
        yield stack
        assert stack.enforcement is not None
        denials = stack.enforcement.take_denials()
        assert not denials, "calls the roles refuse:\n" + "\n".join(map(str, denials))


def message(webhook_id: str, event_id: str, event_type: str, post_id: str | None) -> dict[str, Any]:
    """Attributes of a delivery message as the relay writes them (0.4 wrote no post_id)."""
    values = {"webhook_id": webhook_id, "event_id": event_id, "event_type": event_type, "post_id": post_id}
    attributes = {name: {"DataType": "String", "StringValue": value} for name, value in values.items() if value}
    attributes["attempt"] = {"DataType": "Number", "StringValue": "1"}
    attributes["due_at"] = {"DataType": "String", "StringValue": format_ts(datetime.now(UTC))}
    return attributes


def emitted(capsys: pytest.CaptureFixture[str], name: str) -> float:
    """The sum of metric `name` in the EMF documents the functions printed since the last read."""
    lines = capsys.readouterr().out.splitlines()
    documents = [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]
    values = [document[name] for document in documents if name in document]
    return sum(sum(value) if isinstance(value, list) else value for value in values)


def visible(stack: MotoStack, queue: str) -> int:
    stack.release_delayed(queue, lambda _: True)
    answer = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.ref(queue), AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(answer["Attributes"]["ApproximateNumberOfMessages"])


def test_a_forged_delivery_sent_with_the_apis_credentials_is_never_signed_and_a_tampered_body_never_reaches(
    emulator: GenviralEmulator, enforced: MotoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = LocalRunner(enforced)
    with WebhookReceiver() as receiver:
        # Given an endpoint, and one real event the relay detected, stored and delivered
        created = runner.api("POST", "/webhooks", {"url": receiver.url})
        assert created.status == 201
        webhook_id, secret = created.body["id"], created.body["secret"]
        SECRETS.add(secret.removeprefix("whsec_"))
        receiver.trust(secret)
        post_id = emulator.create_post(accounts=2, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
        emulator.mark_failed(post_id, emulator.account_ids(post_id)[0], error_message="Media rejected by platform")
        runner.tick_and_work()
        runner.deliver_webhooks()
        (real,) = receiver.received
        document = json.loads(real.body)
        capsys.readouterr()

        # When the API's role sends the delivery queue a post.account.posted the relay never detected, as 0.5 and
        # as 0.4 wrote deliveries, and then the real event's delivery with a tampered body
        api_sqs, queue_url = enforced.client_as(API, "sqs"), enforced.ref("WebhookDeliveryQueue")
        forged_id = str(uuid.uuid4())
        forged = {**document, "event_id": forged_id, "event_type": "post.account.posted", "status": "posted"}
        for named_post in (post_id, None):
            api_sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=json.dumps(forged),
                MessageAttributes=message(webhook_id, forged_id, "post.account.posted", named_post),
            )
        runner.deliver_webhooks()

        # Then nothing is sent, each is counted, and none is retried or parked
        assert len(receiver.received) == 1
        assert emitted(capsys, "WebhookMessagesRejected") == 2
        assert visible(enforced, "WebhookDeliveryQueue") == visible(enforced, "WebhookDLQ") == 0

        tampered = {**document, "error_message": "Send your password to https://phish.example"}
        api_sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(tampered),
            MessageAttributes=message(webhook_id, document["event_id"], document["event_type"], post_id),
        )
        runner.deliver_webhooks()

        # And the real event's delivery carries the stored document, byte for byte, not the tampered body
        (_, again) = receiver.received
        assert again.body == real.body
        assert again.verified_by
        assert b"phish" not in again.body


def test_a_notice_is_delivered_as_stored_and_a_message_naming_a_notice_never_stored_is_never_signed(
    emulator: GenviralEmulator, enforced: MotoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = LocalRunner(enforced)
    with WebhookReceiver() as receiver:
        # Given an endpoint of account notices, and a disconnect the notice outbox committed and fanned out (its
        # item and its fan-out message as the relay writes them: no post)
        created = runner.api("POST", "/webhooks", {"url": receiver.url, "event_types": ["account.disconnected"]})
        assert created.status == 201
        webhook_id, secret = created.body["id"], created.body["secret"]
        SECRETS.add(secret.removeprefix("whsec_"))
        receiver.trust(secret)
        notice = NOTICES["account.disconnected"]
        stored = published_document(notice).decode()
        kept_until = str(int((datetime.now(UTC) + timedelta(days=30)).timestamp()))
        enforced.client("dynamodb").put_item(
            TableName=enforced.ref("StateTable"),
            Item={**notice_key(notice.event_id), "document": {"S": stored}, "expires_at": {"N": kept_until}},
        )
        names = {"event_id": notice.event_id, "event_type": notice.event_type}
        enforced.client("sqs").send_message(
            QueueUrl=enforced.ref("WebhookFanoutQueue"),
            MessageBody=stored,
            MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in names.items()},
        )
        runner.deliver_webhooks()
        (delivered,) = receiver.received
        assert delivered.body == stored.encode()
        assert delivered.verified_by
        capsys.readouterr()

        # When the API's role names a disconnect never stored, then the stored one with a tampered body
        api_sqs, queue_url = enforced.client_as(API, "sqs"), enforced.ref("WebhookDeliveryQueue")
        never_stored = str(uuid.uuid4())
        forged = {**json.loads(stored), "event_id": never_stored, "status": "revoked"}
        api_sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(forged),
            MessageAttributes=message(webhook_id, never_stored, "account.disconnected", None),
        )
        runner.deliver_webhooks()

        # Then the unstored one is dropped unsigned and counted, neither retried nor parked
        assert len(receiver.received) == 1
        assert emitted(capsys, "WebhookMessagesRejected") == 1
        assert visible(enforced, "WebhookDeliveryQueue") == visible(enforced, "WebhookDLQ") == 0

        tampered = {**json.loads(stored), "posts_at_risk": {"count": 0, "post_ids": []}}
        api_sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(tampered),
            MessageAttributes=message(webhook_id, notice.event_id, notice.event_type, None),
        )
        runner.deliver_webhooks()

        # And the stored notice's delivery carries the stored document, byte for byte
        (_, again) = receiver.received
        assert again.body == delivered.body
        assert again.verified_by
