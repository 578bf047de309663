"""The webhook queues in the template: who may send to them (their queue policies, a second wall behind the roles
and behind the delivery function's rule of signing only stored events), and how far their functions scale."""

from __future__ import annotations

from typing import Any

import pytest

from local.roles import transformed_template
from local.template import load_template

TEMPLATE = load_template()
FUNCTIONS = sorted(
    logical_id for logical_id, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
)
PRODUCERS = {
    "WebhookFanoutQueue": {"WorkerFunction", "ApiFunction"},  # the outbox's webhooks target
    "WebhookDeliveryQueue": {"WebhookDispatcherFunction", "ApiFunction", "WebhookDeliveryFunction"},
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _roles(values: list[Any]) -> set[str]:
    """`<Function>Role.Arn` references, by function."""
    functions = set()
    for value in values:
        role, attribute = value["Fn::GetAtt"]
        assert (attribute, role.endswith("Role")) == ("Arn", True), value
        functions.add(role.removesuffix("Role"))
    return functions


def queue_policy(queue: str) -> dict[str, Any]:
    (policy,) = [
        r["Properties"]
        for r in TEMPLATE["Resources"].values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and r["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    assert "Condition" not in policy
    return dict(policy["PolicyDocument"])


def granted_senders(queue: str) -> set[str]:
    """The functions whose roles, as the SAM transform builds them, grant sqs:SendMessage on the queue."""
    transformed = transformed_template()["Resources"]
    senders = set()
    for function in FUNCTIONS:
        role = transformed[f"{function}Role"]["Properties"]
        for policy in role.get("Policies", []):
            for statement in policy.get("PolicyDocument", {}).get("Statement", []):
                if "sqs:SendMessage" in _listed(statement["Action"]) and {"Fn::GetAtt": [queue, "Arn"]} in _listed(
                    statement["Resource"]
                ):
                    senders.add(function)
    return senders


@pytest.mark.parametrize("queue", sorted(PRODUCERS))
def test_a_webhook_queue_lets_its_producers_send_by_name_and_denies_the_stacks_other_functions(queue: str) -> None:
    allow, deny = queue_policy(queue)["Statement"]
    arn = {"Fn::GetAtt": [queue, "Arn"]}
    assert (allow["Effect"], allow["Action"], allow["Resource"]) == ("Allow", "sqs:SendMessage", arn)
    assert _roles(_listed(allow["Principal"]["AWS"])) == PRODUCERS[queue]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Resource"] == arn
    assert _roles(_listed(deny["Condition"]["ArnEquals"]["aws:PrincipalArn"])) == set(FUNCTIONS) - PRODUCERS[queue]


@pytest.mark.parametrize("queue", sorted(PRODUCERS))
def test_the_queue_policy_names_exactly_the_functions_whose_roles_send_to_it(queue: str) -> None:
    assert granted_senders(queue) == PRODUCERS[queue]


def test_both_webhook_functions_scale_to_webhook_max_concurrency_at_most() -> None:
    parameter = TEMPLATE["Parameters"]["WebhookMaxConcurrency"]
    # Lambda's bounds for an SQS event source's MaximumConcurrency: 2 to 1000
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (
        "Number", 10, 2, 1000
    )  # fmt: skip
    mappings = {
        r["Properties"]["FunctionName"]["Ref"]: r["Properties"]
        for r in transformed_template()["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    for function in ("WebhookDispatcherFunction", "WebhookDeliveryFunction"):
        assert mappings[function]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WebhookMaxConcurrency"}}
