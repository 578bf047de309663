"""The roles proved, not read: the whole local flow with moto's IAM access control on.

Each handler runs with the credentials of its own execution role, as the SAM transform builds it from
template.yaml (local/roles.py); the set-up and the assertions act as an admin. Any call a role does not
allow is refused as AWS refuses it and recorded, and a test that made one fails, also when the relay
handles the refusal quietly (a refused publish is parked in EventsDLQ). The negative controls show the
enforcement is real, for actions and for resources, on moto's own check (SQS) and on the resource-aware
one local/roles.py adds (DynamoDB, SNS).
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from botocore.exceptions import ClientError

from genviral_relay import factories
from genviral_relay.aws.delivery_log import DynamoDbDeliveryLog
from genviral_relay.aws.dynamodb_items import watch_from_item
from genviral_relay.aws.webhook_store import DynamoDbWebhookStore
from genviral_relay.clock import format_ts
from genviral_relay.models.upstream import PAGE_LIMIT
from local.emulator import GenviralEmulator
from local.roles import (
    IamEnforcement,
    Permission,
    function_roles,
    managed_policy_name,
    required_permissions,
    transformed_template,
)
from local.runner import API, POLLER, WEBHOOK_DELIVERY, WEBHOOK_DISPATCHER, WORKER, LocalRunner, sqs_record
from local.stack import ACCOUNT, MotoStack
from local.template import functions
from local.webhook_receiver import WebhookReceiver
from tests.conftest import NO_ACCOUNT_CHECKS, SECRETS, SYNC, TOKEN
from tests.functional.shared_rig import stored_item
from tests.functional.subscribers import drain, transitions

StackFactory = Callable[..., MotoStack]
Used = dict[str, set[Permission]]
"""Function -> every permission its role was allowed (portable: see `used`)."""
Flow = Callable[[GenviralEmulator, StackFactory], None]


@contextmanager
def enforced_stacks(emulator: GenviralEmulator) -> Iterator[tuple[StackFactory, Used]]:
    """Makes stacks with IAM enforced; on the way out, no call may have been refused that the caller did not take,
    and the second item holds what each function's role was allowed."""
    made: list[MotoStack] = []
    allowed: Used = {}

    def make(**parameters: str) -> MotoStack:
        # Account checks off unless a flow asks (account_health_flow): a flow's first tick would also list the accounts
        settings = {**NO_ACCOUNT_CHECKS, **parameters}
        stack = MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters=settings, enforce_iam=True)
        made.append(stack.start())
        return stack

    try:
        yield make, allowed
        for stack in made:
            stack.drain_subscribers()
            assert_nothing_refused(stack)
            for function in stack.roles:
                allowed.setdefault(function, set()).update(used(stack, function, portable=True))
    finally:
        for stack in made:
            stack.stop()


@pytest.fixture
def enforced_stack(emulator: GenviralEmulator) -> Iterator[StackFactory]:
    with enforced_stacks(emulator) as (make, _):
        yield make


class FlowRuns:
    """Each flow run once per module, by whichever test needs it first, on an emulator and stacks of its own: the
    flow's test and the over-grant check share the run, and either passes or fails alone, in any order."""

    def __init__(self) -> None:
        self._outcomes: dict[Flow, Used | BaseException] = {}

    def run(self, flow: Flow) -> Used:
        if flow not in self._outcomes:
            try:
                with GenviralEmulator(tokens=[TOKEN]) as emulator, enforced_stacks(emulator) as (make, allowed):
                    flow(emulator, make)
                self._outcomes[flow] = allowed
            except (Exception, pytest.fail.Exception) as error:  # kept: the next test needing it fails the same way
                self._outcomes[flow] = error
        outcome = self._outcomes[flow]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture(scope="module")
def flow_runs() -> FlowRuns:
    return FlowRuns()


def enforcement(stack: MotoStack) -> IamEnforcement:
    assert stack.enforcement is not None
    return stack.enforcement


def assert_nothing_refused(stack: MotoStack) -> None:
    denials = enforcement(stack).take_denials()
    assert not denials, "calls the roles refuse:\n" + "\n".join(str(denial) for denial in denials)


def used(stack: MotoStack, function: str, *, portable: bool = False) -> set[Permission]:
    """What the function's role was allowed; `portable`: the ARNs random per stack by name (`portable_arn`)."""
    permissions = enforcement(stack).used_by(stack.roles[function].name)
    return {(action, portable_arn(stack, resource) if portable else resource) for action, resource in permissions}


def portable_arn(stack: MotoStack, resource: str) -> str:
    """The ARNs that differ between stacks (the secret's suffix, the key's id) by name."""
    named = {stack.secret_arn: "SECRET_ARN", stack.resolver.attributes.get(("WebhookSecretsKey", "Arn")): "WEBHOOK_KEY"}
    return named.get(resource, resource)


