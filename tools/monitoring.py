"""The alarms and the dashboard: the spec (ALARMS, DASHBOARD) and the generator that writes them into template.yaml.

Every alarm is one row of ALARMS with only what is its own; what all of them share (the notifications to
AlarmTopicArn on alarm and on recovery, the dimensions of a relay metric, of a function or of a queue, a dead-letter
queue's statistic and period) is written once, in the generator. The dashboard lists every alarm that always exists, in
ALARMS order, then the graphs of DASHBOARD two to a row.

`make monitoring` rewrites the section of template.yaml between `BEGIN` and `END`; tests/infra/test_monitoring.py
fails when it is stale. What it writes is plain CloudFormation in the template's own YAML style, so `sam deploy` reads
the template as it is, and the generator reads its output back and refuses to write anything that does not parse to
the resources it meant.

The spec lives here, not in the package: no function reads it, and its dataclasses would cost every cold start a few
milliseconds. It names template.yaml's logical ids, conditions and parameters; tests/infra/test_alarms.py checks it
against the template (every function and dead-letter queue alarmed) and the code (every `Metric` on a graph).
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NewType

import yaml

from genviral_relay.observability import METRICS_NAMESPACE, SERVICE, STACK_DIMENSION, WORKSPACE_DIMENSION, Metric
from local.template import TEMPLATE_PATH, parse_template

# ---------------------------------------------------------------------- the spec
TemplateParameter = NewType("TemplateParameter", str)
"""A number the deployer sets: the template parameter of that name."""


@dataclass(frozen=True)
class Figure:
    """One CloudWatch metric: one of the relay's (namespace GenviralRelay, dimensions `service` and `stack`), or an
    AWS one of a template resource (`resource`: a function's or a queue's logical id)."""

    name: str
    namespace: str = METRICS_NAMESPACE
    resource: str | None = None


def function_figure(function: str, name: Literal["Errors", "Throttles"]) -> Figure:
    return Figure(name, "AWS/Lambda", function)


def queue_figure(queue: str, name: str = "ApproximateNumberOfMessagesVisible") -> Figure:
    return Figure(name, "AWS/SQS", queue)


@dataclass(frozen=True)
class Alarm:
    """One alarm; every alarm notifies AlarmTopicArn (when given) on alarm and on recovery."""

    logical_id: str
    figure: Figure | Metric
    description: str  # what it means and what to do: the notification's text
    statistic: Literal["Sum", "Maximum"] = "Sum"
    period: int = 300
    evaluation_periods: int | TemplateParameter = 1
    datapoints_to_alarm: int | TemplateParameter | None = None
    threshold: int | TemplateParameter = 0
    comparison: Literal["GreaterThanThreshold", "LessThanThreshold"] = "GreaterThanThreshold"
    missing_data: Literal["notBreaching", "breaching", "ignore"] = "notBreaching"
    condition: str | None = None  # the template condition it exists under (then the dashboard cannot name it)
    in_minutes: str | None = None  # compare a seconds figure in minutes (metric math), under this label


def _dead_letters(queue: str, description: str, condition: str | None = None) -> Alarm:
    """As soon as the queue holds a message."""
    return Alarm(f"{queue}Alarm", queue_figure(queue), description, "Maximum", 60, condition=condition)


def _genviral_refusal(logical_id: str, metric: Metric, description: str) -> Alarm:
    """In alarm while a refusal came in the last three five-minute periods: calls pause five minutes at a time, so a
    key still refused shows once a pause, and the alarm does not turn OK between two of them."""
    return Alarm(logical_id, metric, description, evaluation_periods=3, datapoints_to_alarm=1)


_FUNCTION_FAILED = {
    "Poller": (
        "A poller tick failed (an error or a timeout): nothing was queued by it. Its log group has the error; the "
        "tick is also in PollerDLQ. The next tick starts afresh."
    ),
    "Worker": (
        "A worker invocation failed as a whole (a crash or a timeout): its batch returns to the work queue and is "
        "retried. Its log group has the error."
    ),
    "Api": (
        "An API request failed with an unhandled error: the caller got a 5xx from API Gateway. Its log group has "
        "the error."
    ),
    "WebhookDispatcher": (
        "A webhook dispatcher invocation failed as a whole: its events return to the fan-out queue and are fanned "
        "out again (after five receives, to WebhookDLQ). Its log group has the error."
    ),
    "WebhookDelivery": (
        "A webhook delivery invocation failed as a whole: its deliveries return to the delivery queue and are "
        "attempted again (after five receives, to WebhookDLQ). Its log group has the error."
    ),
}
_THROTTLED = (
    "Lambda throttled {function}: the account's concurrency is used up. Raise the account's concurrency limit or "
    "find the function that takes it; throttled ticks and checks are repaired by the next tick."
)

# In the order the dashboard's alarm widget lists them.
ALARMS: tuple[Alarm, ...] = (
    Alarm(
        "PollerSilenceAlarm",
        Metric.POLLER_TICKS,
        "No poller tick has completed for PollerSilenceAlarmMinutes: nothing is being checked. Look at the poller's "
        "errors and throttles, its log group and PollerDLQ, and whether the schedule is enabled.",
        period=60,
        evaluation_periods=TemplateParameter("PollerSilenceAlarmMinutes"),
        datapoints_to_alarm=TemplateParameter("PollerSilenceAlarmMinutes"),
        threshold=1,
        comparison="LessThanThreshold",
        missing_data="breaching",  # no data is silence
    ),
    _genviral_refusal(
        "GenviralUnauthorizedAlarm",
        Metric.GENVIRAL_ERRORS_401,
        "Genviral answered 401 twice, the second time with the secret read afresh: the key in GenviralSecretArn is "
        "invalid or revoked. Genviral calls pause five minutes at a time until it works again; nothing is lost, "
        "posts are checked once it does. Put a valid key in the secret.",
    ),
    _genviral_refusal(
        "GenviralSubscriptionAlarm",
        Metric.GENVIRAL_ERRORS_402,
        "Genviral answered 402 subscription_required: the workspace's plan does not include the Partner API. "
        "Genviral calls pause five minutes at a time until it does; nothing is lost. Renew or change the plan.",
    ),
    _genviral_refusal(
        "GenviralTierAlarm",
        Metric.GENVIRAL_ERRORS_403,
        "Genviral answered 403 tier_not_allowed: the plan's tier cannot use the Partner API. Genviral calls pause "
        "five minutes at a time until it can; nothing is lost. Move to a tier that includes the API.",
    ),
    _genviral_refusal(
        "GenviralSecretAlarm",
        Metric.SECRET_UNREADABLE,
        "The Genviral key could not be read from GenviralSecretArn: the secret is missing, the functions may not "
        'read it (or its KMS key), or it holds neither a key, JSON {"token": ...} nor a usable {"workspaces": {...}} '
        "(the worker's log names the problem). Genviral calls pause five minutes at a time until it can be read; "
        "nothing is lost.",
    ),
    Alarm(
        "PublishFailuresAlarm",
        Metric.PUBLISH_FAILURES,
        "Publishing to SNS or EventBridge failed in two five-minute periods in a row. Failures worth retrying stay "
        "in the outbox and are published again by the next checks, under the same ids; refused events go to "
        "EventsDLQ. The worker's 'Publish failed' lines give the target and the reason: check that the topic and "
        "the bus exist and that the functions may publish to them.",
        evaluation_periods=2,
        datapoints_to_alarm=2,
    ),
    Alarm(
        "PendingOutboxAlarm",
        Metric.PENDING_OUTBOX_AGE,
        "An event has waited in the outbox longer than PendingOutboxAlarmMinutes: its target keeps failing (see "
        "PublishFailuresAlarm and the 'Publish failed' lines). It is kept and published under its id once the "
        "target takes it; subscribers are late meanwhile.",
        "Maximum",
        threshold=TemplateParameter("PendingOutboxAlarmMinutes"),
        in_minutes="Oldest pending outbox entry (minutes)",
    ),
    Alarm(
        "CheckDelayAlarm",
        Metric.CHECK_DELAY,
        "Checks ran more than three minutes (three ticks at the default PollSchedule) after the poller first "
        "wanted them, three minutes in a row: the workers cannot keep up (a burst of posts due at once, or "
        "Genviral answering slowly), so transitions are reported that much later. Nothing is lost and no post is "
        "checked twice: the poller queues the most overdue posts first, no more than the workers took in the last "
        "tick (ChecksDeferred, LongestDeferral, WorkQueueBacklog on the 'Burst' graphs). If it lasts, look for "
        "Genviral errors and slow answers, or raise GenviralMaxConcurrency within Genviral's guidance.",
        "Maximum",
        period=60,
        evaluation_periods=3,
        datapoints_to_alarm=3,
        threshold=180,
    ),
    Alarm(
        "DiscoverMissedPostsAlarm",
        Metric.DISCOVER_WINDOWS_UNSPLITTABLE,
        "Discover mode found more than 100 posts created within one millisecond: Genviral's list cannot page "
        "through them, so posts beyond the first 100 may not be watched. The worker's 'More than a page of posts "
        "created within one millisecond' line gives the window; register the missing posts with POST /watches "
        "(genviral-relay watches add).",
    ),
    _dead_letters("EventsDLQ", "A target refused an event for good; it is parked in EventsDLQ with the reason."),
    _dead_letters(
        "WorkDLQ",
        "Check requests failed five times and were moved to WorkDLQ. The worker's log group says why ('Post check "
        "failed' or 'Not a check request'); once fixed, redrive WorkDLQ to the work queue. The posts stay due "
        "meanwhile: the next ticks check them again.",
    ),
    _dead_letters(
        "PollerDLQ",
        "A poller tick failed or was dropped and is parked in PollerDLQ. The next tick repairs a missed one; "
        "repeated ones mean the poller cannot read the table or send to the work queue (see its log group). Ticks "
        "need no redrive: delete the messages once understood.",
    ),
    _dead_letters(
        "FailureWebhookDLQ",
        "The failure webhook did not accept a failure event; it is parked in FailureWebhookDLQ.",
        condition="ForwardFailuresToWebhook",
    ),
    _dead_letters(
        "WebhookDLQ",
        "A webhook delivery ran out of retries (about 28 hours of them), or a webhook function failed on a message "
        "five times; it is parked in WebhookDLQ with the reason. Once the endpoint is fixed: genviral-relay "
        "redrive webhooks (same id, same body, a fresh signature).",
    ),
    Alarm(
        "WebhookFailingAlarm",
        Metric.WEBHOOK_FAILING_AGE,
        "A webhook endpoint has been failing for an hour: every attempt since then failed (an error status, no "
        "answer, or an address the rules refuse). Deliveries keep being retried on the schedule until "
        "WebhookDisableAfterHours disables the endpoint; GET /webhooks/{id} shows the last failure, and the "
        "delivery function's 'Webhook attempt failed' lines name the endpoint. Measured at every attempt and every "
        "15 minutes while a retry waits; it recovers with the next success.",
        "Maximum",
        threshold=60,
        missing_data="ignore",  # between two measures the endpoint is as it was
        in_minutes="Longest-failing webhook endpoint (minutes)",
    ),
    Alarm(
        "WebhookEndpointsDisabledAlarm",
        Metric.WEBHOOK_ENDPOINTS_DISABLED,
        "A webhook endpoint was disabled: every delivery to it failed for WebhookDisableAfterHours. Nothing more is "
        "queued for it; webhook.endpoint.disabled (SNS, EventBridge, GET /events) names it and why. Once it is "
        "fixed: genviral-relay webhooks enable <id> --resend-missed (POST /webhooks/{id}/enable) turns it on and "
        "resends what it missed; genviral-relay webhooks attempts <id> shows its last attempts.",
    ),
    Alarm(
        "WebhookMessagesRejectedAlarm",
        Metric.WEBHOOK_MESSAGES_REJECTED,
        "The webhook delivery function dropped a message that names no event the relay stored (or one of another "
        "type): it was never signed nor sent. The relay's own messages always name one (except a delivery of an "
        "event past EventRetentionDays); otherwise someone allowed to send to WebhookDeliveryQueue sent it. The "
        "delivery function's 'Webhook message names no stored event' lines give its ids; CloudTrail the sender.",
    ),
    *(
        alarm
        for function, failed in _FUNCTION_FAILED.items()
        for alarm in (
            Alarm(f"{function}ErrorsAlarm", function_figure(f"{function}Function", "Errors"), failed),
            Alarm(
                f"{function}ThrottlesAlarm",
                function_figure(f"{function}Function", "Throttles"),
                _THROTTLED.format(function=f"{function}Function"),
            ),
        )
    ),
)


@dataclass(frozen=True)
class Line:
    """One line of a graph: a figure (a bare `Metric` in a graph is one with no options), or metric math over the
    graph's lines with an `id`."""

    figure: Figure | Metric | None = None
    stat: str | None = None  # instead of the graph's
    label: str | None = None
    id: str | None = None
    visible: bool = True
    expression: str | None = None


