"""The alarms and the dashboard of template.yaml (generated from the spec in tools/monitoring.py): valid with
and without an alarm topic, covering every function and dead-letter queue, and naming exactly the metrics the
code emits, with the dimensions Powertools writes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genviral_relay.observability import (
    METRICS_NAMESPACE,
    SERVICE,
    STACK_DIMENSION,
    Metric,
    emit,
    label_stack,
    metrics,
)
from local.template import NO_VALUE, Resolver, functions, load_template
from tests.infra.test_template import SAMPLE_PARAMETERS
from tests.infra.tooling import ALARM_TOPIC_ARN, variant_findings

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
ALARMS = {logical_id: r["Properties"] for logical_id, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
TOPIC = ALARM_TOPIC_ARN
STACK = "relay-test"
SOURCE = Path(__file__).resolve().parents[2] / "src" / "genviral_relay"


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches, each as {Namespace, MetricName, Dimensions} (metric math included)."""
    if "MetricName" in alarm:
        return [alarm]
    return [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if "MetricStat" in query]


def alarmed_relay_metrics(template: dict[str, Any] = TEMPLATE) -> set[str]:
    """Names of the relay's own metrics that some alarm watches."""
    return {
        stat["MetricName"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        for stat in metric_stats(resource["Properties"])
        if stat["Namespace"] == METRICS_NAMESPACE
    }


def resolver(**parameters: str) -> Resolver:
    """Every resource's Ref, Arn and QueueName made up, as a deployed stack would have them."""
    names = {logical_id: f"{STACK}-{logical_id}" for logical_id in RESOURCES}
    return Resolver(
        TEMPLATE,
        {**SAMPLE_PARAMETERS, **parameters},
        refs=names,
        attributes={
            **{(logical_id, "Arn"): f"arn:aws:test:::{name}" for logical_id, name in names.items()},
            **{(logical_id, "QueueName"): name for logical_id, name in names.items()},
        },
        pseudo={"AWS::Region": "eu-west-1", "AWS::StackName": STACK, "AWS::AccountId": "123456789012"},
    )


def relay_dimensions(stack: str = STACK) -> dict[str, str]:
    return {"service": SERVICE, STACK_DIMENSION: stack}


# ---------------------------------------------------------------- the template with and without a topic


def test_cfn_lint_passes_with_an_alarm_topic() -> None:
    assert TEMPLATE["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert variant_findings("alarm-topic") == []


def test_the_topic_parameter_accepts_only_an_sns_topic_or_nothing() -> None:
    pattern = re.compile(TEMPLATE["Parameters"]["AlarmTopicArn"]["AllowedPattern"])
    assert pattern.match("")
    assert pattern.match(TOPIC)
    assert not pattern.match("arn:aws:sqs:us-east-1:123456789012:queue")
    assert not pattern.match("relay-alarms")


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_every_alarm_notifies_the_topic_on_alarm_and_recovery_only_when_one_is_given(logical_id: str) -> None:
    alarm = ALARMS[logical_id]
    for actions in ("AlarmActions", "OKActions"):
        assert resolver(AlarmTopicArn=TOPIC).evaluate(alarm[actions]) == [TOPIC], f"{logical_id}.{actions}"
        assert resolver().evaluate(alarm[actions]) is NO_VALUE, f"{logical_id}.{actions} without a topic"


def test_each_function_has_an_errors_and_a_throttles_alarm() -> None:
    watched = {
        (stat["MetricName"], stat["Dimensions"][0]["Value"]["Ref"])
        for alarm in ALARMS.values()
        for stat in metric_stats(alarm)
        if stat["Namespace"] == "AWS/Lambda"
    }
    assert watched == {(metric, function) for function in functions(TEMPLATE) for metric in ("Errors", "Throttles")}


def test_every_dead_letter_queue_alarms_as_soon_as_it_holds_a_message() -> None:
    queues = {logical_id for logical_id, r in RESOURCES.items() if r["Type"] == "AWS::SQS::Queue"}
    dead_letter_queues = {logical_id for logical_id in queues if logical_id.endswith("DLQ")}
    assert dead_letter_queues >= {"WorkDLQ", "PollerDLQ", "EventsDLQ"}
    watched = set()
    for alarm in ALARMS.values():
        if alarm.get("Namespace") == "AWS/SQS":
            assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
            assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
            watched.add(alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0])
    assert watched == dead_letter_queues


# ---------------------------------------------------------------- the relay's metrics


def test_alarms_watch_genviral_refusals_publishing_the_outbox_the_poller_and_discovery() -> None:
    assert alarmed_relay_metrics() == {
        Metric.CHECK_DELAY,
        Metric.GENVIRAL_ERRORS_401,
        Metric.GENVIRAL_ERRORS_402,
        Metric.GENVIRAL_ERRORS_403,
        Metric.SECRET_UNREADABLE,
        Metric.PUBLISH_FAILURES,
        Metric.PENDING_OUTBOX_AGE,
        Metric.POLLER_TICKS,
        Metric.DISCOVER_WINDOWS_UNSPLITTABLE,
        Metric.WEBHOOK_FAILING_AGE,
        Metric.WEBHOOK_MESSAGES_REJECTED,  # a message naming no stored event: someone sent it, not the relay
        Metric.WEBHOOK_ENDPOINTS_DISABLED,  # an endpoint failed WebhookDisableAfterHours: turned off
    }


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_alarms_on_relay_metrics_name_emitted_metrics_with_the_stacks_dimensions(logical_id: str) -> None:
    for stat in metric_stats(ALARMS[logical_id]):
        if stat["Namespace"] != METRICS_NAMESPACE:
            assert stat["Namespace"].startswith("AWS/")
            continue
        assert stat["MetricName"] in set(Metric)
        dimensions = {d["Name"]: resolver().evaluate(d["Value"]) for d in stat["Dimensions"]}
        assert dimensions == relay_dimensions()


@pytest.fixture
def unlabelled_metrics() -> Iterator[None]:
    """The process's metrics without a stack label, before and after (the handlers' label is theirs)."""
    metrics.clear_default_dimensions()
    metrics.clear_metrics()
    yield
    metrics.clear_default_dimensions()
    metrics.clear_metrics()


@pytest.mark.usefixtures("unlabelled_metrics")
def test_the_dimensions_named_in_alarms_are_the_ones_powertools_writes() -> None:
    label_stack(STACK)
    emit(Metric.POLLER_TICKS)
    document = metrics.serialize_metric_set()
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    (dimension_names,) = directive["Dimensions"]
    assert {name: document[name] for name in dimension_names} == relay_dimensions()


def test_the_silence_alarm_counts_missing_ticks_as_silence() -> None:
    alarm = ALARMS["PollerSilenceAlarm"]
    assert alarm["MetricName"] == Metric.POLLER_TICKS
    assert alarm["TreatMissingData"] == "breaching"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == {"Ref": "PollerSilenceAlarmMinutes"}
    minutes = TEMPLATE["Parameters"]["PollerSilenceAlarmMinutes"]
    assert alarm["Period"] * minutes["MaxValue"] <= 86_400  # CloudWatch's limit on an alarm's evaluation range
    # A failing webhook endpoint is measured at each attempt and each hop, at most 15 minutes apart: between two
    # measures it is as it was, neither failing nor recovered.
    assert ALARMS["WebhookFailingAlarm"]["TreatMissingData"] == "ignore"
    others = {"PollerSilenceAlarm", "WebhookFailingAlarm"}
    assert all(a["TreatMissingData"] == "notBreaching" for i, a in ALARMS.items() if i not in others)


def test_the_code_adds_metrics_only_through_the_metric_names() -> None:
    adders = sorted(str(p.relative_to(SOURCE)) for p in SOURCE.rglob("*.py") if "add_metric(" in p.read_text())
    assert adders == ["observability.py"]


# ---------------------------------------------------------------- the dashboard


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    (body,) = [
        r["Properties"]["DashboardBody"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    parsed: dict[str, Any] = json.loads(resolver().evaluate(body))
    return parsed


def widget_metrics(dashboard: dict[str, Any]) -> list[list[Any]]:
    """Every metric row of every metric widget (expressions left out)."""
    return [
        row
        for widget in dashboard["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"]["metrics"]
        if isinstance(row[0], str)
    ]


def test_the_dashboard_shows_every_relay_metric_with_the_stacks_dimensions(dashboard: dict[str, Any]) -> None:
    shown = set()
    for row in widget_metrics(dashboard):
        namespace, name, *rest = row
        if namespace != METRICS_NAMESPACE:
            continue
        pairs = [item for item in rest if isinstance(item, str)]
        assert dict(zip(pairs[::2], pairs[1::2], strict=True)) == relay_dimensions(), row
        shown.add(name)
    assert shown == set(Metric)


def test_the_dashboard_shows_every_alarm_and_every_figure_an_alarm_watches(dashboard: dict[str, Any]) -> None:
    (alarm_widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    # An alarm that exists only under a condition (the optional webhook's) cannot be named by the dashboard
    always = [logical_id for logical_id in ALARMS if "Condition" not in RESOURCES[logical_id]]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"arn:aws:test:::{STACK}-{a}" for a in always)
    shown = {
        (row[0], row[1], tuple(item for item in row[2:] if isinstance(item, str))) for row in widget_metrics(dashboard)
    }
    for logical_id in always:
        for stat in metric_stats(ALARMS[logical_id]):
            dimensions = tuple(
                str(part) for d in stat["Dimensions"] for part in (d["Name"], resolver().evaluate(d["Value"]))
            )
            assert (stat["Namespace"], stat["MetricName"], dimensions) in shown, logical_id


def test_dashboard_widgets_are_in_the_region_of_the_stack_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for widget in dashboard["widgets"]:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "eu-west-1"
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not area & cells, widget["properties"].get("title")
        assert max(x for x, _ in area) < 24
        cells |= area


def test_the_check_delay_alarm_fires_when_checks_lag_three_ticks_for_three_minutes() -> None:
    alarm = ALARMS["CheckDelayAlarm"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == ("CheckDelay", "Maximum", 60)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["Threshold"]) == (3, 3, 180)
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