def arn(stack: MotoStack, logical_id: str) -> str:
    return stack.resolver.attributes[(logical_id, "Arn")]


def table_arn(stack: MotoStack) -> str:
    return arn(stack, "StateTable")


def publishing_now(emulator: GenviralEmulator, accounts: int = 1, **options: Any) -> tuple[str, list[str]]:
    post_id = emulator.create_post(accounts=accounts, scheduled_at=datetime.now(UTC) - timedelta(minutes=1), **options)
    return post_id, emulator.account_ids(post_id)


def queue_bodies(stack: MotoStack, logical_id: str) -> list[dict[str, Any]]:
    sqs, url = stack.client("sqs"), stack.ref(logical_id)
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def revoke(stack: MotoStack, function: str, action: str) -> None:
    """Take one action out of the function's inline policies, as a narrower template would."""
    iam, role = stack.client("iam"), stack.roles[function]
    for name, document in role.inline.items():
        narrowed = copy.deepcopy(document)
        for statement in narrowed["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [granted for granted in actions if granted != action]
        narrowed["Statement"] = [statement for statement in narrowed["Statement"] if statement["Action"]]
        if not narrowed["Statement"]:
            iam.delete_role_policy(RoleName=role.name, PolicyName=name)
        elif narrowed != document:
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(narrowed))


def repoint(stack: MotoStack, function: str, old: str, new: str) -> None:
    """Grant the same actions on another resource: `old` replaced by `new` in the function's inline policies."""
    iam, role = stack.client("iam"), stack.roles[function]
    for name, document in role.inline.items():
        text = json.dumps(document)
        if old in text:
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=text.replace(old, new))


# ---------------------------------------------------------------------------------------------- the roles made
def test_each_function_runs_with_its_own_role_as_the_transform_builds_it(enforced_stack: StackFactory) -> None:
    stack = enforced_stack()

    assert (
        set(stack.roles)
        == set(functions(stack.template))
        == {POLLER, WORKER, API, WEBHOOK_DISPATCHER, WEBHOOK_DELIVERY}
    )
    transformed = transformed_template()["Resources"]
    iam = stack.client("iam")
    for function, role in stack.roles.items():
        assert role.logical_id == f"{function}Role"
        expected_inline = {
            policy["PolicyName"] for policy in function_roles(stack.resolver)[function][1].get("Policies", [])
        }
        assert set(role.inline) == expected_inline
        managed = transformed[role.logical_id]["Properties"]["ManagedPolicyArns"]
        # AWS managed policies (logs, X-Ray, the SQS event source) come from moto's copy of AWS's documents.
        assert (role.managed, role.skipped_managed) == (managed, [])
        names = set(iam.list_role_policies(RoleName=role.name)["PolicyNames"])
        assert names == expected_inline | {managed_policy_name(policy) for policy in managed}
        assert stack.function_credentials(function)["AWS_ACCESS_KEY_ID"] == role.credentials.access_key_id
    assert len({role.credentials.access_key_id for role in stack.roles.values()}) == len(stack.roles)
    # the conditional policies follow PublishTargets: both targets by default
    assert any("sns:Publish" in json.dumps(document) for document in stack.roles[WORKER].inline.values())
    assert any("events:PutEvents" in json.dumps(document) for document in stack.roles[WORKER].inline.values())


