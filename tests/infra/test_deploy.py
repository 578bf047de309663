"""template.yaml is ready for a real AWS account: checked on the template as CloudFormation receives it (after the
SAM transform). Several stacks side by side (in one region, and one stack name in two regions), every commercial
region, one throttled API stage, the secret and its KMS key, least privilege, the first deploy's ordering, API
access logs."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genviral_relay.api.errors import ROUTES
from local.template import NO_VALUE, Resolver, function_environment
from tests.infra.test_template import FUNCTIONS, SAMPLE_PARAMETERS, TEMPLATE
from tests.infra.tooling import (
    SAMPLE_KMS_KEY_ARN,
    SAMPLE_SECRET_ARN,
    commercial_regions,
    expand,
    regions_without,
    variant_findings,
)
from tools.event_schema import DETAIL_TYPES
from tools.monitoring import DASHBOARD_ID
from tools.monitoring import resources as generated_resources

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    return expand()


class _Named(dict[Any, str]):
    """A resolver's refs or attributes that name whatever is asked: `X`, or `X.Attribute`."""

    def __missing__(self, key: Any) -> str:
        return ".".join(key) if isinstance(key, tuple) else str(key)


def symbolic(template: dict[str, Any], **parameters: str) -> Resolver:
    """Evaluates the template with every resource's Ref as its logical id and every GetAtt as `X.Attribute`."""
    return Resolver(template, {**SAMPLE_PARAMETERS, **parameters}, refs=_Named(), attributes=_Named())