@dataclass(frozen=True)
class Graph:
    """One time-series widget, every five minutes; widgets fill two columns below the widget of every alarm."""

    title: str
    lines: tuple[Line | Metric, ...]
    stat: str = "Sum"
    alarm_line: TemplateParameter | None = None  # a horizontal line at this threshold


def by_workspace(metric: Metric, line_id: str) -> Line:
    """One line per workspace of `metric` (its second series, with a `workspace` dimension: written only in a stack of
    several): a SEARCH, so a workspace added to the secret needs no deploy and costs no alarm."""
    dimensions = f"{METRICS_NAMESPACE},service,{STACK_DIMENSION},{WORKSPACE_DIMENSION}"
    query = f'{{{dimensions}}} MetricName="{metric.value}" {STACK_DIMENSION}="${{AWS::StackName}}"'
    return Line(expression=f"SEARCH('{query}', 'Sum', 300)", id=line_id)  # each series named by its workspace


DASHBOARD: tuple[Graph, ...] = (
    Graph(
        "Checks",
        (
            Metric.POLLER_TICKS,
            Metric.CHECKS_QUEUED,
            Metric.POSTS_CHECKED,
            Metric.POSTS_UNCHANGED,
            Metric.RETRY_SWEEP_CHECKS,
            Metric.BULK_REFRESH_CALLS,
            Metric.POSTS_REFRESHED,
        ),
    ),
    Graph(
        "Events detected",
        (
            Metric.TRANSITIONS_POSTED,
            Metric.TRANSITIONS_FAILED,
            Metric.DELIVERIES_DELAYED,
            Metric.URLS_RESOLVED,
            Metric.POSTS_COMPLETED,
            Metric.ACCOUNTS_DISCONNECTED,
            Metric.ACCOUNTS_RECONNECTED,
        ),
    ),
    Graph(
        "Detection lag (seconds)",
        (
            Line(Metric.DETECTION_LAG, stat="p50", label="p50"),
            Line(Metric.DETECTION_LAG, stat="p95", label="p95"),
            Line(Metric.DETECTION_LAG, stat="Maximum", label="max"),
        ),
        stat="p95",
    ),
    Graph(
        "Oldest pending outbox entry (minutes)",
        (
            Line(expression="age / 60", label="oldest pending entry", id="minutes"),
            Line(Metric.PENDING_OUTBOX_AGE, id="age", visible=False),
        ),
        stat="Maximum",
        alarm_line=TemplateParameter("PendingOutboxAlarmMinutes"),
    ),
    Graph(
        "Genviral errors by code",
        (
            Metric.GENVIRAL_ERRORS_401,
            Metric.GENVIRAL_ERRORS_402,
            Metric.GENVIRAL_ERRORS_403,
            Metric.GENVIRAL_ERRORS_429,
            Metric.GENVIRAL_ERRORS_5XX,
            Metric.GENVIRAL_ERRORS_UNREACHABLE,
            Metric.GENVIRAL_ERRORS_BAD_RESPONSE,
            Metric.GENVIRAL_ERRORS_CONTRACT,
            Metric.GENVIRAL_ERRORS_OTHER,
            Metric.SECRET_UNREADABLE,
            Metric.GENVIRAL_PAUSES,
            Metric.ACCOUNT_DIRECTORY_FAILURES,
        ),
    ),
    Graph(
        "Publishing",
        (Metric.EVENTS_PUBLISHED, Metric.PUBLISH_FAILURES, Metric.EVENTS_DEAD_LETTERED, Metric.OUTBOX_ENTRIES_EXPIRED),
    ),
    Graph(
        "By workspace (several workspaces only)",
        (
            by_workspace(Metric.POSTS_CHECKED, "checks"),
            by_workspace(Metric.CHECK_FAILURES, "failures"),
            by_workspace(Metric.TICKS_PAUSED, "paused"),
            by_workspace(Metric.GENVIRAL_ERRORS_401, "refused"),
        ),
    ),
    Graph(
        "Check outcomes",
        (
            Metric.POSTS_GONE,
            Metric.CHECK_CONFLICTS,
            Metric.CHECK_FAILURES,
            Metric.POISON_MESSAGES,
            Metric.DUPLICATE_CHECK_REQUESTS,
            Metric.TICKS_PAUSED,
            Metric.WORKSPACE_TICK_FAILURES,
            Metric.UNKNOWN_WORKSPACE_MESSAGES,
        ),
    ),
    Graph(
        "Function errors and throttles",
        tuple(
            Line(function_figure(f"{function}Function", name), label=f"{function} {name.lower()}")
            for function in _FUNCTION_FAILED
            for name in ("Errors", "Throttles")
        ),
    ),
    Graph(
        "Dead-letter queues (messages)",
        tuple(Line(queue_figure(queue), label=queue) for queue in ("EventsDLQ", "WorkDLQ", "PollerDLQ", "WebhookDLQ")),
        stat="Maximum",
    ),
    Graph(
        "Work queue backlog (age of the oldest check, seconds)",
        (Line(queue_figure("WorkQueue", "ApproximateAgeOfOldestMessage"), label="WorkQueue"),),
        stat="Maximum",
    ),
    Graph(
        "Webhooks",
        (
            Metric.WEBHOOK_DELIVERIES_QUEUED,
            Metric.WEBHOOK_DELIVERIES,
            Metric.WEBHOOK_DELIVERY_FAILURES,
            Metric.WEBHOOK_DELIVERIES_DEAD_LETTERED,
            Metric.WEBHOOK_MESSAGES_REJECTED,
            Metric.WEBHOOK_ENDPOINTS_DISABLED,
        ),
    ),
    Graph(
        "Longest-failing webhook endpoint (minutes)",
        (
            Line(expression="age / 60", label="failing for", id="minutes"),
            Line(Metric.WEBHOOK_FAILING_AGE, id="age", visible=False),
        ),
        stat="Maximum",
    ),
    Graph(
        "Burst: queueing and duplicates",
        (
            Metric.WORK_QUEUE_BACKLOG,
            Metric.CHECKS_DEFERRED,
            Metric.CHECK_CLAIMS,
            Metric.DUPLICATE_CHECKS_SKIPPED,
        ),
    ),
    Graph(
        "Burst: how long checks waited (seconds)",
        (
            Line(Metric.CHECK_DELAY, label="since first wanted"),
            Line(Metric.WORK_QUEUE_AGE, label="in the queue"),
            Line(Metric.LONGEST_DEFERRAL, label="longest deferral"),
        ),
        stat="Maximum",
    ),
    Graph(
        "Discover mode",
        (
            Metric.DISCOVER_LIST_CALLS,
            Metric.POSTS_DISCOVERED,
            Metric.POSTS_BASELINED,
            Metric.DISCOVER_WINDOWS_UNSPLITTABLE,
        ),
    ),
)