def test_a_role_is_refused_what_it_does_not_grant_with_the_error_aws_answers(enforced_stack: StackFactory) -> None:
    stack = enforced_stack()
    poller_sqs, poller_sns = stack.client_as(POLLER, "sqs"), stack.client_as(POLLER, "sns")
    api_dynamodb = stack.client_as(API, "dynamodb")

    # granted: its own queue; refused: another queue, another service, another table
    poller_sqs.send_message(QueueUrl=stack.ref("WorkQueue"), MessageBody="{}")
    with pytest.raises(ClientError) as sqs_refusal:
        poller_sqs.send_message(QueueUrl=stack.ref("EventsDLQ"), MessageBody="{}")
    with pytest.raises(ClientError) as sns_refusal:
        poller_sns.publish(TopicArn=stack.ref("EventsTopic"), Message="{}")
    other = stack.client("dynamodb").create_table(
        TableName="OtherTable",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    api_dynamodb.get_item(TableName=stack.ref("StateTable"), Key={"pk": {"S": "x"}, "sk": {"S": "x"}})
    with pytest.raises(ClientError) as dynamodb_refusal:
        api_dynamodb.get_item(TableName="OtherTable", Key={"pk": {"S": "x"}})

    assert sqs_refusal.value.response["Error"]["Code"] == "AccessDenied"
    assert sns_refusal.value.response["Error"]["Code"] == "AuthorizationError"
    assert dynamodb_refusal.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"dynamodb:GetItem on resource: {other}" in dynamodb_refusal.value.response["Error"]["Message"]
    poller, api = (f"arn:aws:sts::{ACCOUNT}:assumed-role/{stack.roles[f].name}/{f}" for f in (POLLER, API))
    assert [(d.principal, d.action, d.resource) for d in enforcement(stack).take_denials()] == [
        (poller, "sqs:SendMessage", arn(stack, "EventsDLQ")),
        (poller, "sns:Publish", stack.ref("EventsTopic")),
        (api, "dynamodb:GetItem", other),
    ]
    # and the admin, what the tests themselves do, is refused nothing
    stack.client("sqs").receive_message(QueueUrl=stack.ref("WorkQueue"))


TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/T"


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        pytest.param(
            "dynamodb",
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "T"}},
                    {"Update": {"TableName": "T"}},
                    {"Put": {"TableName": "T"}},
                ]
            },
            [("dynamodb:PutItem", TABLE), ("dynamodb:UpdateItem", TABLE)],
            id="transaction-as-its-items",
        ),
        pytest.param(
            "dynamodb",
            "Query",
            {"TableName": "T", "IndexName": "due"},
            [("dynamodb:Query", f"{TABLE}/index/due")],
            id="query-on-an-index",
        ),
        pytest.param(
            "dynamodb",
            "BatchGetItem",
            {"RequestItems": {"T": {}, TABLE + "2": {}}},
            [("dynamodb:BatchGetItem", TABLE), ("dynamodb:BatchGetItem", TABLE + "2")],
            id="batch-on-each-table",
        ),
        pytest.param(
            "sns",
            "PublishBatch",
            {"TopicArn": "arn:aws:sns:us-east-1:1:t"},
            [("sns:Publish", "arn:aws:sns:us-east-1:1:t")],
            id="publish-batch",
        ),
        pytest.param(
            "sqs",
            "SendMessageBatch",
            {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q"},
            [("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q")],
            id="send-message-batch",
        ),
        pytest.param(
            "events",
            "PutEvents",
            {"Entries": [{"EventBusName": "b"}, {}]},
            [
                ("events:PutEvents", f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/b"),
                ("events:PutEvents", f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"),
            ],
            id="put-events-per-bus",
        ),
        pytest.param("iam", "ListRoles", {}, [("iam:ListRoles", "*")], id="anything-else-as-moto-does"),
    ],
)
def test_each_request_needs_what_aws_authorizes(
    service: str, operation: str, params: dict[str, Any], expected: list[Permission]
) -> None:
    needed = required_permissions(service, operation, params, region="us-east-1", account=ACCOUNT, fallback="*")

    assert needed == expected


# ---------------------------------------------------------------------------------------------- the flows
def whole_flow(emulator: GenviralEmulator, enforced_stack: StackFactory) -> None:
    stack = enforced_stack()
    runner = LocalRunner(stack)

    # Registered through the API; Genviral delivers one account and fails the other; a tick and the worker
    post_id, (posted, failed) = publishing_now(emulator, accounts=2)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    emulator.mark_posted(post_id, posted)
    emulator.mark_failed(post_id, failed, error_message="Media rejected by platform")
    assert runner.tick()["enqueued"] == 1 + SYNC
    report = runner.drain_work_queue()
    assert (report.processed, report.failed) == (1 + SYNC, 0)
    received = drain(stack)
    assert sorted(d["status"] for d in received.sns_transitions()) == ["failed", "posted"]
    assert sorted(d["status"] for d in received.eventbridge_transitions()) == ["failed", "posted"]
    assert received.event_ids()[0] == received.event_ids()[1]
    assert sorted(received.sns_event_types()) == ["post.account.failed", "post.account.posted", "post.completed"]
    assert runner.api("GET", f"/watches/{post_id}").status == 200

    # Two posts created together: the poller reads their watches and queues one refresh, which one list call does
    together = datetime.now(UTC) - timedelta(hours=1)
    imported = [publishing_now(emulator, created_at=together)[0] for _ in range(2)]
    for each in imported:
        assert runner.api("POST", "/watches", {"post_id": each}).status == 201
    assert runner.tick()["enqueued"] == 2 + SYNC  # the refresh, and the retry sweep (the first post awaits a retry)
    assert runner.drain_work_queue().failed == 0

    # The retry sweep: Genviral retries the failed account, which then posts; the retry list is a full page (it
    # may be cut off), so the sweep reads every waiting watch from the table
    for _ in range(PAGE_LIMIT):
        unwatched, (unwatched_account,) = publishing_now(emulator)
        emulator.mark_failed(unwatched, unwatched_account)
        emulator.retry(unwatched)
    emulator.retry(post_id)
    runner.tick_and_work()
    emulator.mark_posted(post_id, failed)
    runner.tick_and_work()
    received = drain(stack)
    documents = received.sns_transitions()
    assert [(d["account_id"], d["previous_status"], d["status"]) for d in documents] == [(failed, "retry", "posted")]
    assert received.sns_event_types() == ["post.account.posted", "post.completed"]  # the post completed again

    # A check-now that finds a change publishes from the API function; then the watch is deleted
    other, (account,) = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": other}).status == 201
    emulator.mark_posted(other, account)
    checked = runner.api("POST", f"/watches/{other}/check")
    assert checked.status == 200
    assert [t["status"] for t in transitions(checked.body["transitions"])] == ["posted"]
    assert [t["event_type"] for t in checked.body["transitions"]] == ["post.account.posted", "post.completed"]
    assert drain(stack).event_ids() == (sorted(t["event_id"] for t in checked.body["transitions"]),) * 2
    # The feed: a page (a query of the table), one event (the events index, the entry, its deliveries)
    assert runner.api("GET", "/events").status == 200
    story = runner.api("GET", f"/events/{checked.body['transitions'][0]['event_id']}")
    assert (story.status, story.body["event"]) == (200, checked.body["transitions"][0])
    assert runner.api("DELETE", f"/watches/{post_id}").status == 200
    assert runner.api("GET", f"/watches/{post_id}").status == 404

    # Then nothing was refused, and each function did its work on its own role, the secret read included
    assert_nothing_refused(stack)
    table, secret = table_arn(stack), stack.secret_arn
    assert {
        ("sqs:SendMessage", arn(stack, "WorkQueue")),
        ("sqs:GetQueueAttributes", arn(stack, "WorkQueue")),
        ("dynamodb:Query", f"{table}/index/due"),
        ("dynamodb:Query", f"{table}/index/created"),
        ("dynamodb:BatchGetItem", table),
    } <= used(stack, POLLER)
    publishing = {
        ("secretsmanager:GetSecretValue", secret),
        ("sns:Publish", stack.ref("EventsTopic")),
        ("events:PutEvents", arn(stack, "EventBus")),
    }
    queue = arn(stack, "WorkQueue")
    event_source = {("sqs:ReceiveMessage", queue), ("sqs:DeleteMessage", queue)}
    assert publishing | event_source | {("dynamodb:Query", f"{table}/index/due")} <= used(stack, WORKER)
    assert publishing | {("dynamodb:DeleteItem", table), ("dynamodb:Query", f"{table}/index/events")} <= used(
        stack, API
    )


def test_the_whole_flow_runs_on_each_functions_own_role(flow_runs: FlowRuns) -> None:
    assert WORKER in flow_runs.run(whole_flow)


def refused_event_flow(emulator: GenviralEmulator, enforced_stack: StackFactory) -> None:
    stack = enforced_stack()
    runner = LocalRunner(stack)
    # Events over the targets' size limit, which both refuse for good: one the worker finds, one the API does
    post_id, (account_id,) = publishing_now(emulator, caption="x" * 300_000)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    emulator.mark_posted(post_id, account_id)
    runner.tick_and_work()
    by_worker = queue_bodies(stack, "EventsDLQ")
    already_posted, (other_account,) = publishing_now(emulator, caption="y" * 300_000)
    emulator.mark_posted(already_posted, other_account)
    assert runner.api("POST", "/watches", {"post_id": already_posted}).status == 201
    by_api = queue_bodies(stack, "EventsDLQ")

    # the transition and the completion (which carries the caption too), on each target, the webhooks' fan-out
    # queue included (over SQS's 256 KiB)
    parked = sorted(
        (target, event_type)
        for target in ("eventbridge", "sns", "webhooks")
        for event_type in ("post.account.posted", "post.completed")
    )
    assert sorted((body["target"], body["event"]["event_type"]) for body in by_worker) == parked
    assert sorted((body["target"], body["event"]["event_type"]) for body in by_api) == parked
    assert drain(stack).event_ids() == ([], [])
    assert_nothing_refused(stack)
    assert ("sqs:SendMessage", arn(stack, "EventsDLQ")) in used(stack, WORKER) & used(stack, API)


def test_an_event_a_target_refuses_is_parked_in_the_events_dlq_by_the_workers_role(flow_runs: FlowRuns) -> None:
    assert WORKER in flow_runs.run(refused_event_flow)


def discover_flow(emulator: GenviralEmulator, enforced_stack: StackFactory) -> None:
    stack = enforced_stack(WatchMode="discover")
    runner = LocalRunner(stack)
    old, _ = publishing_now(emulator, accounts=1, created_at=datetime.now(UTC) - timedelta(hours=2))

    assert runner.tick()["enqueued"] == 1 + SYNC  # the discovery request
    runner.drain_work_queue()
    assert stored_item(stack, old)["post_status"]["S"] == "scheduled"
    fresh = emulator.create_post(accounts=1, scheduled_at=None)
    emulator.mark_posted(fresh, emulator.account_ids(fresh)[0])
    runner.tick_and_work()

    received = drain(stack)
    assert [(d["post_id"], d["status"]) for d in received.sns_transitions()] == [(fresh, "posted")]
    assert [(d["post_id"], d["event_type"]) for d in received.sns_documents()] == [
        (fresh, "post.account.posted"),
        (fresh, "post.completed"),
    ]
    assert_nothing_refused(stack)


def test_a_discover_mode_tick_runs_on_the_roles(flow_runs: FlowRuns) -> None:
    assert POLLER in flow_runs.run(discover_flow)


def pause_flow(emulator: GenviralEmulator, enforced_stack: StackFactory) -> None:
    stack = enforced_stack()
    runner = LocalRunner(stack)
    post_id, (account_id,) = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    policies = dict(stack.roles[WORKER].inline)
    iam, role = stack.client("iam"), stack.roles[WORKER].name

    # Genviral refuses the key while the topic refuses the worker: relay.paused goes to the bus, stays owed to SNS
    emulator.plan_error = "subscription_required"
    revoke(stack, WORKER, "sns:Publish")
    runner.tick_and_work()
    assert [d["event_type"] for d in drain(stack).eventbridge_documents()] == ["relay.paused"]
    assert [(d.action, d.resource) for d in enforcement(stack).take_denials()] == [
        ("sns:Publish", stack.ref("EventsTopic"))
    ]
    for name, document in policies.items():  # the role as the template builds it again
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))

    # A tick past the flush delay, still paused, queues the flush (a query of the table); the worker publishes it
    with patch.object(factories, "utc_now", lambda: datetime.now(UTC) + timedelta(minutes=2)):
        assert runner.tick()["enqueued"] == 1 + SYNC
        runner.drain_work_queue()
    assert [d["event_type"] for d in drain(stack).sns_documents()] == ["relay.paused"]

    # The key fixed and the pause over: the first answer closes it
    emulator.plan_error = None
    emulator.mark_posted(post_id, account_id)
    with patch.object(factories, "utc_now", lambda: datetime.now(UTC) + timedelta(minutes=6)):
        runner.tick_and_work()
    assert "relay.resumed" in drain(stack).sns_event_types()
    assert_nothing_refused(stack)
    table = table_arn(stack)
    assert ("dynamodb:Query", table) in used(stack, POLLER)
    assert {("dynamodb:Query", table), ("dynamodb:DeleteItem", table)} <= used(stack, WORKER)


