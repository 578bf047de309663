"""Metrics and log keys as the handlers write them (EMF documents on stdout, Powertools JSON log lines).

Every metric an alarm watches is produced here by a real fault through the real handlers, with the
dimensions the alarms name; Genviral errors are told apart by code; the lag and the outbox age are
measured in seconds; and the log lines of one tick's checks carry the tick's correlation id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay import factories
from genviral_relay.aws.dead_letters import SqsDeadLetters
from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.aws.work_queue import CORRELATION_ATTRIBUTE
from genviral_relay.clock import format_ts, utc_now
from genviral_relay.genviral.client import GenviralClient, StaticToken
from genviral_relay.observability import METRICS_NAMESPACE, SERVICE, STACK_DIMENSION, Metric, metrics
from genviral_relay.receivers import sender
from genviral_relay.relay import compose_relay
from local.emulator import Fault, GenviralEmulator
from local.runner import API, WORKER, LocalRunner, api_gateway_event
from local.stack import MotoStack
from tests.conftest import SECRETS, SYNC, TOKEN, SecretSentinel
from tests.functional import test_discover as discover_tests
from tests.functional.subscribers import drain
from tests.functional.test_auth_faults import refuse_401, refuse_402, refuse_403, relay_lines, secret_deleted
from tests.functional.test_relay_flow import publishing_now
from tests.infra.test_alarms import alarmed_relay_metrics
from tests.support.doubles import RecordingPublisher, StaticResolver, SteppingClock

GENVIRAL_ERROR_METRICS = {metric for metric in Metric if metric.startswith("GenviralErrors")} | {
    Metric.SECRET_UNREADABLE
}


@dataclass
class Emitted:
    """The EMF documents the handlers printed, checked for the namespace and dimensions the alarms name."""

    documents: list[dict[str, Any]]

    def values(self, metric: Metric) -> list[float]:
        return [value for document in self.documents for value in _as_list(document.get(metric.value, []))]

    def names(self) -> set[str]:
        return {
            entry["Name"]
            for document in self.documents
            for directive in document["_aws"]["CloudWatchMetrics"]
            for entry in directive["Metrics"]
        }


def _as_list(value: Any) -> list[float]:
    return value if isinstance(value, list) else [value]


def emitted(capsys: pytest.CaptureFixture[str], stack: MotoStack) -> Emitted:
    lines = capsys.readouterr().out.splitlines()
    documents = [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]
    stack_name = stack.function_env(WORKER)["STACK_NAME"]
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == METRICS_NAMESPACE
        (dimensions,) = directive["Dimensions"]
        assert sorted(dimensions) == sorted(["service", STACK_DIMENSION])  # CloudWatch ignores the order
        assert (document["service"], document[STACK_DIMENSION]) == (SERVICE, stack_name)
        assert {entry["Name"] for entry in directive["Metrics"]} <= set(Metric)
    return Emitted(documents)


def register(runner: LocalRunner, post_id: str) -> None:
    assert runner.api("POST", "/watches", {"post_id": post_id}).status in (201, 202)


def watched_then_posted(emulator: GenviralEmulator, runner: LocalRunner) -> str:
    """A watched post whose one account has since been posted: the next check finds a transition."""
    post_id, (account_id,) = publishing_now(emulator)
    register(runner, post_id)
    emulator.mark_posted(post_id, account_id)
    return post_id


# ---------------------------------------------------------------- a tick: figures and correlation


def test_a_tick_reports_checks_transitions_lag_and_publishing(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    capsys: pytest.CaptureFixture[str],
    secret_sentinel: SecretSentinel,
) -> None:
    post_id, (posted_account, failed_account) = publishing_now(emulator, accounts=2)
    register(runner, post_id)
    posted_at, failed_at = utc_now() - timedelta(seconds=30), utc_now() - timedelta(seconds=20)
    emulator.mark_posted(post_id, posted_account, at=posted_at)
    emulator.mark_failed(post_id, failed_account, at=failed_at)
    capsys.readouterr()

    before = utc_now()
    runner.tick_and_work()
    after = utc_now()

    figures = emitted(capsys, stack)
    assert figures.values(Metric.POLLER_TICKS) == [1]
    assert figures.values(Metric.CHECKS_QUEUED) == [1]  # the stack's own work (the sync) is no check: not counted
    assert figures.values(Metric.POSTS_CHECKED) == [1]
    assert figures.values(Metric.TRANSITIONS_POSTED) == figures.values(Metric.TRANSITIONS_FAILED) == [1]
    assert figures.values(Metric.POSTS_COMPLETED) == [1]
    # two transitions and the completion, three targets (the webhooks' fan-out queue too)
    assert sum(figures.values(Metric.EVENTS_PUBLISHED)) == 9
    # Detected between `before` and `after`: each lag is bounded by when Genviral changed the account.
    posted_lag, failed_lag = sorted(figures.values(Metric.DETECTION_LAG), reverse=True)
    assert (before - posted_at).total_seconds() <= posted_lag <= (after - posted_at).total_seconds()
    assert (before - failed_at).total_seconds() <= failed_lag <= (after - failed_at).total_seconds()
    (outbox_age,) = figures.values(Metric.PENDING_OUTBOX_AGE)  # the new events, just detected
    assert 0 <= outbox_age <= (after - before).total_seconds()
    assert not figures.names() & GENVIRAL_ERROR_METRICS

    # Every line of the tick's checks carries the tick's correlation id and names what it is about.
    (tick_line,) = relay_lines(secret_sentinel, "Tick")
    tick_id = tick_line["correlation_id"]
    assert tick_id == tick_line["function_request_id"]
    transitions = relay_lines(secret_sentinel, "Transition detected")
    (completion,) = relay_lines(secret_sentinel, "Post completion detected")
    received = drain(stack)
    delivered = {(d["account_id"], d["event_id"]) for d in received.sns_transitions()}
    assert {(line["account_id"], line["event_id"]) for line in transitions} == delivered
    assert [(d["event_id"], d["outcome"]) for d in received.sns_documents() if d["event_type"] == "post.completed"] == [
        (completion["event_id"], completion["outcome"])
    ]
    assert {(line["post_id"], line["correlation_id"]) for line in [*transitions, completion]} == {(post_id, tick_id)}


def test_an_api_request_is_correlated_by_its_api_gateway_request_id(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    capsys: pytest.CaptureFixture[str],
    secret_sentinel: SecretSentinel,
) -> None:
    post_id, (account_id,) = publishing_now(emulator)
    emulator.mark_posted(post_id, account_id)
    event = api_gateway_event(stack.template, "POST", "/watches", json.dumps({"post_id": post_id}))
    event["requestContext"]["requestId"] = "api-request-7"

    assert runner.invoke(API, event)["statusCode"] == 201

    (line,) = relay_lines(secret_sentinel, "Transition detected")
    assert (line["correlation_id"], line["post_id"], line["account_id"]) == ("api-request-7", post_id, account_id)
    assert line["event_id"]
    (completion,) = relay_lines(secret_sentinel, "Post completion detected")
    assert (completion["correlation_id"], completion["post_id"]) == ("api-request-7", post_id)
    figures = emitted(capsys, stack)
    assert figures.values(Metric.TRANSITIONS_POSTED) == [1]
    assert figures.values(Metric.DETECTION_LAG) == []  # found at registration: no lag to speak of


def test_checks_in_one_batch_keep_the_correlation_id_of_the_message_that_asked_for_them(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    secret_sentinel: SecretSentinel,
) -> None:
    posts = [publishing_now(emulator) for _ in range(3)]
    for post_id, (account_id,) in posts:
        register(runner, post_id)
        emulator.mark_posted(post_id, account_id)
    sqs = stack.client("sqs")
    expected = {}
    for (post_id, _), tick in zip(posts, ("tick-a", "tick-b", None), strict=True):
        attributes = {CORRELATION_ATTRIBUTE: {"DataType": "String", "StringValue": tick}} if tick else {}
        sent = sqs.send_message(
            QueueUrl=stack.ref("WorkQueue"), MessageBody=json.dumps({"post_id": post_id}), MessageAttributes=attributes
        )
        expected[post_id] = tick or sent["MessageId"]  # no tick: the message's own id

    report = runner.drain_work_queue()

    assert (report.batches, report.processed) == (1, 3)  # one batch, checked on several threads
    lines = relay_lines(secret_sentinel, "Transition detected")
    assert {line["post_id"]: line["correlation_id"] for line in lines} == expected
    completions = relay_lines(secret_sentinel, "Post completion detected")
    assert sorted((line["post_id"], line["correlation_id"]) for line in completions) == sorted(expected.items())


# ---------------------------------------------------------------- Genviral errors, by code


def rate_limited_for_long(emulator: GenviralEmulator, stack: MotoStack) -> None:
    emulator.inject(Fault.rate_limited("99999"), times=10)  # past the honoured Retry-After: left to a later tick


def server_errors(emulator: GenviralEmulator, stack: MotoStack) -> None:
    emulator.inject(Fault.server_error(), times=10)


GENVIRAL_FAULTS = [
    pytest.param(refuse_401, Metric.GENVIRAL_ERRORS_401, True, id="401"),
    pytest.param(refuse_402, Metric.GENVIRAL_ERRORS_402, True, id="402"),
    pytest.param(refuse_403, Metric.GENVIRAL_ERRORS_403, True, id="403"),
    pytest.param(secret_deleted, Metric.SECRET_UNREADABLE, True, id="secret-unreadable"),
    pytest.param(rate_limited_for_long, Metric.GENVIRAL_ERRORS_429, False, id="429"),
    pytest.param(server_errors, Metric.GENVIRAL_ERRORS_5XX, False, id="5xx"),
]


@pytest.mark.parametrize(("break_it", "metric", "pauses"), GENVIRAL_FAULTS)
def test_genviral_errors_are_counted_by_code(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    capsys: pytest.CaptureFixture[str],
    break_it: Callable[[GenviralEmulator, MotoStack], None],
    metric: Metric,
    pauses: bool,
) -> None:
    watched_then_posted(emulator, runner)
    break_it(emulator, stack)
    capsys.readouterr()

    runner.tick_and_work()

    figures = emitted(capsys, stack)
    # An unreadable secret is counted by the check, and again by the workspaces' sync that follows it
    assert figures.values(metric) == [1] * (1 + SYNC if metric is Metric.SECRET_UNREADABLE else 1)
    assert figures.names() & GENVIRAL_ERROR_METRICS == {metric}
    assert figures.values(Metric.GENVIRAL_PAUSES) == ([1] if pauses else [])
    assert figures.values(Metric.TRANSITIONS_POSTED) == []


def test_a_paused_tick_still_counts_as_a_tick(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    post_id, _ = publishing_now(emulator)
    register(runner, post_id)
    refuse_402(emulator, stack)
    runner.tick_and_work()
    capsys.readouterr()

    assert "paused" in runner.tick()

    figures = emitted(capsys, stack)
    assert figures.values(Metric.POLLER_TICKS) == figures.values(Metric.TICKS_PAUSED) == [1]
    assert figures.values(Metric.CHECKS_QUEUED) == []


# ---------------------------------------------------------------- publishing


def delete_topic(stack: MotoStack) -> None:
    stack.client("sns").delete_topic(TopicArn=stack.ref("EventsTopic"))


def test_a_failed_publish_is_counted_and_kept(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    watched_then_posted(emulator, runner)
    delete_topic(stack)
    capsys.readouterr()

    runner.tick_and_work()

    figures = emitted(capsys, stack)
    assert figures.values(Metric.PUBLISH_FAILURES) == [1, 1]  # the transition and the completion
    assert figures.values(Metric.EVENTS_DEAD_LETTERED) == []  # a missing topic is an outage: kept, not parked
    assert figures.values(Metric.EVENTS_PUBLISHED) == [0, 2, 2]  # SNS took none; EventBridge, the webhooks two each


def test_an_event_stuck_in_the_outbox_reports_its_age_at_each_check(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    post_id = watched_then_posted(emulator, runner)
    delete_topic(stack)  # kept in the outbox until the topic is back
    before = utc_now()
    runner.tick_and_work()
    capsys.readouterr()

    answer = runner.api("POST", f"/watches/{post_id}/check")

    assert answer.body["watch"]["pending_deliveries"] == 2  # the transition and the completion, owed to SNS
    figures = emitted(capsys, stack)
    (age,) = figures.values(Metric.PENDING_OUTBOX_AGE)  # since their detection by the tick's check
    assert 0 <= age <= (utc_now() - before).total_seconds()
    assert figures.values(Metric.PUBLISH_FAILURES) == [1, 1]


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(utc_now().replace(microsecond=0))  # Genviral's timestamps and the relay's have milliseconds


def test_lag_and_outbox_age_are_seconds_of_upstream_and_relay_time(
    emulator: GenviralEmulator, stack: MotoStack, clock: SteppingClock
) -> None:
    store = DynamoDbStore(
        stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=30), clock=utc_now
    )
    publisher = RecordingPublisher("sns")
    checker = compose_relay(
        store=store,
        state=store,
        source=GenviralClient(emulator.base_url, StaticToken(TOKEN), sleep=lambda _: None),
        publishers=[publisher],
        dead_letters=SqsDeadLetters(stack.client("sqs"), stack.ref("EventsDLQ"), clock=utc_now),
        clock=clock,
    ).checker
    start = clock.now
    post_id, (account_id,) = publishing_now(emulator)
    checker.check(post_id, trigger="register")
    emulator.mark_posted(post_id, account_id, at=start + timedelta(seconds=18))
    publisher.failing = True
    metrics.clear_metrics()

    clock.now = start + timedelta(seconds=60)
    checker.check(post_id)
    assert metrics.metric_set[Metric.DETECTION_LAG]["Value"] == [42.0]
    assert metrics.metric_set[Metric.PENDING_OUTBOX_AGE]["Value"] == [0.0]
    metrics.clear_metrics()

    clock.now = start + timedelta(minutes=11)
    checker.check(post_id)
    assert metrics.metric_set[Metric.PENDING_OUTBOX_AGE]["Value"] == [600.0]
    assert Metric.DETECTION_LAG not in metrics.metric_set  # nothing new upstream


def test_a_failing_webhook_endpoint_reports_how_long_it_has_been_failing(
    runner: LocalRunner, stack: MotoStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An endpoint whose name, public at registration, then resolves to a loopback address: every attempt fails
    resolver = StaticResolver({"hooks.example.com": ["93.184.216.34"]})
    monkeypatch.setattr(sender, "SystemResolver", lambda: resolver)
    now = [utc_now().replace(microsecond=0)]  # the table keeps milliseconds
    monkeypatch.setattr(factories, "utc_now", lambda: now[0])
    created = runner.api("POST", "/webhooks", {"url": "https://hooks.example.com/genviral"})
    SECRETS.add(created.body["secret"].removeprefix("whsec_"))
    resolver.names["hooks.example.com"] = ["127.0.0.1"]
    assert runner.api("POST", f"/webhooks/{created.body['id']}/test").status == 202
    runner.deliver_webhooks()
    capsys.readouterr()

    # An hour and a minute later, the retry fails too
    now[0] += timedelta(minutes=61)
    runner.deliver_webhooks()

    figures = emitted(capsys, stack)
    assert figures.values(Metric.WEBHOOK_DELIVERY_FAILURES) == [1]
    assert figures.values(Metric.WEBHOOK_FAILING_AGE) == [3660.0]  # over WebhookFailingAlarm's 60 minutes


def test_an_endpoint_failing_too_long_is_disabled_once_and_counted(
    runner: LocalRunner, stack: MotoStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = StaticResolver({"hooks.example.com": ["93.184.216.34"]})
    monkeypatch.setattr(sender, "SystemResolver", lambda: resolver)
    now = [utc_now().replace(microsecond=0)]
    monkeypatch.setattr(factories, "utc_now", lambda: now[0])
    created = runner.api("POST", "/webhooks", {"url": "https://hooks.example.com/genviral"})
    SECRETS.add(created.body["secret"].removeprefix("whsec_"))
    resolver.names["hooks.example.com"] = ["127.0.0.1"]  # every attempt fails from now on
    for _ in range(2):
        assert runner.api("POST", f"/webhooks/{created.body['id']}/test").status == 202
    runner.deliver_webhooks()  # the first failures start its failing clock
    capsys.readouterr()

    # WebhookDisableAfterHours (120) later, both retries fail: the first disables it, the second finds it off
    now[0] += timedelta(hours=120)
    runner.deliver_webhooks()

    figures = emitted(capsys, stack)
    assert figures.values(Metric.WEBHOOK_ENDPOINTS_DISABLED) == [1]
    assert runner.api("GET", f"/webhooks/{created.body['id']}").status == 200
    assert queue_bodies_left(stack) == 0  # no retry queued for a disabled endpoint


def queue_bodies_left(stack: MotoStack) -> int:
    stack.release_delayed("WebhookDeliveryQueue", lambda _: True)
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.ref("WebhookDeliveryQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_delivery_message_naming_no_stored_event_is_counted_as_rejected(
    runner: LocalRunner, stack: MotoStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = StaticResolver({"hooks.example.com": ["93.184.216.34"]})
    monkeypatch.setattr(sender, "SystemResolver", lambda: resolver)
    created = runner.api("POST", "/webhooks", {"url": "https://hooks.example.com/genviral"})
    SECRETS.add(created.body["secret"].removeprefix("whsec_"))
    forged = {"webhook_id": created.body["id"], "event_id": "forged", "event_type": "post.account.posted"}
    attributes = {name: {"DataType": "String", "StringValue": value} for name, value in forged.items()}
    attributes["attempt"] = {"DataType": "Number", "StringValue": "1"}
    attributes["due_at"] = {"DataType": "String", "StringValue": format_ts(utc_now())}
    stack.client("sqs").send_message(
        QueueUrl=stack.ref("WebhookDeliveryQueue"), MessageBody="{}", MessageAttributes=attributes
    )
    capsys.readouterr()

    runner.deliver_webhooks()

    assert emitted(capsys, stack).values(Metric.WEBHOOK_MESSAGES_REJECTED) == [1]


def test_checks_held_up_in_the_queue_report_their_delay_and_a_copy_asks_genviral_nothing_more(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    post_id, _ = publishing_now(emulator)
    register(runner, post_id)
    # Two ticks queue the post (due every tick) while no worker takes anything.
    assert runner.tick()["enqueued"] == 1 + SYNC
    assert runner.tick()["enqueued"] == 1  # a warm poller: no sync
    calls_before = emulator.calls(post_id)
    capsys.readouterr()

    later = utc_now() + timedelta(minutes=4)
    monkeypatch.setattr(factories, "utc_now", lambda: later)  # the workers take the queue four minutes late
    assert runner.drain_work_queue().processed == 2 + SYNC

    figures = emitted(capsys, stack)
    assert emulator.calls(post_id) - calls_before == 1
    assert figures.values(Metric.CHECK_CLAIMS) == [1]  # a late check claims its post first
    (delay,) = figures.values(Metric.CHECK_DELAY)
    (age,) = figures.values(Metric.WORK_QUEUE_AGE)
    assert 239 <= age <= delay <= 241 + 5  # both copies' waits, the oldest reported
    assert (
        stack.client("sqs").get_queue_attributes(
            QueueUrl=stack.ref("WorkQueue"), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )


# ---------------------------------------------------------------- every alarm has a fault that sets it off

# The test above that produces each alarmed metric through the handlers and asserts it in their output.
ALARMED_METRIC_TESTS: dict[Metric, Callable[..., None]] = {
    Metric.POLLER_TICKS: test_a_tick_reports_checks_transitions_lag_and_publishing,
    Metric.CHECK_DELAY: test_checks_held_up_in_the_queue_report_their_delay_and_a_copy_asks_genviral_nothing_more,
    Metric.PENDING_OUTBOX_AGE: test_an_event_stuck_in_the_outbox_reports_its_age_at_each_check,
    Metric.PUBLISH_FAILURES: test_a_failed_publish_is_counted_and_kept,
    Metric.WEBHOOK_FAILING_AGE: test_a_failing_webhook_endpoint_reports_how_long_it_has_been_failing,
    Metric.WEBHOOK_MESSAGES_REJECTED: test_a_delivery_message_naming_no_stored_event_is_counted_as_rejected,
    Metric.WEBHOOK_ENDPOINTS_DISABLED: test_an_endpoint_failing_too_long_is_disabled_once_and_counted,
    Metric.DISCOVER_WINDOWS_UNSPLITTABLE: (
        discover_tests.test_more_than_a_page_of_posts_created_within_one_millisecond_is_reported
    ),
    **{param.values[1]: test_genviral_errors_are_counted_by_code for param in GENVIRAL_FAULTS},
}


def test_every_alarmed_metric_is_set_off_by_a_fault_here() -> None:
    assert alarmed_relay_metrics() <= set(ALARMED_METRIC_TESTS)