# ---------------------------------------------------------------------- the generator
REGENERATE = "make monitoring"
RULE = "  # " + "-" * 64
BEGIN = f"{RULE} observability: alarms (to AlarmTopicArn), dashboard"
NOTE = (
    f"  # Generated by `{REGENERATE}` from ALARMS and DASHBOARD in tools/monitoring.py: edit those, not this\n"
    "  # section (tests/infra/test_monitoring.py fails when it is stale)."
)
END = f"{RULE} end of the generated observability section"
DASHBOARD_ID = "RelayDashboard"

NOTIFY = {"Fn::If": ["NotifyAlarms", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
# The dimension CloudWatch gives an AWS metric of a template resource: its name, and the attribute that is its value
# (None: the resource's Ref).
RESOURCE_DIMENSIONS: dict[str, tuple[str, str | None]] = {
    "AWS/Lambda": ("FunctionName", None),
    "AWS/SQS": ("QueueName", "QueueName"),
}
# A seconds figure compared in minutes: the ids of the metric and of the expression, in the alarm and the graph.
SECONDS_ID, MINUTES_ID = "age", "minutes"
YAML_WIDTH, FOLDED_WIDTH = 120, 100  # the template's longest lines; where its folded descriptions wrap


# ---------------------------------------------------------------------- the resources
def _figure(figure: Figure | Metric) -> Figure:
    return figure if isinstance(figure, Figure) else Figure(figure)


def _number(value: int | str) -> int | dict[str, str]:
    """A literal, or (a str) the template parameter of that name."""
    return {"Ref": value} if isinstance(value, str) else value


def alarm_dimensions(figure: Figure) -> list[dict[str, Any]]:
    if figure.namespace == METRICS_NAMESPACE:
        return [{"Name": "service", "Value": SERVICE}, {"Name": STACK_DIMENSION, "Value": {"Ref": "AWS::StackName"}}]
    name, attribute = RESOURCE_DIMENSIONS[figure.namespace]
    value = {"Ref": figure.resource} if attribute is None else {"Fn::GetAtt": [figure.resource, attribute]}
    return [{"Name": name, "Value": value}]


def alarm_resource(alarm: Alarm) -> dict[str, Any]:
    figure = _figure(alarm.figure)
    metric = {"Namespace": figure.namespace, "MetricName": figure.name, "Dimensions": alarm_dimensions(figure)}
    properties: dict[str, Any] = {"AlarmDescription": alarm.description}
    if alarm.in_minutes is None:
        properties |= {**metric, "Statistic": alarm.statistic, "Period": alarm.period}
    else:
        stat = {"Metric": metric, "Period": alarm.period, "Stat": alarm.statistic}
        properties["Metrics"] = [
            {"Id": SECONDS_ID, "ReturnData": False, "MetricStat": stat},
            {"Id": MINUTES_ID, "Label": alarm.in_minutes, "Expression": f"{SECONDS_ID} / 60", "ReturnData": True},
        ]
    properties["EvaluationPeriods"] = _number(alarm.evaluation_periods)
    if alarm.datapoints_to_alarm is not None:
        properties["DatapointsToAlarm"] = _number(alarm.datapoints_to_alarm)
    properties |= {
        "Threshold": _number(alarm.threshold),
        "ComparisonOperator": alarm.comparison,
        "TreatMissingData": alarm.missing_data,
        "AlarmActions": NOTIFY,
        "OKActions": NOTIFY,
    }
    resource: dict[str, Any] = {"Type": "AWS::CloudWatch::Alarm"}
    if alarm.condition is not None:
        resource["Condition"] = alarm.condition
    resource["Properties"] = properties
    return resource


def dashboard_resource() -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            # Dashboards are global (their ARN has no region): the region keeps one stack name in two regions apart.
            "DashboardName": {"Fn::Sub": "${AWS::StackName}-${AWS::Region}"},
            "DashboardBody": {"Fn::Sub": dashboard_body()},
        },
    }