def test_the_pause_and_its_notices_run_on_the_roles(flow_runs: FlowRuns) -> None:
    assert WORKER in flow_runs.run(pause_flow)


def account_health_flow(emulator: GenviralEmulator, enforced_stack: StackFactory) -> None:
    stack = enforced_stack(AccountCheckMinutes="15")  # the template's default
    runner = LocalRunner(stack)
    post_id = emulator.create_post(accounts=1, scheduled_at=datetime.now(UTC) + timedelta(days=1))
    (account_id,) = emulator.account_ids(post_id)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    runner.tick_and_work()  # the first listing: what is listed now is the baseline

    # The account is revoked (Genviral lists it with that status): the listing an interval later announces it
    emulator.list_inactive_accounts = True
    emulator.set_account(account_id, status="revoked")
    with patch.object(factories, "utc_now", lambda: datetime.now(UTC) + timedelta(minutes=16)):
        runner.tick_and_work()
    (document,) = drain(stack).sns_documents()
    assert (document["event_type"], document["account_id"]) == ("account.disconnected", account_id)
    assert document["posts_at_risk"] == {"count": 1, "post_ids": [post_id]}
    assert_nothing_refused(stack)
    table = table_arn(stack)
    assert ("dynamodb:Query", f"{table}/index/due") in used(stack, POLLER)
    assert {("dynamodb:PutItem", table), ("dynamodb:Query", f"{table}/index/due")} <= used(stack, WORKER)