def references(node: Any) -> set[str]:
    """Every logical id or parameter a piece of template refers to (Ref, GetAtt, Sub), conditions aside."""
    if isinstance(node, list):
        return set().union(*map(references, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    if set(node) == {"Ref"}:
        return {node["Ref"]}
    if set(node) == {"Fn::GetAtt"}:
        target = node["Fn::GetAtt"]
        return {target[0] if isinstance(target, list) else target.split(".")[0]}
    if set(node) == {"Fn::Sub"}:
        text, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        named = {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)} - set(variables)
        return {name for name in named if not name.startswith("AWS::")} | references(variables)
    if set(node) == {"Fn::If"}:
        return references(node["Fn::If"][1:])
    return set().union(*map(references, node.values())) if node else set()


def dependencies(template: dict[str, Any], logical_id: str) -> set[str]:
    """Every resource CloudFormation creates before this one: its references and DependsOn, transitively."""
    resources = template["Resources"]
    found: set[str] = set()
    waiting = [logical_id]
    while waiting:
        resource = resources[waiting.pop()]
        depends_on = resource.get("DependsOn", [])
        direct = references(resource.get("Properties", {})) | set(
            [depends_on] if isinstance(depends_on, str) else depends_on
        )
        for needed in (direct & set(resources)) - found:
            found.add(needed)
            waiting.append(needed)
    return found


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {logical_id: r for logical_id, r in template["Resources"].items() if r["Type"] == resource_type}


# ---------------------------------------------------------------- 1, 7: stacks side by side
# The property that names each resource type the transform yields, for the types whose names are unique in a
# region (or, ACCOUNT_WIDE, in the whole account). Without the property, CloudFormation makes a unique name.
NAME_PROPERTIES = {
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Events::Connection": "Name",
    "AWS::Events::ApiDestination": "Name",
    "AWS::EventSchemas::Registry": "RegistryName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Lambda::Function": "FunctionName",
}
ACCOUNT_WIDE = {"AWS::CloudWatch::Dashboard", "AWS::IAM::Role"}
# Types with no name that is unique in a region: named within a parent, or not named at all.
NOT_NAMED_IN_THE_REGION = {
    "AWS::EventSchemas::Schema",  # SchemaName, within the stack's registry
    "AWS::ApiGateway::Stage",  # StageName, within the stack's API
    "AWS::ApiGateway::RestApi",  # Name, not unique: an API is known by its id
    "AWS::ApiGateway::Deployment",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::SQS::QueuePolicy",
    "AWS::KMS::Key",  # known by its id (an alias would be the name; the stack makes none)
}
DEPLOYS = [("relay", "us-east-1"), ("relay-b", "us-east-1"), ("relay", "eu-west-1")]


def explicit_names(template: dict[str, Any], stack: str, region: str) -> Iterator[tuple[str, str, str, str]]:
    """(logical id, type, scope, name) of each resource the template names itself, as deployed as `stack` in
    `region`; the resources it refers to have the unique physical ids CloudFormation gives them."""

    def physical(logical_id: str) -> str:
        return f"{stack}-{logical_id}-{hashlib.sha256(f'{stack}/{region}/{logical_id}'.encode()).hexdigest()[:12]}"

    resolver = Resolver(
        template,
        SAMPLE_PARAMETERS,
        refs={logical_id: physical(logical_id) for logical_id in template["Resources"]},
        pseudo={
            "AWS::StackName": stack,
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    for logical_id, resource in template["Resources"].items():
        name = resource.get("Properties", {}).get(NAME_PROPERTIES.get(resource["Type"], ""))
        if name is not None:
            scope = "account" if resource["Type"] in ACCOUNT_WIDE else region
            yield logical_id, resource["Type"], scope, str(resolver.evaluate(name))


def test_every_resource_type_is_known_to_be_named_or_not(expanded: dict[str, Any]) -> None:
    types = {resource["Type"] for resource in expanded["Resources"].values()}
    unknown = types - set(NAME_PROPERTIES) - NOT_NAMED_IN_THE_REGION
    assert not unknown, f"say whether {sorted(unknown)} have names unique in a region or account"


def test_two_stacks_in_one_region_and_one_stack_in_two_regions_share_no_name(expanded: dict[str, Any]) -> None:
    deployed = {deploy: list(explicit_names(expanded, *deploy)) for deploy in DEPLOYS}
    assert any(t == "AWS::Logs::LogGroup" for _, t, _, _ in deployed[DEPLOYS[0]])  # the check sees names
    for index, first in enumerate(DEPLOYS):
        for second in DEPLOYS[index + 1 :]:
            taken = {(t, scope, name): logical_id for logical_id, t, scope, name in deployed[first]}
            clashes = [
                f"{taken[(t, scope, name)]} and {logical_id} are both {t} {name!r}"
                for logical_id, t, scope, name in deployed[second]
                if (t, scope, name) in taken
            ]
            assert not clashes, f"stacks {first} and {second}: {clashes}"


def test_the_schedule_is_named_by_cloudformation(expanded: dict[str, Any]) -> None:
    (schedule,) = of_type(expanded, "AWS::Scheduler::Schedule").values()
    assert "Name" not in schedule["Properties"]


def test_the_dashboard_name_has_the_stack_and_the_region() -> None:
    # Dashboards are account-wide (their ARN has no region); the spec in tools/monitoring.py names it.
    name = generated_resources()[DASHBOARD_ID]["Properties"]["DashboardName"]
    assert name == {"Fn::Sub": "${AWS::StackName}-${AWS::Region}"}
    assert TEMPLATE["Resources"][DASHBOARD_ID]["Properties"]["DashboardName"] == name
    assert references(TEMPLATE["Outputs"]["DashboardUrl"]["Value"]) == {"RelayDashboard"}


# ---------------------------------------------------------------- 2: every commercial region
REGISTRY_TYPES = ("AWS::EventSchemas::Registry", "AWS::EventSchemas::Schema")


def test_the_registry_is_left_out_exactly_where_event_schemas_do_not_exist() -> None:
    lacking = regions_without(REGISTRY_TYPES[0]) | regions_without(REGISTRY_TYPES[1])
    assert "ca-west-1" in lacking
    assert "us-east-1" not in lacking
    registry = [logical_id for logical_id, r in TEMPLATE["Resources"].items() if r["Type"] in REGISTRY_TYPES]
    assert len(registry) == 1 + len(DETAIL_TYPES)  # the registry and a schema per published detail-type
    for region in commercial_regions():
        resolver = Resolver(TEMPLATE, SAMPLE_PARAMETERS, pseudo={"AWS::Region": region})
        assert resolver.condition("SchemaRegistryInRegion") == (region not in lacking), region
        for logical_id in registry:
            assert resolver.resource_enabled(logical_id) == (region not in lacking), f"{logical_id} in {region}"
        assert resolver.resource_enabled("EventBus"), f"the bus in {region}"
    eventbridge_off = Resolver(TEMPLATE, {**SAMPLE_PARAMETERS, "PublishTargets": "sns"})
    assert not any(eventbridge_off.resource_enabled(logical_id) for logical_id in registry)


@pytest.mark.parametrize("targets", ["both", "sns", "eventbridge"])
def test_every_output_exists_only_with_the_resources_it_names(targets: str) -> None:
    for region in commercial_regions():
        resolver = Resolver(TEMPLATE, {**SAMPLE_PARAMETERS, "PublishTargets": targets}, pseudo={"AWS::Region": region})
        for name, output in TEMPLATE["Outputs"].items():
            if "Condition" in output and not resolver.condition(output["Condition"]):
                continue
            for needed in references(output["Value"]) & set(TEMPLATE["Resources"]):
                assert resolver.resource_enabled(needed), f"output {name} names {needed}, absent in {region}"


def test_only_the_webhook_is_exempt_from_the_region_check() -> None:
    # The webhook is off by default; switched on where API destinations do not exist, CloudFormation refuses the
    # template before creating anything. Nothing else may hide a missing resource type.
    exempt = {
        logical_id: resource
        for logical_id, resource in TEMPLATE["Resources"].items()
        if "cfn-lint" in resource.get("Metadata", {})
    }
    assert set(exempt) == {"FailureWebhookConnection", "FailureWebhookDestination"}
    for resource in exempt.values():
        assert resource["Metadata"]["cfn-lint"] == {"config": {"ignore_checks": ["E3006"]}}
        assert resource["Condition"] == "ForwardFailuresToWebhook"
    assert not Resolver(TEMPLATE, SAMPLE_PARAMETERS).condition("ForwardFailuresToWebhook")


# ---------------------------------------------------------------- 3: one API stage
def test_the_api_has_exactly_one_stage_v1_with_the_throttling(expanded: dict[str, Any]) -> None:
    (stage,) = of_type(expanded, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == "v1"
    assert stage["Properties"]["MethodSettings"] == [
        {"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingBurstLimit": 20, "ThrottlingRateLimit": 10}
    ]
    # A deployment with a StageName makes a stage of its own (SAM's implicit "Stage", without the throttling).
    deployments = of_type(expanded, "AWS::ApiGateway::Deployment").values()
    assert [d["Properties"].get("StageName") for d in deployments] == [None]
    assert TEMPLATE["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"].endswith("/v1")


# ---------------------------------------------------------------- 5: the secret and its KMS key
def test_api_gateway_invokes_the_function_under_its_resource_policy_not_the_callers_credentials(
    expanded: dict[str, Any],
) -> None:
    # With the caller's credentials a caller would need lambda:InvokeFunction too, and a caller with a role
    # (Lambda, ECS, SSO) could not call at all: the integration's credentials would be arn:aws:iam::*:user/*.
    (api,) = [r for r in expanded["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    integrations = [
        operation["x-amazon-apigateway-integration"]
        for operations in api["Properties"]["Body"]["paths"].values()
        for operation in operations.values()
    ]
    routes = sum(len(methods) for methods in ROUTES.values())  # one integration and permission each
    assert len(integrations) == routes
    assert [integration.get("credentials") for integration in integrations] == [None] * routes
    permissions = [r for r in expanded["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"]
    assert {p["Properties"]["Principal"] for p in permissions} == {"apigateway.amazonaws.com"}
    assert len(permissions) == routes


def test_the_secret_parameter_takes_only_a_full_arn() -> None:
    # The policy grants exactly this ARN; IAM never matches a partial ARN (no -XXXXXX suffix) to the secret.
    pattern = re.compile(TEMPLATE["Parameters"]["GenviralSecretArn"]["AllowedPattern"])
    for full in (
        SAMPLE_SECRET_ARN,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:genviral-relay/token-a1B2c3",
        "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:genviral-Zz9Zz9",
    ):
        assert pattern.fullmatch(full), full
    for partial in (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:genviral",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:genviral-relay/token",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:genviral-AbCdE",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:-AbCdEf",
        "genviral-AbCdEf",
    ):
        assert not pattern.fullmatch(partial), partial


def secret_readers() -> set[str]:
    """The functions whose code reads the Genviral secret (they get its ARN)."""
    resolver = Resolver(TEMPLATE, SAMPLE_PARAMETERS, refs=_Named(), attributes=_Named())
    return {
        logical_id for logical_id in FUNCTIONS if "GENVIRAL_SECRET_ARN" in function_environment(resolver, logical_id)
    }


def role_of(template: dict[str, Any], function: str) -> str:
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"]
    return str(role[0])


def statements(template: dict[str, Any], role: str, **parameters: str) -> list[dict[str, Any]]:
    """The role's inline statements as deployed with these parameters (Refs as logical ids, GetAtts as X.Attr)."""
    policies = symbolic(template, **parameters).evaluate(template["Resources"][role]["Properties"].get("Policies", []))
    found: list[dict[str, Any]] = []
    for policy in policies:
        statement = policy["PolicyDocument"]["Statement"]
        found.extend(statement if isinstance(statement, list) else [statement])
    return found


def grants(template: dict[str, Any], role: str, **parameters: str) -> set[tuple[str, str]]:
    """Each (action, resource) the role's inline policies allow."""
    pairs: set[tuple[str, str]] = set()
    for statement in statements(template, role, **parameters):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs.update((action, resource) for action in actions for resource in resources)
    return pairs


def test_the_secret_readers_get_the_secret_and_nothing_else_does(expanded: dict[str, Any]) -> None:
    assert secret_readers() == {"WorkerFunction", "ApiFunction"}
    for function in FUNCTIONS:
        read = {r for a, r in grants(expanded, role_of(expanded, function)) if a.startswith("secretsmanager:")}
        assert read == ({SAMPLE_SECRET_ARN} if function in secret_readers() else set()), function


def test_no_kms_grant_without_a_key(expanded: dict[str, Any]) -> None:
    # The webhook signing secrets' key (WebhookSecretsKey) aside, pinned in ROLE_GRANTS
    assert TEMPLATE["Parameters"]["GenviralSecretKmsKeyArn"]["Default"] == ""
    for role in of_type(expanded, "AWS::IAM::Role"):
        kms = [a for a, r in grants(expanded, role) if a.startswith("kms:") and r != WEBHOOK_KEY]
        assert not kms, role


def test_a_kms_key_lets_exactly_the_secret_readers_decrypt_through_secrets_manager(expanded: dict[str, Any]) -> None:
    with_key = {"GenviralSecretKmsKeyArn": SAMPLE_KMS_KEY_ARN}
    decrypting = {
        function
        for function in FUNCTIONS
        if any(
            a.startswith("kms:") and r == SAMPLE_KMS_KEY_ARN
            for a, r in grants(expanded, role_of(expanded, function), **with_key)
        )
    }
    assert decrypting == secret_readers()
    for function in decrypting:
        (statement,) = [
            s
            for s in statements(expanded, role_of(expanded, function), **with_key)
            if s["Action"] == "kms:Decrypt" and s["Resource"] == SAMPLE_KMS_KEY_ARN
        ]
        assert statement["Resource"] == SAMPLE_KMS_KEY_ARN
        assert statement["Condition"] == {
            "StringEquals": {
                "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                "kms:EncryptionContext:SecretARN": SAMPLE_SECRET_ARN,
            }
        }
    assert variant_findings("kms-key") == []


def test_the_kms_parameter_takes_a_key_arn_or_nothing() -> None:
    pattern = re.compile(TEMPLATE["Parameters"]["GenviralSecretKmsKeyArn"]["AllowedPattern"])
    for accepted in ("", SAMPLE_KMS_KEY_ARN, "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234"):
        assert pattern.fullmatch(accepted), accepted
    for refused in (
        "arn:aws:kms:us-east-1:123456789012:alias/genviral",  # IAM grants key use on key ARNs, not aliases
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "alias/aws/secretsmanager",
    ):
        assert not pattern.fullmatch(refused), refused


# ---------------------------------------------------------------- 6: least privilege
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
SQS_EVENT_SOURCE = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
TABLE, DUE_INDEX, CREATED_INDEX = "StateTable.Arn", "StateTable.Arn/index/due", "StateTable.Arn/index/created"
EVENTS_INDEX = "StateTable.Arn/index/events"
WEBHOOK_KEY = "WebhookSecretsKey.Arn"
PUBLISHING = {("sns:Publish", "EventsTopic"), ("events:PutEvents", "EventBus.Arn")}
# What each role may do, from the calls each function's code path makes (src/genviral_relay/aws/*.py):
# TransactWriteItems of Puts needs PutItem, SendMessageBatch needs SendMessage, PublishBatch needs Publish.
ROLE_GRANTS: dict[str, tuple[set[str], set[tuple[str, str]]]] = {
    # tick: due_watches and awaiting_retry query the due index, genviral_pause reads the pause item, get_many
    # the due watches and creation_moments the created index (bulk refresh), the notices still owed (a query of
    # the table); SqsWorkQueue.send and backlog; failed invocations go to PollerDLQ (EventInvokeConfig, SAM's own
    # statement).
    "PollerFunctionRole": (
        {BASIC, XRAY},
        {
            ("dynamodb:Query", TABLE),
            ("dynamodb:Query", DUE_INDEX),
            ("dynamodb:Query", CREATED_INDEX),
            ("dynamodb:GetItem", TABLE),
            ("dynamodb:BatchGetItem", TABLE),
            ("sqs:SendMessage", "WorkQueue.Arn"),
            ("sqs:GetQueueAttributes", "WorkQueue.Arn"),
            ("sqs:SendMessage", "PollerDLQ.Arn"),
        },
    ),
    # checks (get, get_many, save, claim_check: UpdateItem), outbox (load_events, acknowledge), the pause and
    # discover items (GetItem, PutItem), the retry sweep (awaiting_retry: the due index), the notice outbox (its
    # flush queries the table, an emptied pending notice is deleted), publishers, SqsDeadLetters, the secret.
    "WorkerFunctionRole": (
        {BASIC, XRAY, SQS_EVENT_SOURCE},
        {
            *{
                (f"dynamodb:{a}", TABLE)
                for a in ("GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query")
            },
            ("dynamodb:Query", DUE_INDEX),
            ("secretsmanager:GetSecretValue", SAMPLE_SECRET_ARN),
            ("sqs:SendMessage", "EventsDLQ.Arn"),
            ("sqs:SendMessage", "WebhookFanoutQueue.Arn"),  # the outbox's webhooks target
            *PUBLISHING,
        },
    ),
    # register and check (get, save), outbox (load_events, acknowledge), unwatch (delete), the pause item,
    # publishers, SqsDeadLetters, the secret; no query: the API never reads the due index.
    # The webhook routes: the endpoints' partition (Query on the table itself, not the index), the test route's
    # delivery.
    "ApiFunctionRole": (
        {BASIC, XRAY},
        {
            *{
                (f"dynamodb:{a}", TABLE)
                for a in ("GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query")
            },
            ("secretsmanager:GetSecretValue", SAMPLE_SECRET_ARN),
            ("sqs:SendMessage", "EventsDLQ.Arn"),
            ("sqs:SendMessage", "WebhookFanoutQueue.Arn"),
            ("sqs:SendMessage", "WebhookDeliveryQueue.Arn"),
            ("kms:Encrypt", WEBHOOK_KEY),  # KmsSecretBox.seal: registration, rotation
            ("dynamodb:Query", EVENTS_INDEX),  # DynamoDbEventLog.entry: GET /events/{event_id}
            *PUBLISHING,
        },
    ),
    # the fan-out: DynamoDbWebhookStore.endpoints (a query of the endpoints' partition), DynamoDbDeliveryLog's
    # record_states (the filtered and disabled deliveries), SqsDeliveryQueue.send.
    "WebhookDispatcherFunctionRole": (
        {BASIC, XRAY, SQS_EVENT_SOURCE},
        {
            ("dynamodb:Query", TABLE),
            ("dynamodb:BatchWriteItem", TABLE),
            ("sqs:SendMessage", "WebhookDeliveryQueue.Arn"),
        },
    ),
    # an attempt: DynamoDbWebhookStore.endpoint, record_attempt and set_enabled (UpdateItem), DynamoDbPacer.reserve
    # (UpdateItem), DynamoDbDeliveryLog (BatchWriteItem), the feed's append of a disabled endpoint's notice
    # (PutItem), SqsDeliveryQueue.send (retries, hops) and park, the notice's publishers.
    "WebhookDeliveryFunctionRole": (
        {BASIC, XRAY, SQS_EVENT_SOURCE},
        {
            *{(f"dynamodb:{a}", TABLE) for a in ("GetItem", "UpdateItem", "PutItem", "BatchWriteItem")},
            *PUBLISHING,
            ("sqs:SendMessage", "WebhookDeliveryQueue.Arn"),
            ("sqs:SendMessage", "WebhookDLQ.Arn"),
            ("kms:Decrypt", WEBHOOK_KEY),  # KmsSecretBox.open: the keys it signs with
        },
    ),
    "PollerScheduleRole": (
        set(),
        {("lambda:InvokeFunction", "PollerFunction.Arn"), ("sqs:SendMessage", "PollerDLQ.Arn")},
    ),
}


@pytest.mark.parametrize("role", sorted(ROLE_GRANTS))
def test_each_role_grants_exactly_what_its_code_calls(expanded: dict[str, Any], role: str) -> None:
    managed, expected = ROLE_GRANTS[role]
    properties = expanded["Resources"][role]["Properties"]
    assert set(properties.get("ManagedPolicyArns", [])) == managed
    assert grants(expanded, role) == expected
    assert grants(expanded, role, PublishTargets="sns") == expected - {("events:PutEvents", "EventBus.Arn")}
    assert grants(expanded, role, PublishTargets="eventbridge") == expected - {("sns:Publish", "EventsTopic")}


def test_every_role_is_listed(expanded: dict[str, Any]) -> None:
    # The failure webhook's role is pinned in test_failure_webhook.py.
    assert set(of_type(expanded, "AWS::IAM::Role")) == {*ROLE_GRANTS, "FailureWebhookRole"}
    assert {role_of(expanded, function) for function in FUNCTIONS} == set(ROLE_GRANTS) - {"PollerScheduleRole"}


def test_a_service_other_than_lambda_assumes_a_role_only_for_this_account(expanded: dict[str, Any]) -> None:
    (schedule,) = of_type(expanded, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["Target"]["RoleArn"] == {"Fn::GetAtt": ["PollerScheduleRole", "Arn"]}
    for logical_id, role in of_type(expanded, "AWS::IAM::Role").items():
        for trust in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            services = trust["Principal"]["Service"]
            if services in ("lambda.amazonaws.com", ["lambda.amazonaws.com"]):
                continue
            assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}, logical_id


# ---------------------------------------------------------------- 8: the first deploy's ordering
def test_the_schedule_waits_for_the_log_groups_of_what_it_sets_off(expanded: dict[str, Any]) -> None:
    # Created in parallel with them, the schedule's first tick could make Lambda create the poller's log group
    # (and, through the check a discover-mode tick queues, the worker's) before CloudFormation does: rollback.
    (schedule,) = of_type(expanded, "AWS::Scheduler::Schedule")
    assert {"PollerFunction", "PollerLogGroup", "WorkerLogGroup"} <= dependencies(expanded, schedule)
    assert schedule not in dependencies(expanded, "PollerLogGroup")


# ---------------------------------------------------------------- 9: API access logs
CALLER = {
    "requestId": "$context.requestId",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "userArn": "$context.identity.userArn",
    "caller": "$context.identity.caller",
    "sourceIp": "$context.identity.sourceIp",
}


def test_access_logging_is_a_parameter_off_by_default(expanded: dict[str, Any]) -> None:
    parameter = TEMPLATE["Parameters"]["ApiAccessLogging"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["true", "false"])
    (stage,) = of_type(expanded, "AWS::ApiGateway::Stage").values()
    assert symbolic(expanded).evaluate(stage["Properties"]["AccessLogSetting"]) is NO_VALUE
    assert not Resolver(TEMPLATE, SAMPLE_PARAMETERS).resource_enabled("ApiAccessLogGroup")


def test_access_logs_record_who_called_what_in_one_json_line(expanded: dict[str, Any]) -> None:
    (stage,) = of_type(expanded, "AWS::ApiGateway::Stage").values()
    setting = symbolic(expanded, ApiAccessLogging="true").evaluate(stage["Properties"]["AccessLogSetting"])
    assert setting["DestinationArn"] == "ApiAccessLogGroup.Arn"
    line = setting["Format"]
    assert "\n" not in line
    # As API Gateway writes it: each variable replaced by its value (a *String variable arrives quoted).
    sample = re.sub(r"\$context\.[A-Za-z.]+String", '"-"', line)
    record = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "-", sample))
    assert set(CALLER) <= set(record)
    fields = json.loads(re.sub(r"\$context\.[A-Za-z.]+String", '"$context.error.message"', line))
    assert {key: fields[key] for key in CALLER} == CALLER
    group = TEMPLATE["Resources"]["ApiAccessLogGroup"]
    assert group["Condition"] == "LogApiAccess"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert Resolver(TEMPLATE, {**SAMPLE_PARAMETERS, "ApiAccessLogging": "true"}).resource_enabled("ApiAccessLogGroup")
    assert variant_findings("access-logs") == []


# ---------------------------------------------------------------- the deploy guide
def section(markdown: str, heading: str) -> str:
    """A `## heading` section of a page, up to the next `## `."""
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else len(markdown)]


def test_the_deploy_guide_lists_every_parameter_and_output() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    listed = re.findall(r"^\| `(\w+)` \|", section(guide, "Parameters"), re.MULTILINE)
    assert sorted(listed) == sorted(TEMPLATE["Parameters"])
    outputs = section(guide, "Outputs")
    assert [name for name in TEMPLATE["Outputs"] if f"`{name}`" not in outputs] == []