def resources() -> dict[str, dict[str, Any]]:
    """Logical id -> resource, in the order of the template: the alarms as ALARMS lists them, then the dashboard."""
    generated = {alarm.logical_id: alarm_resource(alarm) for alarm in ALARMS}
    if len(generated) != len(ALARMS) or DASHBOARD_ID in generated:
        raise ValueError("ALARMS names a logical id twice")
    return {**generated, DASHBOARD_ID: dashboard_resource()}


# ---------------------------------------------------------------------- the dashboard body (JSON in a !Sub)
def _pairs(**fields: Any) -> str:
    return ", ".join(f"{json.dumps(key)}: {json.dumps(value)}" for key, value in fields.items())


def _row(line: Line | Metric) -> list[Any]:
    line = line if isinstance(line, Line) else Line(line)
    options = {
        key: value
        for key, value in (
            ("expression", line.expression),
            ("stat", line.stat),
            ("label", line.label),
            ("id", line.id),
            ("visible", None if line.visible else False),
        )
        if value is not None
    }
    if line.figure is None:
        return [options]
    figure = _figure(line.figure)
    if figure.namespace == METRICS_NAMESPACE:
        dimensions = ["service", SERVICE, STACK_DIMENSION, "${AWS::StackName}"]
    else:
        name, attribute = RESOURCE_DIMENSIONS[figure.namespace]
        dimensions = [name, f"${{{figure.resource}{'' if attribute is None else '.' + attribute}}}"]
    return [figure.namespace, figure.name, *dimensions, *([options] if options else [])]