def test_the_account_checks_and_their_notices_run_on_the_roles(flow_runs: FlowRuns) -> None:
    assert WORKER in flow_runs.run(account_health_flow)


# ---------------------------------------------------------------------------------------------- negative controls
def test_without_sqs_send_message_the_pollers_tick_is_refused(
    emulator: GenviralEmulator, enforced_stack: StackFactory
) -> None:
    stack = enforced_stack()
    runner = LocalRunner(stack)
    post_id, _ = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    revoke(stack, POLLER, "sqs:SendMessage")

    with pytest.raises(ClientError) as refused:
        runner.tick()

    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    denials = enforcement(stack).take_denials()  # the stack's own work's send, then the workspace's tick's
    assert {(denial.action, denial.resource) for denial in denials} == {("sqs:SendMessage", arn(stack, "WorkQueue"))}
    assert len(denials) == 2
    assert all(f"assumed-role/{stack.roles[POLLER].name}/" in denial.principal for denial in denials)
    assert runner.drain_work_queue().batches == 0


def test_a_secret_the_worker_may_not_read_is_published_without_aws_words(
    emulator: GenviralEmulator, enforced_stack: StackFactory
) -> None:
    stack = enforced_stack()
    runner = LocalRunner(stack)
    post_id, _ = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    revoke(stack, WORKER, "secretsmanager:GetSecretValue")

    runner.tick_and_work()

    denials = enforcement(stack).take_denials()
    assert {(d.action, d.resource) for d in denials} == {("secretsmanager:GetSecretValue", stack.secret_arn)}
    received = drain(stack)
    (paused,) = received.sns_documents()
    assert received.eventbridge_documents() == [paused]
    assert paused["event_type"] == "relay.paused"
    # AWS's message names the account, the role and the secret: the published reason has only its code
    assert paused["reason"] == "the Genviral secret could not be read (AccessDeniedException)"
    for aws_words in ("arn:", ACCOUNT, stack.roles[WORKER].name, "secretsmanager"):
        assert aws_words not in json.dumps(paused)
    events = runner.api("GET", f"/events/{paused['event_id']}")
    assert events.status == 200
    assert "arn:" not in json.dumps(events.body)


