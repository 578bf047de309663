"""template.yaml: valid under cfn-lint with the SAM transform, and in agreement with the code."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from genviral_relay.models.domain import PUBLISH_CHOICES
from local.template import Resolver, function_environment, functions, load_template
from tests.infra.tooling import SAMPLE_SECRET_ARN, commercial_regions, committed_findings, expand, variant_findings

TEMPLATE = load_template()
FUNCTIONS = functions(TEMPLATE)
SAMPLE_PARAMETERS = {"GenviralSecretArn": SAMPLE_SECRET_ARN}


def test_cfn_lint_with_the_sam_transform_passes_in_every_commercial_region() -> None:
    # One run over every region: a resource type some region lacks fails the default deploy there (E3006).
    regions = commercial_regions()
    assert {"us-east-1", "eu-west-1", "ca-west-1", "mx-central-1"} <= set(regions)
    assert not {region for region in regions if region.startswith(("cn-", "us-gov-", "us-iso", "eusc-"))}
    assert committed_findings() == []


def test_cfn_lint_catches_a_broken_reference() -> None:
    # Proves the lint expands the SAM resources: a bad reference inside a function's policy must fail it.
    reported = variant_findings("broken-reference")
    assert reported
    assert all("StateTablo" in line for line in reported)


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    """The template as CloudFormation sees it after the SAM transform (offline)."""
    return expand()


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_handler_named_in_the_template_imports(logical_id: str) -> None:
    module_path, _, name = FUNCTIONS[logical_id]["Properties"]["Handler"].rpartition(".")
    module = importlib.import_module(module_path)
    assert callable(getattr(module, name))
    assert issubclass(module.SETTINGS, BaseModel)


# Variables the template sets that no settings model reads, each with the reader. Lambda's own (AWS_REGION,
# AWS_LAMBDA_FUNCTION_NAME, ...) are set by the runtime, never by the template, so none of them is here.
READ_OUTSIDE_SETTINGS = {
    "POWERTOOLS_LOG_LEVEL": "Powertools' Logger reads it itself (observability.py)",
}


def settings_model(logical_id: str) -> type[BaseModel]:
    """The settings model a function's handler module declares as its SETTINGS."""
    model: type[BaseModel] = importlib.import_module(handler_module(logical_id)).SETTINGS
    return model


def handler_module(logical_id: str) -> str:
    return str(FUNCTIONS[logical_id]["Properties"]["Handler"]).rpartition(".")[0]


def variables_read(logical_id: str) -> set[str]:
    """The variables a function's settings model reads."""
    fields = settings_model(logical_id).model_fields
    assert all(field.alias for field in fields.values()), f"{logical_id}'s settings have a field without a variable"
    return {str(field.alias) for field in fields.values()}


def template_environment(logical_id: str) -> dict[str, str]:
    attributes = {(logical_id, "Arn"): f"{logical_id}-arn" for logical_id in TEMPLATE["Resources"]}
    return function_environment(
        Resolver(TEMPLATE, SAMPLE_PARAMETERS, refs=_fake_refs(), attributes=attributes), logical_id
    )


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_variable_a_handler_reads_is_set_by_the_template(logical_id: str) -> None:
    read, environment = variables_read(logical_id), template_environment(logical_id)
    assert read <= set(environment), f"{logical_id} reads {sorted(read - set(environment))} the template never sets"
    settings_model(logical_id).model_validate(environment)


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_variable_the_template_sets_is_read_by_the_handler(logical_id: str) -> None:
    unread = set(template_environment(logical_id)) - variables_read(logical_id) - set(READ_OUTSIDE_SETTINGS)
    assert not unread, f"the template sets {sorted(unread)} for {logical_id}, whose settings never read them"


def test_each_variable_read_outside_the_settings_is_set_by_the_template() -> None:
    """The exceptions above stay true: each is still set, and still read by no settings model."""
    for name in READ_OUTSIDE_SETTINGS:
        assert any(name in template_environment(logical_id) for logical_id in FUNCTIONS), name
        assert not any(name in variables_read(logical_id) for logical_id in FUNCTIONS), name


def _fake_refs() -> dict[str, str]:
    return {logical_id: f"{logical_id}-physical" for logical_id in TEMPLATE["Resources"]}


def test_only_settings_reads_the_environment() -> None:
    source = Path(__file__).resolve().parents[2] / "src" / "genviral_relay"
    readers = sorted(
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if "os.environ" in path.read_text() or "getenv" in path.read_text()
    )
    # The operations CLI is no function: it reads the same variables to find a deployment.
    assert readers == ["cli/deployment.py", "settings.py"]


def test_environment_values_come_from_the_templates_own_resources_and_parameters() -> None:
    for logical_id, function in FUNCTIONS.items():
        for name, value in function["Properties"].get("Environment", {}).get("Variables", {}).items():
            assert isinstance(value, dict), f"{logical_id}.{name} is a literal; reference a parameter or resource"