def _widget(kind: str, x: int, y: int, width: int, height: int, properties: list[str]) -> str:
    return "\n".join(
        [
            "    {",
            f"      {_pairs(type=kind, x=x, y=y, width=width, height=height)},",
            '      "properties": {',
            *(f"        {line}" for line in properties),
            "      }",
            "    }",
        ]
    )


def _list(key: str, items: list[str]) -> list[str]:
    if not items:
        raise ValueError(f"an empty {key} list")
    return [f'"{key}": [', *(f"  {item}," for item in items[:-1]), f"  {items[-1]}", "]"]


def _graph(graph: Graph, index: int) -> str:
    header = _pairs(title=graph.title, region="${AWS::Region}", view="timeSeries", stat=graph.stat, period=300)
    properties = [f"{header},", *_list("metrics", [json.dumps(_row(line)) for line in graph.lines])]
    if graph.alarm_line is not None:
        properties[-1] += ","
        threshold = f'[{{"label": "alarm", "value": ${{{graph.alarm_line}}}}}]'
        properties += ['"annotations": {', f'  "horizontal": {threshold}', "}"]
    return _widget("metric", 12 * (index % 2), 4 + 6 * (index // 2), 12, 6, properties)


def dashboard_body() -> str:
    always = [json.dumps(f"${{{alarm.logical_id}.Arn}}") for alarm in ALARMS if alarm.condition is None]
    widgets = [
        _widget("alarm", 0, 0, 24, 4, ['"title": "Alarms",', *_list("alarms", always)]),
        *(_graph(graph, index) for index, graph in enumerate(DASHBOARD)),
    ]
    body = '{\n  "widgets": [\n' + ",\n".join(widgets) + "\n  ]\n}\n"
    json.loads(re.sub(r"\$\{[^}]+\}", "0", body))  # valid JSON whatever the substitutions
    return body


# ---------------------------------------------------------------------- YAML, in the template's style
def _intrinsic(node: Any) -> str | None:
    """The short form of an intrinsic function, or None when `node` is no intrinsic."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    ((function, argument),) = node.items()
    if function == "Ref":
        return f"!Ref {argument}"
    if function == "Fn::GetAtt":
        return f"!GetAtt {'.'.join(argument)}"
    if function == "Fn::If":
        return f"!If {_flow(argument)}"
    if function == "Fn::Sub" and isinstance(argument, str) and "\n" not in argument:
        return f"!Sub {_plain(argument)}"
    return None


def _flow(node: Any) -> str:
    if isinstance(node, list):
        return "[" + ", ".join(_flow(item) for item in node) + "]"
    short = _intrinsic(node)
    if short is not None:
        return short
    if isinstance(node, str) and re.fullmatch(r"[A-Za-z0-9:]+", node):
        return node
    raise ValueError(f"no flow rendering for {node!r}")


def _plain(text: str) -> str:
    if text and text == text.strip() and "\n" not in text and yaml.safe_load(f"k: {text}") == {"k": text}:
        return text
    raise ValueError(f"{text!r} is no plain YAML scalar")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _plain(value)


def _entry(head: str, value: Any, indent: int) -> list[str]:
    """`head` (the key and its colon, indented) with its value, inline or below it at `indent + 2`."""
    inner = " " * (indent + 2)
    short = _intrinsic(value)
    if short is not None:
        return [f"{head} {short}"]
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:  # a multi-line !Sub: a literal block
        return [f"{head} !Sub |", *(f"{inner}{line}" if line else "" for line in value["Fn::Sub"].splitlines())]
    if isinstance(value, dict):
        return [head, *_mapping(value, indent + 2)]
    if isinstance(value, list):
        lines = [head]
        for item in value:
            item_lines = _mapping(item, indent + 4)
            lines += [f"{inner}- {item_lines[0].lstrip()}", *item_lines[1:]]
        return lines
    if isinstance(value, str) and len(f"{head} {value}") > YAML_WIDTH:
        wrapped = textwrap.wrap(value, FOLDED_WIDTH - len(inner), break_long_words=False, break_on_hyphens=False)
        return [f"{head} >-", *(f"{inner}{line}" for line in wrapped)]
    return [f"{head} {_scalar(value)}"]


def _mapping(mapping: Mapping[str, Any], indent: int) -> list[str]:
    return [line for key, value in mapping.items() for line in _entry(f"{' ' * indent}{key}:", value, indent)]


def section() -> str:
    """The generated part of template.yaml, from its BEGIN line to its END line."""
    blocks = ["\n".join(_mapping({logical_id: resource}, 2)) for logical_id, resource in resources().items()]
    return "\n".join([BEGIN, NOTE, "\n\n".join(blocks), "", END])


def with_monitoring(template: str) -> str:
    """The template with the section between BEGIN and END regenerated (and checked to read back as meant)."""
    pattern = re.compile(rf"^{re.escape(BEGIN)}\n(?:.*\n)*?{re.escape(END)}$", re.MULTILINE)
    generated = section()
    updated, count = pattern.subn(lambda _: generated, template)
    if count != 1:
        raise ValueError(f"template.yaml needs exactly one section from {BEGIN.strip()!r} to {END.strip()!r}")
    read_back = parse_template(updated)["Resources"]
    for logical_id, resource in resources().items():
        if read_back.get(logical_id) != resource:
            raise ValueError(f"{logical_id} does not read back as generated")
    return updated


# ---------------------------------------------------------------------- command line
def main() -> int:
    current = TEMPLATE_PATH.read_text()
    updated = with_monitoring(current)
    if updated != current:
        TEMPLATE_PATH.write_text(updated)
        print(f"wrote {TEMPLATE_PATH.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