def test_an_attempt_log_the_table_refuses_neither_fails_nor_repeats_the_delivery(
    emulator: GenviralEmulator, enforced_stack: StackFactory
) -> None:
    stack = enforced_stack(AllowPrivateWebhookUrls="true")
    runner = LocalRunner(stack)
    revoke(stack, WEBHOOK_DELIVERY, "dynamodb:BatchWriteItem")  # the attempt log and the delivery states
    with WebhookReceiver() as receiver:
        created = runner.api("POST", "/webhooks", {"url": receiver.url})
        SECRETS.add(created.body["secret"].removeprefix("whsec_"))
        post_id, (account, _) = publishing_now(emulator, accounts=2)
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
        emulator.mark_posted(post_id, account)
        runner.tick_and_work()
        report = runner.deliver_webhooks()
        assert len(receiver.received) == 1  # sent once
    assert report.failed == 0  # no message came back to be attempted again
    assert queue_messages(stack, "WebhookDeliveryQueue") == []
    denials = enforcement(stack).take_denials()
    assert {(d.action, d.resource) for d in denials} == {("dynamodb:BatchWriteItem", table_arn(stack))}
    health = DynamoDbWebhookStore(stack.client("dynamodb"), stack.ref("StateTable")).endpoint(created.body["id"])
    assert health is not None
    assert health.health.last_success_at is not None  # the endpoint's health, a write of its own, still kept


def test_a_delete_reads_no_secret_on_a_cold_start(emulator: GenviralEmulator, enforced_stack: StackFactory) -> None:
    stack = enforced_stack()
    post_id, _ = publishing_now(emulator)
    assert LocalRunner(stack).api("POST", "/watches", {"post_id": post_id}).status == 201
    enforcement(stack).allowed.clear()

    assert LocalRunner(stack).api("DELETE", f"/watches/{post_id}").status == 200  # an execution environment anew

    assert_nothing_refused(stack)
    assert ("secretsmanager:GetSecretValue", stack.secret_arn) not in used(stack, API)  # it needs no key
    assert ("dynamodb:DeleteItem", table_arn(stack)) in used(stack, API)


def test_a_table_grant_on_another_table_refuses_the_api(
    emulator: GenviralEmulator, enforced_stack: StackFactory
) -> None:
    # The same actions on another table: the resource is checked too, on DynamoDB as well
    stack = enforced_stack()
    runner = LocalRunner(stack)
    table = stack.ref("StateTable")
    repoint(stack, API, f":table/{table}", ":table/SomeOtherTable")
    post_id, _ = publishing_now(emulator)

    with pytest.raises(ClientError) as refused:  # the invocation fails; API Gateway would answer 502
        runner.api("POST", "/watches", {"post_id": post_id})

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    denials = enforcement(stack).take_denials()
    assert denials
    writes = ("GetItem", "PutItem", "UpdateItem", "ConditionCheckItem")
    assert {(d.action, d.resource) for d in denials} <= {(f"dynamodb:{a}", table_arn(stack)) for a in writes}


def test_without_sns_publish_the_events_wait_in_the_outbox_and_the_denial_is_seen(
    emulator: GenviralEmulator, enforced_stack: StackFactory
) -> None:
    # A call refused for access keeps its events in the outbox (published once the role is fixed), and the
    # recorded denial names what the role lacks.
    stack = enforced_stack()
    runner = LocalRunner(stack)
    post_id, (account_id,) = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    revoke(stack, WORKER, "sns:Publish")
    emulator.mark_posted(post_id, account_id)

    report = runner.tick_and_work()

    assert (report.processed, report.failed) == (1 + SYNC, 0)
    received = drain(stack)
    assert (len(received.sns), len(received.eventbridge)) == (0, 2)  # the transition and the completion
    assert queue_bodies(stack, "EventsDLQ") == []
    assert {entry.target for entry in watch_from_item(stored_item(stack, post_id)).outbox} == {"sns"}
    assert [(d.action, d.resource) for d in enforcement(stack).take_denials()] == [
        ("sns:Publish", stack.ref("EventsTopic"))
    ]


