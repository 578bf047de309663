"""The sample events under events/ are real: each inbound one drives its handler, each outbound one
is a valid event document in the envelope its target delivers."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from genviral_relay.aws.dynamodb_items import event_to_item
from genviral_relay.aws.event_log import DynamoDbEventLog
from genviral_relay.clock import utc_now
from genviral_relay.models.events import PublishedEvent, parse_event, published_document
from genviral_relay.rules.event_feed import feed_entries
from local.__main__ import main
from local.demo_workspaces import ACME_KEY
from local.emulator import DEFAULT_TOKEN, GenviralEmulator
from local.runner import API, POLLER, WEBHOOK_DELIVERY, WEBHOOK_DISPATCHER, WORKER, LocalRunner
from local.stack import MotoStack
from local.template import load_template
from local.webhook_receiver import WebhookReceiver
from tests.conftest import SECRETS, SYNC, TOKEN
from tools.event_schema import PUBLISHED_MODELS, document_model

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_POST = "11111111-1111-1111-1111-111111111111"
SAMPLE_WEBHOOK = "wh_5f0c3a9e2b7d4c18a6e1f09b3d72c845"
"""The endpoint the webhook route and delivery samples name."""
SNS_QUEUE_BODY_KEYS = {
    "Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL",
    "UnsubscribeURL", "MessageAttributes",
}  # fmt: skip
"""What every SNS notification delivered to an SQS queue (raw delivery off) carries; Lambda's record spells two
of them `SigningCertUrl`, `UnsubscribeUrl`, and adds `Subject` (null when none)."""
SNS_LAMBDA_KEYS = (SNS_QUEUE_BODY_KEYS - {"SigningCertURL", "UnsubscribeURL"}) | {
    "SigningCertUrl",
    "UnsubscribeUrl",
    "Subject",
}


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def test_every_inbound_sample_drives_its_handler(emulator: GenviralEmulator, runner: LocalRunner) -> None:
    emulator.create_post(post_id=SAMPLE_POST, accounts=["0f4f54d4-8cce-4fb7-8c7b-befbcb8af812"])

    answers = [
        runner.invoke(API, sample("api-register-watch.json"))["statusCode"],
        runner.invoke(API, sample("api-get-watch.json"))["statusCode"],
        runner.invoke(API, sample("api-check-watch.json"))["statusCode"],
        runner.invoke(POLLER, sample("schedule-tick.json")),
        runner.invoke(WORKER, sample("sqs-check-batch.json")),
        runner.invoke(API, sample("api-delete-watch.json"))["statusCode"],
    ]

    assert answers == [201, 200, 200, {"enqueued": SYNC}, {"batchItemFailures": []}, 200]
    assert emulator.calls(SAMPLE_POST) == 3  # register, check now, and the worker's check


@pytest.fixture
def private_urls_stack(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    # The loopback receiver is http:// on 127.0.0.1, which only AllowPrivateWebhookUrls allows (as local runs do).
    with MotoStack(
        genviral_api_url=emulator.base_url, token=TOKEN, parameters={"AllowPrivateWebhookUrls": "true"}
    ) as running:
        yield running


def with_webhook(event: dict[str, Any], webhook_id: str) -> dict[str, Any]:
    """A sample naming SAMPLE_WEBHOOK, pointed at the endpoint the registration sample created instead."""
    text = json.dumps(event)
    assert SAMPLE_WEBHOOK in text
    return dict(json.loads(text.replace(SAMPLE_WEBHOOK, webhook_id)))


def test_every_webhook_sample_drives_its_handler(private_urls_stack: MotoStack) -> None:
    runner = LocalRunner(private_urls_stack)
    with WebhookReceiver() as receiver:
        # The registration sample, its https URL swapped for the loopback receiver's (no network beyond it)
        register = sample("api-register-webhook.json")
        body = json.loads(register["body"])
        assert body["url"].startswith("https://")
        created = runner.invoke(API, {**register, "body": json.dumps({**body, "url": receiver.url})})
        assert created["statusCode"] == 201, created["body"]
        endpoint = json.loads(created["body"])
        webhook_id, secret = endpoint["id"], endpoint["secret"]
        SECRETS.add(secret.removeprefix("whsec_"))
        receiver.trust(secret)
        assert endpoint["event_types"] == body["event_types"]

        listed = runner.invoke(API, sample("api-list-webhooks.json"))
        got = runner.invoke(API, with_webhook(sample("api-get-webhook.json"), webhook_id))
        rotated = runner.invoke(API, with_webhook(sample("api-rotate-webhook-secret.json"), webhook_id))
        new_secret = json.loads(rotated["body"])["secret"]
        SECRETS.add(new_secret.removeprefix("whsec_"))
        receiver.trust(new_secret)
        tested = runner.invoke(API, with_webhook(sample("api-test-webhook.json"), webhook_id))
        # The samples' event, stored as the check stores it: a delivery signs only what the relay stored
        stored = parse_event(sample("sqs-webhook-fanout-batch.json")["Records"][0]["body"])
        table = private_urls_stack.client("dynamodb")
        table.put_item(TableName=private_urls_stack.ref("StateTable"), Item=event_to_item(stored, 2**31))
        fanned = runner.invoke(WEBHOOK_DISPATCHER, sample("sqs-webhook-fanout-batch.json"))
        attempted = runner.invoke(WEBHOOK_DELIVERY, with_webhook(sample("sqs-webhook-delivery-batch.json"), webhook_id))
        runner.deliver_webhooks()  # the test event and the fan-out's delivery, queued above
        # Edited, switched off (a resend is then refused: no feed is read) and on again
        managed = [
            runner.invoke(API, with_webhook(sample(f"api-{name}-webhook.json"), webhook_id))
            for name in ("edit", "disable", "resend", "enable")
        ]
        attempts = runner.invoke(API, with_webhook(sample("api-list-webhook-attempts.json"), webhook_id))
        deleted = runner.invoke(API, with_webhook(sample("api-delete-webhook.json"), webhook_id))
        gone = runner.invoke(API, with_webhook(sample("api-get-webhook.json"), webhook_id))

    assert [answer["statusCode"] for answer in (listed, got, rotated, tested, attempts, deleted, gone)] == [
        200, 200, 200, 202, 200, 200, 404
    ]  # fmt: skip
    assert json.loads(attempts["body"])["data"] == []  # the sample asks for failures: every attempt was delivered
    assert [item["id"] for item in json.loads(listed["body"])["webhooks"]] == [webhook_id]
    assert [answer["statusCode"] for answer in managed] == [200, 200, 409, 200], [a["body"] for a in managed]
    assert json.loads(managed[0]["body"])["filter"]["platforms"] == ["tiktok"]
    assert json.loads(managed[2]["body"])["error"] == "webhook_disabled"
    assert (fanned, attempted) == ({"batchItemFailures": []}, {"batchItemFailures": []})
    # Each delivery verified (with both keys signing after the rotation); the samples' event twice: once from the
    # delivery sample, once fanned out from the fan-out sample (same id: receivers dedupe on it)
    fanout_record = sample("sqs-webhook-fanout-batch.json")["Records"][0]
    sample_event = fanout_record["messageAttributes"]["event_id"]["stringValue"]
    test_event = json.loads(tested["body"])["event_id"]
    assert sorted(delivery.webhook_id for delivery in receiver.received) == sorted(
        [sample_event, sample_event, test_event]
    )
    assert all(delivery.verified_by == [0, 1] for delivery in receiver.received), [d.problem for d in receiver.received]
    assert (
        {delivery.body for delivery in receiver.received if delivery.webhook_id == sample_event}
        == {published_document(stored)}
        == {fanout_record["body"].encode()}
    )


def test_inbound_samples_cover_every_trigger_and_route() -> None:
    names = {path.name for path in EVENTS.glob("*.json")}
    assert names == {
        "schedule-tick.json",
        "sqs-check-batch.json",
        "sqs-webhook-fanout-batch.json",
        "sqs-webhook-delivery-batch.json",
        "api-register-watch.json",
        "api-get-watch.json",
        "api-check-watch.json",
        "api-delete-watch.json",
        "api-register-webhook.json",
        "api-list-webhooks.json",
        "api-get-webhook.json",
        "api-delete-webhook.json",
        "api-rotate-webhook-secret.json",
        "api-test-webhook.json",
        "api-edit-webhook.json",
        "api-disable-webhook.json",
        "api-enable-webhook.json",
        "api-resend-webhook.json",
        "api-list-events.json",
        "api-get-event.json",
        "api-list-webhook-attempts.json",
    }
    # every API route of the template has its sample
    routes = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "Api"
    }
    samples = {
        (api["httpMethod"], api["resource"]) for api in map(sample, sorted(n for n in names if n.startswith("api-")))
    }
    assert samples == routes


def parse_published(document: str | dict[str, object]) -> PublishedEvent:
    """A published document as its model: an event about a post, or the notice about an endpoint."""
    as_dict = json.loads(document) if isinstance(document, str) else document
    model = document_model(as_dict.get("event_type"))
    assert model is not None
    return model.model_validate(as_dict)


@pytest.mark.parametrize("event_type", list(PUBLISHED_MODELS))
def test_outbound_samples_are_valid_event_documents(event_type: str) -> None:
    name = event_type.replace(".", "-")
    eventbridge = sample(f"outbound/eventbridge-{name}.json")
    sns = sample(f"outbound/sns-{name}.json")
    (record,) = sample(f"outbound/lambda-sns-{name}.json")["Records"]

    from_bus = parse_published(eventbridge["detail"])
    from_topic = parse_published(sns["Message"])

    assert from_bus == from_topic
    assert from_bus.event_type == event_type
    assert eventbridge["detail-type"] == from_bus.detail_type
    assert eventbridge["source"] == "genviral.relay"
    assert {name: value["Value"] for name, value in sns["MessageAttributes"].items()} == from_bus.sns_attributes()
    # As SNS delivers to a queue: the whole notification, signed
    assert set(sns) == SNS_QUEUE_BODY_KEYS
    assert (sns["Type"], sns["SignatureVersion"]) == ("Notification", "1")
    assert sns["SigningCertURL"].startswith("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-")
    assert f"?Action=Unsubscribe&SubscriptionArn={sns['TopicArn']}:" in sns["UnsubscribeURL"]
    assert len(base64.b64decode(sns["Signature"], validate=True)) == 256  # an RSA-2048 signature's size
    # As SNS delivers to a function: the same notification in a record
    assert (record["EventSource"], record["EventVersion"]) == ("aws:sns", "1.0")
    assert record["EventSubscriptionArn"].startswith(sns["TopicArn"] + ":")
    assert set(record["Sns"]) == SNS_LAMBDA_KEYS
    assert record["Sns"]["Message"] == sns["Message"]
    assert record["Sns"]["MessageAttributes"] == sns["MessageAttributes"]
    assert record["Sns"]["UnsubscribeUrl"].endswith(record["EventSubscriptionArn"])
    assert parse_published(record["Sns"]["Message"]) == from_bus


def test_outbound_samples_are_one_of_each_delivery_per_event_type() -> None:
    names = {path.name for path in (EVENTS / "outbound").glob("*.json")}
    kinds = [event_type.replace(".", "-") for event_type in PUBLISHED_MODELS]
    assert names == {f"{target}-{kind}.json" for target in ("sns", "lambda-sns", "eventbridge") for kind in kinds}


def test_the_webhook_queue_samples_carry_what_their_handlers_parse() -> None:
    from genviral_relay.handlers.sqs_records import parse_deliveries, parse_fanout

    fanout = sample("sqs-webhook-fanout-batch.json")["Records"]
    deliveries = sample("sqs-webhook-delivery-batch.json")["Records"]
    (item,), poison = parse_fanout(fanout)
    assert poison == []
    document = parse_event(fanout[0]["body"])
    assert (item.event_id, item.event_type, item.post_id) == (document.event_id, document.event_type, document.post_id)
    (delivery,), poison = parse_deliveries(deliveries)
    assert poison == []
    assert (delivery.delivery.webhook_id, delivery.delivery.attempt) == (SAMPLE_WEBHOOK, 1)
    assert (delivery.delivery.event_id, delivery.delivery.post_id) == (document.event_id, document.post_id)


def test_demo_runs_the_whole_scenario_over_moto_server(capsys: pytest.CaptureFixture[str]) -> None:
    SECRETS.add(ACME_KEY)  # no log record may hold it either
    assert main(["demo"]) == 0  # what `make demo` runs
    output = capsys.readouterr().out
    log = Path(re.search(r"handler logs \(JSON lines\): (\S+)", output)[1])  # type: ignore[index]
    logged = log.read_text()
    log.unlink()
    for key in (DEFAULT_TOKEN, ACME_KEY, "gva_live_"):
        assert key not in output
        assert key not in logged
    assert "result: OK" in output
    assert '"level"' not in output  # handler logs go to the log file
    assert "retry -> posted" in output
    assert "ended_reason=post_not_found" in output
    # An event that names its account, a categorised failure, a delay and a completion
    assert "instagram @brand.shop scheduled -> failed [media_rejected]" in output
    assert "post.account.delayed post=" in output
    assert "outcome=partial (tiktok @brand posted, instagram @brand.shop failed)" in output
    # Several workspaces: the sync lists acme, an unknown name is refused naming the known ones, acme pauses alone
    assert re.search(r"^ +acme +active ", output, re.MULTILINE)
    assert (
        "unknown_workspace: the Genviral secret names no workspace acme-inc; this stack's workspaces: acme, default"
        in output
    )
    assert "workspace=acme     relay.paused " in output
    assert "workspace=acme     relay.resumed " in output
    assert "events crossing workspaces: none; acme paused alone: True; as expected: True" in output


def test_every_event_feed_sample_drives_its_handler(stack: MotoStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The samples' event, in the feed as a commit a minute ago put it (settled)
    stored = parse_event(sample("sqs-webhook-fanout-batch.json")["Records"][0]["body"])
    log = DynamoDbEventLog(stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=30))
    log.append(feed_entries([stored], utc_now() - timedelta(minutes=1)))
    runner = LocalRunner(stack)

    listed = runner.invoke(API, sample("api-list-events.json"))
    got = runner.invoke(API, sample("api-get-event.json"))

    assert (listed["statusCode"], got["statusCode"]) == (200, 200), (listed["body"], got["body"])
    assert [document["event_id"] for document in json.loads(listed["body"])["data"]] == [stored.event_id]
    assert json.loads(got["body"]) == {"event": json.loads(published_document(stored)), "deliveries": []}