def test_every_route_requires_aws_iam(expanded: dict[str, Any]) -> None:
    methods = [
        (path, verb, operation)
        for resource in expanded["Resources"].values()
        if resource["Type"] == "AWS::ApiGateway::RestApi"
        for path, operations in resource["Properties"]["Body"]["paths"].items()
        for verb, operation in operations.items()
    ]
    routes = {(path, verb.upper()) for path, verb, _ in methods}
    assert routes == {
        ("/watches", "POST"),
        ("/watches/{post_id}", "GET"),
        ("/watches/{post_id}", "DELETE"),
        ("/watches/{post_id}/check", "POST"),
        ("/webhooks", "POST"),
        ("/webhooks", "GET"),
        ("/webhooks/{webhook_id}", "GET"),
        ("/webhooks/{webhook_id}", "DELETE"),
        ("/webhooks/{webhook_id}/attempts", "GET"),
        ("/webhooks/{webhook_id}/rotate-secret", "POST"),
        ("/webhooks/{webhook_id}/test", "POST"),
        ("/webhooks/{webhook_id}", "PATCH"),
        ("/webhooks/{webhook_id}/enable", "POST"),
        ("/webhooks/{webhook_id}/disable", "POST"),
        ("/webhooks/{webhook_id}/resend", "POST"),
        ("/events", "GET"),
        ("/events/{event_id}", "GET"),
    }
    for path, verb, operation in methods:
        assert operation.get("security") == [{"AWS_IAM": []}], f"{verb} {path} is not behind AWS_IAM"


SQS_FUNCTIONS = {
    "WorkerFunction": "WorkQueue",
    "WebhookDispatcherFunction": "WebhookFanoutQueue",
    "WebhookDeliveryFunction": "WebhookDeliveryQueue",
}


def test_worker_reports_partial_batch_failures_and_the_queue_redrives(expanded: dict[str, Any]) -> None:
    mappings = [r for r in expanded["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == len(SQS_FUNCTIONS)
    for mapping in mappings:
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    shared = TEMPLATE["Globals"]["Function"]["Timeout"]
    for function, queue_id in SQS_FUNCTIONS.items():
        queue = TEMPLATE["Resources"][queue_id]["Properties"]
        timeout = FUNCTIONS[function]["Properties"].get("Timeout", shared)
        assert queue["VisibilityTimeout"] >= 6 * timeout, queue_id
        assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10


def test_the_poller_interleaves_the_workspaces_by_the_workers_batch() -> None:
    """`HeldSends` sends a worker's batch at a time so that each batch holds several workspaces."""
    from genviral_relay.polling.workspace_queue import WORKER_BATCH

    assert FUNCTIONS["WorkerFunction"]["Properties"]["Events"]["Work"]["Properties"]["BatchSize"] == WORKER_BATCH


def test_every_function_has_a_log_group_with_retention() -> None:
    groups = [r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    named = {group["Properties"]["LogGroupName"]["Fn::Sub"] for group in groups}
    # and the API's access log group, when ApiAccessLogging is on (test_deploy.py)
    assert named == {f"/aws/lambda/${{{logical_id}}}" for logical_id in FUNCTIONS} | {
        "/aws/apigateway/${AWS::StackName}/access"
    }
    assert all(group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for group in groups)


def test_contract_parameters_and_outputs() -> None:
    parameters = TEMPLATE["Parameters"]
    assert {"GenviralSecretArn", "GenviralApiUrl", "PublishTargets", "PollSchedule"} <= set(parameters)
    assert parameters["GenviralApiUrl"]["Default"] == "https://www.genviral.io/api/partner/v1"
    assert parameters["PublishTargets"]["Default"] == "both"
    assert tuple(parameters["PublishTargets"]["AllowedValues"]) == PUBLISH_CHOICES == ("both", "sns", "eventbridge")
    assert parameters["PollSchedule"]["Default"] == "rate(1 minute)"
    assert {"EventsTopicArn", "EventBusName", "ApiUrl", "StateTableName", "WorkDLQUrl", "PollerDLQUrl"} <= set(
        TEMPLATE["Outputs"]
    )


def test_functions_run_on_arm64_and_a_current_python() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Runtime"] in {"python3.12", "python3.13", "python3.14"}
    assert function_globals["CodeUri"] == "src/"
    assert (Path(__file__).resolve().parents[2] / "src" / "requirements.txt").is_file()


def test_no_policy_grants_a_wildcard_resource(expanded: dict[str, Any]) -> None:
    for logical_id, resource in expanded["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in _unconditional(resource["Properties"].get("Policies", [])):
            for statement in policy["PolicyDocument"]["Statement"]:
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                assert "*" not in resources, f"{logical_id}/{policy['PolicyName']} grants Resource '*'"


def _unconditional(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each policy, with both branches of a conditional (`Fn::If`) one."""
    flat: list[dict[str, Any]] = []
    for policy in policies:
        if "Fn::If" in policy:
            flat.extend(branch for branch in policy["Fn::If"][1:] if "PolicyDocument" in branch)
        else:
            flat.append(policy)
    return flat