def webhooks_flow(emulator: GenviralEmulator, enforced_stack: StackFactory) -> None:
    stack = enforced_stack(AllowPrivateWebhookUrls="true")
    runner = LocalRunner(stack)
    with WebhookReceiver() as receiver:
        # Registered, listed, read, rotated and tested through the API; an event from a check, then fanned out
        created = runner.api("POST", "/webhooks", {"url": receiver.url})
        assert created.status == 201
        SECRETS.add(created.body["secret"].removeprefix("whsec_"))
        webhook_id = created.body["id"]
        assert runner.api("GET", "/webhooks").status == runner.api("GET", f"/webhooks/{webhook_id}").status == 200
        rotated = runner.api("POST", f"/webhooks/{webhook_id}/rotate-secret")
        SECRETS.add(rotated.body["secret"].removeprefix("whsec_"))
        receiver.trust(rotated.body["secret"])
        assert runner.api("POST", f"/webhooks/{webhook_id}/test").status == 202
        # Edited, switched off and on; a second endpoint kept off: the fan-out records its delivery `disabled`
        assert runner.api("PATCH", f"/webhooks/{webhook_id}", {"description": "ops", "rate_limit": 50}).status == 200
        assert runner.api("POST", f"/webhooks/{webhook_id}/disable").status == 200
        assert runner.api("POST", f"/webhooks/{webhook_id}/enable").status == 200
        off = runner.api("POST", "/webhooks", {"url": receiver.url, "event_types": ["post.account.posted"]})
        SECRETS.add(off.body["secret"].removeprefix("whsec_"))
        assert runner.api("POST", f"/webhooks/{off.body['id']}/disable").status == 200
        post_id, (account, _) = publishing_now(emulator, accounts=2)  # one account left: one event, no completion
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
        emulator.mark_posted(post_id, account)
        runner.tick_and_work()

        # The endpoint refuses one of the two deliveries: its retry is queued; then the last attempt of a schedule
        # is refused too, and parked
        receiver.answer(503, 200, 503)
        runner.deliver_webhooks()
        (retry,) = queue_messages(stack, "WebhookDeliveryQueue")
        attributes = {
            **retry["MessageAttributes"],
            "attempt": {"DataType": "Number", "StringValue": "8"},
            "due_at": {"DataType": "String", "StringValue": format_ts(datetime.now(UTC))},
        }
        last = sqs_record({**retry, "MessageAttributes": attributes}, arn(stack, "WebhookDeliveryQueue"))
        runner.invoke(WEBHOOK_DELIVERY, {"Records": [last]})
        assert len(queue_messages(stack, "WebhookDLQ")) == 1
        assert len(receiver.received) == 3
        assert all(delivery.verified for delivery in receiver.received)
        assert runner.api("DELETE", f"/webhooks/{webhook_id}").status == 200

    assert_nothing_refused(stack)
    table = table_arn(stack)
    deliveries, dead_letters, fanout = (
        arn(stack, q) for q in ("WebhookDeliveryQueue", "WebhookDLQ", "WebhookFanoutQueue")
    )
    assert {
        ("dynamodb:Query", table), ("dynamodb:BatchWriteItem", table), ("sqs:SendMessage", deliveries)
    } <= used(stack, WEBHOOK_DISPATCHER)  # fmt: skip
    assert {
        ("dynamodb:GetItem", table), ("dynamodb:UpdateItem", table), ("sqs:SendMessage", deliveries),
        ("sqs:SendMessage", dead_letters),
    } <= used(stack, WEBHOOK_DELIVERY)  # fmt: skip
    assert {("dynamodb:Query", table), ("sqs:SendMessage", deliveries)} <= used(stack, API)
    key = arn(stack, "WebhookSecretsKey")  # the API seals the secrets, the delivery function opens them
    assert ("kms:Encrypt", key) in used(stack, API) - used(stack, WEBHOOK_DELIVERY)
    assert ("kms:Decrypt", key) in used(stack, WEBHOOK_DELIVERY) - used(stack, API)
    assert ("sqs:SendMessage", fanout) in used(stack, WORKER)


def test_webhooks_run_on_their_functions_own_roles(flow_runs: FlowRuns) -> None:
    assert WEBHOOK_DELIVERY in flow_runs.run(webhooks_flow)


