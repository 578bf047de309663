"""The deployment settings the CLI reads, where each comes from, and the options that give them.

Each value comes from, in this order: its command-line option; the outputs and parameters of the
CloudFormation stack named by `--stack-name`; the environment variable the functions read
(`settings.py`). Each command declares the settings it reads (its `*_READS`, built from the building
blocks' below): those, and only those, are its options (`cli/deployment.py` resolves them).
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genviral_relay.models.domain import PUBLISH_CHOICES
from genviral_relay.settings import CheckerSettings, PollerSettings

STACK_ENV = "GENVIRAL_RELAY_STACK"


def _env(model: type[CheckerSettings | PollerSettings], field: str) -> str:
    """The variable a function reads for `field`: named once, in settings.py."""
    alias = model.model_fields[field].alias
    assert alias is not None
    return alias


@dataclass(frozen=True)
class Setting:
    key: str
    env: str
    what: str
    option: str | None = None
    output: str | None = None
    parameter: str | None = None


SETTINGS = (
    Setting("table", _env(CheckerSettings, "table_name"), "the DynamoDB state table", "--table", "StateTableName"),
    Setting("topic_arn", _env(CheckerSettings, "topic_arn"), "the SNS topic", "--topic-arn", "EventsTopicArn"),
    Setting("event_bus", _env(CheckerSettings, "event_bus_name"), "the event bus", "--event-bus", "EventBusName"),
    Setting(
        "work_queue_url", _env(PollerSettings, "work_queue_url"), "the work queue", "--work-queue-url", "WorkQueueUrl"
    ),
    Setting("work_dlq_url", "WORK_DLQ_URL", "the work dead-letter queue", "--work-dlq-url", "WorkDLQUrl"),
    Setting(
        "events_dlq_url",
        _env(CheckerSettings, "events_dlq_url"),
        "the events dead-letter queue",
        "--events-dlq-url",
        "EventsDLQUrl",
    ),
    Setting("poller_dlq_url", "POLLER_DLQ_URL", "the poller dead-letter queue", "--poller-dlq-url", "PollerDLQUrl"),
    Setting("poller_function", "POLLER_FUNCTION_NAME", "the poller function", "--poller-function"),
    # shim: failure-webhook (docs/compatibility.md)
    Setting(
        "webhook_dlq_url",
        "FAILURE_WEBHOOK_DLQ_URL",
        "the failure webhook's dead-letter queue",
        "--webhook-dlq-url",
        "FailureWebhookDLQUrl",
    ),
    Setting(
        "webhook_url", "FAILURE_WEBHOOK_URL", "the failure webhook", "--webhook-url", parameter="FailureWebhookUrl"
    ),
    Setting(
        "webhook_key_secret",
        "FAILURE_WEBHOOK_API_KEY_SECRET",
        "the failure webhook key's secret",
        "--webhook-key-secret",
        parameter="FailureWebhookApiKeySecret",
    ),
    Setting(
        "webhook_key_header",
        "FAILURE_WEBHOOK_API_KEY_HEADER",
        "the failure webhook key's header",
        "--webhook-key-header",
        parameter="FailureWebhookApiKeyHeader",
    ),
    Setting(
        "webhooks_dlq_url",
        "WEBHOOKS_DLQ_URL",  # not WEBHOOK_DLQ_URL: the failure webhook's --webhook-dlq-url shows that name
        "the webhooks' dead-letter queue",
        "--webhooks-dlq-url",
        "WebhookDLQUrl",
    ),
    Setting(
        "webhook_delivery_queue_url",
        "WEBHOOK_DELIVERY_QUEUE_URL",
        "the webhook delivery queue",
        "--webhook-delivery-queue-url",
        "WebhookDeliveryQueueUrl",
    ),
    Setting(
        "webhook_fanout_queue_url",
        _env(CheckerSettings, "webhook_fanout_queue_url"),
        "the webhooks' fan-out queue",
        "--webhook-fanout-queue-url",
        "WebhookFanoutQueueUrl",
    ),
    Setting(
        "secret_arn",
        _env(CheckerSettings, "genviral_secret_arn"),
        "the Genviral key's secret",
        "--secret-arn",
        parameter="GenviralSecretArn",
    ),
    Setting(
        "api_url",
        _env(CheckerSettings, "genviral_api_url"),
        "the Genviral API URL",
        "--api-url",
        parameter="GenviralApiUrl",
    ),
    Setting(
        "publish_targets",
        _env(CheckerSettings, "publish_targets"),
        "the publish targets",
        "--publish-targets",
        parameter="PublishTargets",
    ),
    Setting("poll_schedule", _env(CheckerSettings, "poll_schedule"), "the poll schedule", parameter="PollSchedule"),
    Setting(
        "failed_retry_window_hours",
        _env(CheckerSettings, "failed_retry_window_hours"),
        "the retry window",
        parameter="FailedRetryWindowHours",
    ),
    Setting(
        "delayed_after_minutes",
        _env(CheckerSettings, "delayed_after_minutes"),
        "the delayed-delivery threshold",
        parameter="DelayedAfterMinutes",
    ),
    Setting(
        "event_retention_days",
        _env(CheckerSettings, "event_retention_days"),
        "the event retention",
        parameter="EventRetentionDays",
    ),
)
BY_KEY = {setting.key: setting for setting in SETTINGS}


# What each building block of `Deployment` reads: commands declare their settings from these
# (cli/main.py lists them in the command's --help; the CLI tests check them against what a run reads).
STORE_READS = ("table", "event_retention_days")
POLICY_READS = ("poll_schedule", "failed_retry_window_hours", "delayed_after_minutes")
GENVIRAL_READS = ("api_url", "secret_arn")
TARGETS_READS = ("publish_targets", "topic_arn", "event_bus")
CHECKER_READS = (
    *TARGETS_READS, *STORE_READS, *GENVIRAL_READS, "events_dlq_url", *POLICY_READS, "webhook_fanout_queue_url"
)  # fmt: skip
"""`relay()`: its targets and their destinations, the store, Genviral, the events DLQ, the policy, and the
webhooks' fan-out queue (events a check finds are owed to the webhooks too, as in the functions)."""
LOCATION_OPTIONS = {"stack_name": "--stack-name", "region": "--region", "profile": "--profile"}
"""Where the deployment is: every command that works on one takes these."""


