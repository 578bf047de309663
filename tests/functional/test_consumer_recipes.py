"""The consumer recipes under events/recipes/, each fed real events: the relay runs (Genviral on loopback,
the template's resources on moto) and the recipe decides what reaches a consumer's queue or endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from genviral_relay.aws.publishers import EventBridgePublisher, SnsPublisher
from genviral_relay.clock import utc_now
from genviral_relay.models.events import PublishedEvent, RelayEvent
from genviral_relay.models.relay_notices import PostsAtRisk
from genviral_relay.rules.transitions import detect_transitions
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.builders import ACCOUNT_B, account, outcomes, post
from tests.conftest import SECRETS, SYNC, TOKEN
from tests.functional.subscribers import documents
from tests.functional.test_cli import Cli
from tests.functional.test_relay_flow import publishing_now
from tools.event_schema import PUBLISHED_MODELS, document_model

RECIPES = Path(__file__).resolve().parents[2] / "events" / "recipes"
SAMPLES = RECIPES.parent / "outbound"
ACCOUNT_PLACEHOLDER = "GENVIRAL_ACCOUNT_ID"
WEBHOOK_KEY_SECRET = "relay/failure-webhook-key"
WEBHOOK_KEY = "whk_test_5f1d8c0a"


def recipe(name: str) -> dict[str, Any]:
    return dict(json.loads((RECIPES / name).read_text()))


def fail_retry_and_post(
    emulator: GenviralEmulator, runner: LocalRunner, post_id: str, retried: str, posted: str
) -> None:
    """Three transitions: `retried` fails, `posted` posts, then `retried` posts after Genviral's retry; and two
    completions (`partial`, then `posted`)."""
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    emulator.mark_failed(post_id, retried, error_message="Media rejected by platform")
    emulator.mark_posted(post_id, posted)
    assert event_types(runner.api("POST", f"/watches/{post_id}/check").body["transitions"]) == [
        "post.account.failed",
        "post.account.posted",
        "post.completed",
    ]
    emulator.retry(post_id)
    emulator.mark_posted(post_id, retried)
    assert event_types(runner.api("POST", f"/watches/{post_id}/check").body["transitions"]) == [
        "post.account.posted",
        "post.completed",
    ]


def event_types(documents: list[dict[str, Any]]) -> list[str]:
    return [document["event_type"] for document in documents]


def outcome(document: dict[str, Any]) -> tuple[str, str]:
    return document["account_id"], document["status"]


# ---------------------------------------------------------------------- SNS filter policy
def test_sns_filter_policy_delivers_failures_only(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (retried, posted) = publishing_now(emulator, accounts=2)
    stack.subscribe_to_topic("failures-only", filter_policy=recipe("sns-filter-failures-only.json"))

    fail_retry_and_post(emulator, runner, post_id, retried, posted)

    (failure,) = stack.received("failures-only")
    assert outcome(json.loads(failure["Message"])) == (retried, "failed")
    assert failure["MessageAttributes"]["event_type"]["Value"] == "post.account.failed"
    # The unfiltered subscriber got the posted events and the completions the filter held back.
    assert len(stack.received("sns")) == 5


def test_sns_filter_policy_on_the_category_delivers_disconnected_accounts_only(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (disconnected, rejected, posted) = publishing_now(emulator, accounts=3)
    stack.subscribe_to_topic("reconnect", filter_policy=recipe("sns-filter-account-disconnected.json"))
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201

    emulator.mark_failed(post_id, disconnected, error_message="The access token has expired; reconnect the account")
    emulator.mark_failed(post_id, rejected, error_message="Instagram rejected the media: aspect ratio 9:21")
    emulator.mark_posted(post_id, posted)
    assert len(runner.api("POST", f"/watches/{post_id}/check").body["transitions"]) == 4  # and the completion

    (alert,) = stack.received("reconnect")
    assert outcome(json.loads(alert["Message"])) == (disconnected, "failed")
    assert alert["MessageAttributes"]["error_category"]["Value"] == "account_disconnected"
    categories = {
        outcome(document): document["error_category"]
        for document in documents(stack.received("sns"))
        if document["event_type"] != "post.completed"
    }
    assert categories == {
        (disconnected, "failed"): "account_disconnected",
        (rejected, "failed"): "media_rejected",
        (posted, "posted"): None,
    }


# ---------------------------------------------------------------------- EventBridge rule, one account
def test_eventbridge_rule_delivers_posts_published_on_one_account(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (watched, other) = publishing_now(emulator, accounts=2)
    text = (RECIPES / "eventbridge-rule-posted-on-account.json").read_text()
    assert ACCOUNT_PLACEHOLDER in text
    stack.subscribe_to_bus("one-account", event_pattern=json.loads(text.replace(ACCOUNT_PLACEHOLDER, watched)))

    # The watched account fails, is retried and posts; the other account posts.
    fail_retry_and_post(emulator, runner, post_id, watched, other)

    (event,) = stack.received("one-account")
    assert outcome(event["detail"]) == (watched, "posted")
    assert event["detail"]["previous_status"] == "failed"
    assert len(stack.received("eventbridge")) == 5  # three transitions, two completions


# ---------------------------------------------------------------------- SNS: TikTok failures only
def test_sns_filter_policy_delivers_failures_on_tiktok_only(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (on_tiktok, on_instagram, posted_on_tiktok) = publishing_now(emulator, accounts=3)
    emulator.set_account(on_tiktok, platform="tiktok", username="brand")
    emulator.set_account(posted_on_tiktok, platform="tiktok", username="brand.two")
    emulator.set_account(on_instagram, platform="instagram", username="brand.shop")
    stack.subscribe_to_topic("tiktok-failures", filter_policy=recipe("sns-filter-tiktok-failures.json"))
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201

    emulator.mark_failed(post_id, on_tiktok, error_message="Video too short")
    emulator.mark_failed(post_id, on_instagram, error_message="Aspect ratio not supported")
    emulator.mark_posted(post_id, posted_on_tiktok)
    runner.api("POST", f"/watches/{post_id}/check")

    (alert,) = documents(stack.received("tiktok-failures"))
    assert (outcome(alert), alert["account"]["platform"], alert["account"]["username"]) == (
        (on_tiktok, "failed"),
        "tiktok",
        "brand",
    )
    assert len(stack.received("sns")) == 4  # three transitions and the completion reached the unfiltered one


# ---------------------------------------------------------------------- SNS: delayed deliveries
def test_sns_filter_policy_delivers_delayed_deliveries_only(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    late = emulator.create_post(accounts=1, scheduled_at=datetime.now(UTC) - timedelta(minutes=20))
    on_time, (posting,) = publishing_now(emulator, accounts=1)
    stack.subscribe_to_topic("on-call", filter_policy=recipe("sns-filter-delayed-deliveries.json"))

    assert runner.api("POST", "/watches", {"post_id": late}).status == 201  # 20 minutes late already
    assert runner.api("POST", "/watches", {"post_id": on_time}).status == 201
    emulator.mark_posted(on_time, posting)
    runner.api("POST", f"/watches/{on_time}/check")

    (page,) = stack.received("on-call")
    delayed = json.loads(page["Message"])
    assert (delayed["event_type"], delayed["post_id"], delayed["status"]) == ("post.account.delayed", late, "scheduled")
    assert page["MessageAttributes"]["event_type"]["Value"] == "post.account.delayed"
    assert event_types(documents(stack.received("sns"))) == [
        "post.account.delayed",
        "post.account.posted",
        "post.completed",
    ]


# ---------------------------------------------------------------------- EventBridge: completed posts
def test_eventbridge_rule_delivers_completed_posts_with_a_published_account(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    stack.subscribe_to_bus("crm", event_pattern=recipe("eventbridge-rule-completed-posts.json"))
    partly, (posted, failed) = publishing_now(emulator, accounts=2)
    not_at_all, (failed_too,) = publishing_now(emulator, accounts=1)
    for post_id in (partly, not_at_all):
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201

    emulator.mark_posted(partly, posted, published_url="https://social.example/p/1")
    emulator.mark_failed(partly, failed, error_message="Video too short")
    emulator.mark_failed(not_at_all, failed_too, error_message="Access token expired")
    assert runner.tick_and_work().processed == 2 + SYNC

    (completed,) = stack.received("crm")
    detail = completed["detail"]
    assert (completed["detail-type"], detail["post_id"], detail["outcome"]) == ("Post Completed", partly, "partial")
    assert (detail["posted_count"], detail["failed_count"]) == (1, 1)
    assert [(a["account_id"], a["status"], a["published_url"]) for a in detail["accounts"]] == [
        (posted, "posted", "https://social.example/p/1"),
        (failed, "failed", None),
    ]
    completions = [d for d in documents(stack.received("eventbridge")) if d["event_type"] == "post.completed"]
    assert sorted(d["outcome"] for d in completions) == ["failed", "partial"]  # the rule held back `failed`


# ---------------------------------------------------------------------- failure webhook (API destination)
@dataclass(frozen=True)
class Call:
    method: str
    path: str
    key: str | None = field(default=None, compare=False)
    """The value of the key header (`X-Api-Key`, the parameter's default)."""
    body: bytes = field(default=b"", compare=False)


class WebhookEndpoint:
    """An HTTP endpoint on loopback that records each call before answering it with `status` (and a
    `Location` header when `location` is set: a redirect)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.status = 200
        self.location: str | None = None
        calls = self.calls
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                calls.append(Call("POST", self.path, self.headers.get("X-Api-Key"), body))
                self.send_response(endpoint.status)
                if endpoint.location is not None:
                    self.send_header("Location", endpoint.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/relay-failures"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook() -> Iterator[WebhookEndpoint]:
    with WebhookEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def webhook_stack(
    emulator: GenviralEmulator, webhook: WebhookEndpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MotoStack]:
    # moto calls API destinations over HTTP only when asked to, and accepts plain HTTP (AWS requires HTTPS,
    # which the parameter's AllowedPattern enforces).
    monkeypatch.setenv("MOTO_EVENTS_INVOKE_HTTP", "true")
    SECRETS.add(WEBHOOK_KEY)
    with MotoStack(
        genviral_api_url=emulator.base_url,
        token=TOKEN,
        parameters={"FailureWebhookUrl": webhook.url, "FailureWebhookApiKeySecret": WEBHOOK_KEY_SECRET},
        secrets={WEBHOOK_KEY_SECRET: WEBHOOK_KEY},
    ) as running:
        yield running
        running.drain_subscribers()


def test_failure_webhook_is_called_for_failures_only(
    emulator: GenviralEmulator, webhook: WebhookEndpoint, webhook_stack: MotoStack
) -> None:
    post_id, (failing, posting) = publishing_now(emulator, accounts=2)

    fail_retry_and_post(emulator, LocalRunner(webhook_stack), post_id, failing, posting)

    assert webhook.calls == [Call("POST", "/relay-failures")]
    assert len(webhook_stack.received("eventbridge")) == 5


def test_failure_webhook_is_built_from_the_template(webhook_stack: MotoStack) -> None:
    events = webhook_stack.client("events")
    rule = webhook_stack.ref("FailureWebhookRule")
    bus = webhook_stack.ref("EventBus")

    assert json.loads(events.describe_rule(Name=rule, EventBusName=bus)["EventPattern"]) == recipe(
        "eventbridge-rule-failures.json"
    )
    (target,) = events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
    destination = events.describe_api_destination(Name=webhook_stack.ref("FailureWebhookDestination"))
    assert target["Arn"] == destination["ApiDestinationArn"]
    assert target["InputPath"] == "$.detail"
    assert target["DeadLetterConfig"]["Arn"] == webhook_stack.resolver.attributes[("FailureWebhookDLQ", "Arn")]
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
    assert target["RoleArn"] == webhook_stack.resolver.attributes[("FailureWebhookRole", "Arn")]
    # The key came from Secrets Manager through the template's dynamic reference into the connection's secret.
    connection = events.describe_connection(Name=webhook_stack.ref("FailureWebhookConnection"))
    assert connection["AuthParameters"]["ApiKeyAuthParameters"] == {"ApiKeyName": "X-Api-Key"}
    stored = webhook_stack.client("secretsmanager").get_secret_value(SecretId=connection["SecretArn"])
    assert json.loads(stored["SecretString"]) == {"api_key_name": "X-Api-Key", "api_key_value": WEBHOOK_KEY}


def test_without_a_webhook_url_no_webhook_resource_exists(stack: MotoStack) -> None:
    events = stack.client("events")
    assert events.list_connections()["Connections"] == []
    assert events.list_api_destinations()["ApiDestinations"] == []
    assert not {"FailureWebhookRule", "FailureWebhookDLQ", "FailureWebhookRole"} & set(stack.resolver.refs)


@pytest.mark.parametrize(
    ("parameters", "refusal"),
    [
        ({"FailureWebhookUrl": "https://hooks.example.com/relay"}, "needs FailureWebhookApiKeySecret"),
        (
            {
                "FailureWebhookUrl": "https://hooks.example.com/relay",
                "FailureWebhookApiKeySecret": WEBHOOK_KEY_SECRET,
                "PublishTargets": "sns",
            },
            "needs PublishTargets both or eventbridge",
        ),
    ],
)
def test_a_webhook_without_its_key_or_bus_is_refused_before_anything_is_made(
    emulator: GenviralEmulator, parameters: dict[str, str], refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters=parameters).start()


def parked_by_eventbridge(stack: MotoStack, event: RelayEvent) -> None:
    """What EventBridge puts in the target's DLQ once its retries are spent: the bus event and why."""
    bus_event = {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": event.detail_type,
        "source": "genviral.relay",
        "account": "123456789012",
        "time": "2026-03-02T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": event.model_dump(mode="json"),
    }
    stack.client("sqs").send_message(
        QueueUrl=stack.ref("FailureWebhookDLQ"),
        MessageBody=json.dumps(bus_event),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Unable to invoke ApiDestination endpoint"},
        },
    )