def disable_flow(emulator: GenviralEmulator, enforced_stack: StackFactory) -> None:
    stack = enforced_stack(AllowPrivateWebhookUrls="true")
    runner = LocalRunner(stack)
    with WebhookReceiver() as receiver:
        created = runner.api("POST", "/webhooks", {"url": receiver.url, "description": "ops"})
        SECRETS.add(created.body["secret"].removeprefix("whsec_"))
        webhook_id = created.body["id"]
        # Paced, and failing for WebhookDisableAfterHours (120) already, as the table keeps its health
        stack.client("dynamodb").update_item(
            TableName=stack.ref("StateTable"),
            Key={"pk": {"S": "webhooks"}, "sk": {"S": webhook_id}},
            UpdateExpression="SET failing_since = :since, rate_limit = :rate",
            ExpressionAttributeValues={
                ":since": {"S": format_ts(datetime.now(UTC) - timedelta(hours=121))},
                ":rate": {"N": "5"},
            },
        )
        post_id, (account, _) = publishing_now(emulator, accounts=2)
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
        emulator.mark_posted(post_id, account)
        runner.tick_and_work()
        receiver.answer(503)
        runner.deliver_webhooks()
        assert len(receiver.received) == 1

    # Disabled, no retry queued, the attempt logged; the notice on the topic and the bus
    assert_nothing_refused(stack)
    client, table = stack.client("dynamodb"), stack.ref("StateTable")
    endpoint = DynamoDbWebhookStore(client, table).endpoint(webhook_id)
    assert endpoint is not None
    assert not endpoint.enabled
    assert queue_messages(stack, "WebhookDeliveryQueue") == []
    (logged,) = (
        DynamoDbDeliveryLog(client, table, event_retention=timedelta(days=2))
        .attempts(webhook_id, before=None, limit=10)
        .entries
    )
    assert (logged.outcome, logged.status) == ("failed", 503)
    received = drain(stack)
    notices = [d for d in received.sns_documents() if d["event_type"] == "webhook.endpoint.disabled"]
    assert [(n["webhook_id"], n["host"], n["description"]) for n in notices] == [(webhook_id, "127.0.0.1", "ops")]
    assert [e["detail"] for e in received.eventbridge if e["detail-type"] == "Webhook Endpoint Disabled"] == notices
    table_arn_, topic, bus = table_arn(stack), stack.ref("EventsTopic"), arn(stack, "EventBus")
    assert {
        ("dynamodb:BatchWriteItem", table_arn_), ("dynamodb:UpdateItem", table_arn_), ("sns:Publish", topic),
        ("events:PutEvents", bus),
    } <= used(stack, WEBHOOK_DELIVERY)  # fmt: skip


def test_an_endpoint_failing_too_long_is_disabled_and_announced_on_the_delivery_functions_role(
    flow_runs: FlowRuns,
) -> None:
    assert WEBHOOK_DELIVERY in flow_runs.run(disable_flow)


def queue_messages(stack: MotoStack, logical_id: str) -> list[dict[str, Any]]:
    """Every message on the queue, whatever its delay, received and deleted."""
    stack.release_delayed(logical_id, lambda _: True)
    sqs, url = stack.client("sqs"), stack.ref(logical_id)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    )
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return list(messages)


# ---------------------------------------------------------------------------------------------- over-grants
UNCOVERED: dict[str, dict[str, str]] = {
    API: {"dynamodb:BatchGetItem": "a check-now republishing events an earlier invocation stored (outbox)"},
}
"""Granted actions the code needs on paths these flows do not reach, and why."""


def template_grants(stack: MotoStack, function: str) -> list[tuple[str, list[str]]]:
    """(action pattern, resource patterns) of the role's policies from the template's own `Policies`, which SAM
    names <Function>RolePolicy<N> (not those SAM adds for Lambda's own use, such as the async failure destination)."""
    grants = []
    for name, document in stack.roles[function].inline.items():
        if not name.startswith(f"{function}RolePolicy"):
            continue
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            grants.extend((action, [portable_arn(stack, resource) for resource in resources]) for action in actions)
    return grants


FLOWS: tuple[Flow, ...] = (whole_flow, refused_event_flow, discover_flow, webhooks_flow, disable_flow, pause_flow)


def test_no_role_grants_an_action_the_flows_never_use(flow_runs: FlowRuns, enforced_stack: StackFactory) -> None:
    used_by: Used = {}
    for flow in FLOWS:  # a flow that fails fails this check too: what it would have used is unknown
        for function, permissions in flow_runs.run(flow).items():
            used_by.setdefault(function, set()).update(permissions)
    template_stack = enforced_stack()  # after the flows: moto's state is global, one stack at a time
    assert set(used_by) == set(template_stack.roles)
    unused = {
        function: sorted(
            action
            for action, resources in template_grants(template_stack, function)
            if action not in UNCOVERED.get(function, {})
            and not any(
                fnmatch.fnmatchcase(used_action, action) and any(fnmatch.fnmatchcase(where, r) for r in resources)
                for used_action, where in used_by[function]
            )
        )
        for function in template_stack.roles
    }
    assert unused == {function: [] for function in template_stack.roles}, f"granted, never used: {unused}"
