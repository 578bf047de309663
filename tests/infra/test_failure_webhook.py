"""The failure webhook in template.yaml: off by default, lint-clean either way, least privilege, no secret in the
template, and the rule's pattern is the published recipe."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.template import Resolver
from tests.infra.test_template import SAMPLE_PARAMETERS, TEMPLATE
from tests.infra.tooling import WEBHOOK_KEY_SECRET, WEBHOOK_URL, variant_findings

RECIPES = Path(__file__).resolve().parents[2] / "events" / "recipes"
RESOURCES = TEMPLATE["Resources"]
WEBHOOK_RESOURCES = sorted(
    logical_id for logical_id, resource in RESOURCES.items() if resource.get("Condition") == "ForwardFailuresToWebhook"
)
WEBHOOK_ON = {**SAMPLE_PARAMETERS, "FailureWebhookUrl": WEBHOOK_URL, "FailureWebhookApiKeySecret": WEBHOOK_KEY_SECRET}


def resolver(parameters: dict[str, str]) -> Resolver:
    return Resolver(TEMPLATE, parameters)


def test_the_webhook_is_a_complete_set_of_resources() -> None:
    assert {RESOURCES[logical_id]["Type"] for logical_id in WEBHOOK_RESOURCES} == {
        "AWS::Events::Connection",
        "AWS::Events::ApiDestination",
        "AWS::Events::Rule",
        "AWS::IAM::Role",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::CloudWatch::Alarm",
    }


@pytest.mark.parametrize(
    ("parameters", "enabled"),
    [
        (SAMPLE_PARAMETERS, False),
        (WEBHOOK_ON, True),
        ({**WEBHOOK_ON, "PublishTargets": "eventbridge"}, True),
        ({**WEBHOOK_ON, "PublishTargets": "sns"}, False),
    ],
)
def test_the_webhook_exists_only_with_a_url_and_the_bus(parameters: dict[str, str], enabled: bool) -> None:
    assert {resolver(parameters).resource_enabled(logical_id) for logical_id in WEBHOOK_RESOURCES} == {enabled}


@pytest.mark.parametrize(
    ("parameters", "refusals"),
    [
        (SAMPLE_PARAMETERS, []),
        (WEBHOOK_ON, []),
        ({**WEBHOOK_ON, "FailureWebhookApiKeySecret": ""}, ["needs FailureWebhookApiKeySecret"]),
        ({**WEBHOOK_ON, "PublishTargets": "sns"}, ["needs PublishTargets both or eventbridge"]),
    ],
)
def test_template_rules_refuse_a_webhook_without_key_or_bus(parameters: dict[str, str], refusals: list[str]) -> None:
    failed = resolver(parameters).failed_rule_assertions()
    assert len(failed) == len(refusals)
    for description, expected in zip(failed, refusals, strict=True):
        assert expected in description


def test_the_url_must_be_https_or_empty() -> None:
    pattern = re.compile(TEMPLATE["Parameters"]["FailureWebhookUrl"]["AllowedPattern"])
    assert TEMPLATE["Parameters"]["FailureWebhookUrl"]["Default"] == ""
    for accepted in ("", "https://hooks.example.com/genviral?team=ops"):
        assert pattern.fullmatch(accepted)
    for refused in ("http://hooks.example.com/genviral", "hooks.example.com", "https://"):
        assert not pattern.fullmatch(refused)


def test_cfn_lint_passes_with_the_webhook_switched_on() -> None:
    # The committed template lints with the webhook off (test_template.py); this is the other branch.
    for name in ("FailureWebhookUrl", "FailureWebhookApiKeySecret"):
        assert TEMPLATE["Parameters"][name]["Default"] == ""
    assert variant_findings("webhook") == []


def test_the_rules_pattern_is_the_published_recipe() -> None:
    recipe = json.loads((RECIPES / "eventbridge-rule-failures.json").read_text())
    rule = RESOURCES["FailureWebhookRule"]["Properties"]
    assert rule["EventPattern"] == recipe
    assert rule["EventBusName"] == {"Ref": "EventBus"}


def test_the_target_retries_for_a_day_then_parks_the_event() -> None:
    (target,) = RESOURCES["FailureWebhookRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["FailureWebhookDestination", "Arn"]}
    assert target["InputPath"] == "$.detail"
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["FailureWebhookDLQ", "Arn"]}}
    (statement,) = RESOURCES["FailureWebhookDLQPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["FailureWebhookRule", "Arn"]}}}
    alarmed = RESOURCES["FailureWebhookDLQAlarm"]["Properties"]["Dimensions"][0]["Value"]
    assert alarmed == {"Fn::GetAtt": ["FailureWebhookDLQ", "QueueName"]}


def test_the_role_may_only_invoke_this_destination() -> None:
    role = RESOURCES["FailureWebhookRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "events:InvokeApiDestination",
            "Resource": {"Fn::GetAtt": ["FailureWebhookDestination", "Arn"]},
        }
    ]


def test_the_key_is_read_from_secrets_manager_at_deploy_time_and_never_output() -> None:
    auth = RESOURCES["FailureWebhookConnection"]["Properties"]["AuthParameters"]["ApiKeyAuthParameters"]
    assert auth["ApiKeyName"] == {"Ref": "FailureWebhookApiKeyHeader"}
    assert auth["ApiKeyValue"] == {"Fn::Sub": "{{resolve:secretsmanager:${FailureWebhookApiKeySecret}}}"}
    outputs = json.dumps(TEMPLATE["Outputs"])
    assert "FailureWebhookApiKeySecret" not in outputs
    assert "FailureWebhookConnection" not in outputs


def test_outputs_name_what_a_consumer_needs() -> None:
    outputs: dict[str, Any] = TEMPLATE["Outputs"]
    assert outputs["FailureWebhookDLQUrl"]["Condition"] == "ForwardFailuresToWebhook"
    assert outputs["FailureWebhookDLQUrl"]["Value"] == {"Ref": "FailureWebhookDLQ"}