def test_redrive_webhook_posts_parked_failures_again_with_the_key(
    webhook: WebhookEndpoint, webhook_stack: MotoStack, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for name, value in webhook_stack.cli_environment().items():
        monkeypatch.setenv(name, value)
    cli = Cli(capsys, monkeypatch)
    (failure,) = outcomes(
        detect_transitions(None, post(account(status="failed"), account(ACCOUNT_B)), utc_now()).events
    )
    parked_by_eventbridge(webhook_stack, failure)
    parked_by_eventbridge(webhook_stack, failure)  # published twice (at least once), parked twice: POSTed once
    webhook_stack.client("sqs").send_message(QueueUrl=webhook_stack.ref("FailureWebhookDLQ"), MessageBody="{}")

    dry = cli("redrive", "webhook", "--dry-run")
    assert dry.code == 0
    assert "Unable to invoke ApiDestination endpoint" in dry.out
    assert webhook.calls == []

    webhook.status = 503  # the endpoint is still down: the event stays parked
    still_down = cli("redrive", "webhook", "--yes", "--json")
    assert still_down.code == 1
    assert "the webhook answered HTTP 503" in still_down.json()["left"].values()

    webhook.status = 200
    calls_before = len(webhook.calls)
    fixed = cli("redrive", "webhook", "--yes", "--json")

    assert fixed.code == 3  # partly done: the unreadable message stays, and says so
    assert list(fixed.json()["left"].values()) == ["not a relay event"]
    assert len(fixed.json()["redriven"]) == 2
    (delivered,) = webhook.calls[calls_before:]
    assert delivered.key == WEBHOOK_KEY
    assert json.loads(delivered.body) == failure.model_dump(mode="json")
    left = webhook_stack.client("sqs").receive_message(
        QueueUrl=webhook_stack.ref("FailureWebhookDLQ"), MaxNumberOfMessages=10
    )["Messages"]
    assert [message["Body"] for message in left] == ["{}"]


def test_redrive_failure_webhook_follows_no_redirect_and_sends_the_key_nowhere_else(
    webhook: WebhookEndpoint, webhook_stack: MotoStack, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A redirect could carry the key header to another host: a 3xx is a failure of that message, not followed."""
    for name, value in webhook_stack.cli_environment().items():
        monkeypatch.setenv(name, value)
    (failure,) = outcomes(
        detect_transitions(None, post(account(status="failed"), account(ACCOUNT_B)), utc_now()).events
    )
    parked_by_eventbridge(webhook_stack, failure)

    with WebhookEndpoint() as elsewhere:
        webhook.status, webhook.location = 307, elsewhere.url
        run = Cli(capsys, monkeypatch)("redrive", "failure-webhook", "--yes", "--json")

        assert run.code == 1, run.err
        assert list(run.json()["left"].values()) == ["the webhook answered HTTP 307 (a redirect: not followed)"]
        assert [call.key for call in webhook.calls] == [WEBHOOK_KEY]
        assert elsewhere.calls == []
    left = webhook_stack.client("sqs").receive_message(QueueUrl=webhook_stack.ref("FailureWebhookDLQ"))["Messages"]
    assert len(left) == 1  # still parked, for a redrive once the URL is fixed


# ---------------------------------------------------------------------- the notices (account.*, relay.*)
# Fed the committed samples through the relay's own publishers: the recipes are held to the documents consumers
# read in events/outbound (the checks that detect these are specified with their rules and flows).
RECIPES_OF_0_4 = (
    "sns-filter-failures-only.json",
    "sns-filter-account-disconnected.json",
    "sns-filter-tiktok-failures.json",
    "sns-filter-delayed-deliveries.json",
    "eventbridge-rule-completed-posts.json",
    "eventbridge-rule-posted-on-account.json",
    "eventbridge-rule-failures.json",
)
"""The recipes 0.4 shipped: consumers copied them, and filter with them still."""
TYPES_OF_0_5 = (
    "post.account.url_resolved",
    "account.disconnected",
    "account.reconnected",
    "relay.paused",
    "relay.resumed",
)


def sample_event(event_type: str) -> PublishedEvent:
    """The committed sample of `event_type` (events/outbound), as its model."""
    detail = json.loads((SAMPLES / f"eventbridge-{event_type.replace('.', '-')}.json").read_text())["detail"]
    model = document_model(event_type)
    assert model is not None
    return model.model_validate(detail)


def nothing_at_risk() -> PublishedEvent:
    """The disconnect sample for an account no watched post waits on."""
    disconnected = sample_event("account.disconnected")
    return disconnected.model_copy(
        update={"event_id": "d0c5e4a2-0b1f-5c3e-9a7d-6e8f0a1b2c3d", "posts_at_risk": PostsAtRisk(count=0, post_ids=())}
    )


def publish(stack: MotoStack, events: list[PublishedEvent]) -> None:
    """Through the relay's own publishers, to the stack's topic and bus, as a check publishes them."""
    for publisher in (
        SnsPublisher(stack.client("sns"), stack.ref("EventsTopic")),
        EventBridgePublisher(stack.client("events"), stack.ref("EventBus")),
    ):
        result = publisher.publish(events)
        assert result.failed == {}


def test_on_call_hears_of_a_disconnect_with_posts_at_risk_and_nothing_else(stack: MotoStack) -> None:
    stack.subscribe_to_bus("on-call", event_pattern=recipe("eventbridge-rule-disconnected-with-posts-at-risk.json"))
    stack.subscribe_to_topic(
        "on-call-sns", filter_policy=recipe("sns-filter-disconnected-with-posts-at-risk.json"), scope="MessageBody"
    )
    every_type = [sample_event(event_type) for event_type in PUBLISHED_MODELS]

    publish(stack, [*every_type, nothing_at_risk()])

    expected = sample_event("account.disconnected").model_dump(mode="json")
    (event,) = stack.received("on-call")
    assert (event["detail-type"], event["detail"]) == ("Account Disconnected", expected)
    (message,) = stack.received("on-call-sns")
    assert json.loads(message["Message"]) == expected
    assert expected["posts_at_risk"]["count"] > 0
    # The unfiltered subscribers got every one, the disconnect without posts at risk too.
    assert len(stack.received("sns")) == len(stack.received("eventbridge")) == len(every_type) + 1


def test_the_operator_hears_when_the_relay_pauses(stack: MotoStack) -> None:
    stack.subscribe_to_bus("operator", event_pattern=recipe("eventbridge-rule-relay-paused.json"))
    stack.subscribe_to_topic("operator-sns", filter_policy=recipe("sns-filter-relay-paused.json"))

    publish(stack, [sample_event(event_type) for event_type in PUBLISHED_MODELS])

    expected = sample_event("relay.paused").model_dump(mode="json")
    (event,) = stack.received("operator")
    assert (event["detail-type"], event["detail"]) == ("Relay Paused", expected)
    (message,) = documents(stack.received("operator-sns"))
    assert message == expected  # the resume that ended it is held back


def test_the_recipes_of_0_4_let_none_of_the_new_types_through(stack: MotoStack) -> None:
    """A consumer of 0.4 that filters on the event type sees nothing new unless it asks for it."""
    new = [sample_event(event_type) for event_type in TYPES_OF_0_5]
    resolved_on = sample_event("post.account.url_resolved").model_dump(mode="json")["account_id"]
    for name in RECIPES_OF_0_4:  # the account recipe names the account whose URL resolves: still nothing
        pattern = json.loads((RECIPES / name).read_text().replace(ACCOUNT_PLACEHOLDER, resolved_on))
        if name.startswith("sns-"):
            stack.subscribe_to_topic(name.removesuffix(".json"), filter_policy=pattern)
        else:
            stack.subscribe_to_bus(name.removesuffix(".json"), event_pattern=pattern)

    publish(stack, [*new, nothing_at_risk()])

    received = {name: stack.received(name.removesuffix(".json")) for name in RECIPES_OF_0_4}
    assert received == {name: [] for name in RECIPES_OF_0_4}
    assert len(stack.received("sns")) == len(stack.received("eventbridge")) == len(new) + 1