def setting_options(reads: Sequence[str]) -> dict[str, str]:
    """The options of these settings, by key (a setting without an option is read from the stack or environment)."""
    return {key: option for key in reads if (option := BY_KEY[key].option) is not None}


def add_deployment_options(
    parser: argparse.ArgumentParser, reads: Sequence[str], *, default: Any = None, hidden: bool = False
) -> None:
    """The options locating the deployment, and those of the settings in `reads` only.

    `default`: `argparse.SUPPRESS` on a command's copy, so an option the command line does not repeat
    after the command keeps the value given before it (a subparser's default would overwrite it).
    `hidden`: the settings' options accepted but not listed (the root parser takes every command's).
    """
    settings = [BY_KEY[key] for key in dict.fromkeys(reads)]  # KeyError for a key that is no setting
    description = (
        "Where the relay runs. Each value: its option, else the outputs and parameters of --stack-name, "
        "else the environment variable the functions read (shown in brackets)."
    )
    without_option = [setting for setting in settings if setting.option is None]
    if without_option:
        listed = ", ".join(f"{setting.what} [{setting.env}]" for setting in without_option)
        description += f" Also read from the stack or the environment: {listed}."
    group = parser.add_argument_group("deployment", None if hidden else textwrap.fill(description, width=100))

    def shown(text: str) -> str:
        return argparse.SUPPRESS if hidden else text

    group.add_argument(
        "--stack-name", metavar="NAME", default=default, help=f"the CloudFormation stack of the relay [{STACK_ENV}]"
    )
    group.add_argument("--region", default=default, help="AWS region [AWS_REGION, AWS_DEFAULT_REGION]")
    group.add_argument("--profile", default=default, help="AWS named profile [AWS_PROFILE]")
    for setting in settings:
        if setting.option is None:
            continue
        choices = PUBLISH_CHOICES if setting.key == "publish_targets" else None
        group.add_argument(
            setting.option,
            dest=setting.key,
            choices=choices,
            default=default,
            help=shown(f"{setting.what} [{setting.env}]"),
        )
