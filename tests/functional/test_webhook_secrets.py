"""Where the webhook signing secrets are: sealed with KMS in the table, opened only by the delivery function.

moto enforces the roles' IAM policies (local/roles.py) but not a key's policy, so the proof has two halves: the
transformed template's key policy delegates to IAM alone and only the API's and the delivery function's roles are
granted the key (kms:Encrypt and kms:Decrypt); and with IAM enforced, every other function's role can read an
endpoint's item yet is refused Decrypt of its secret, while the delivery function signs and the reference
receiver verifies."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from genviral_relay.aws.webhook_counts import endpoint_item_key
from genviral_relay.aws.webhook_secrets import SEALED_PREFIX, KmsSecretBox
from genviral_relay.errors import WebhookSecretError
from local.emulator import GenviralEmulator
from local.roles import function_roles, transformed_template
from local.runner import API, POLLER, WEBHOOK_DELIVERY, WEBHOOK_DISPATCHER, WORKER, LocalRunner
from local.stack import MotoStack
from local.webhook_receiver import WebhookReceiver
from tests.conftest import SECRETS, TOKEN

FUNCTIONS = (POLLER, WORKER, API, WEBHOOK_DISPATCHER, WEBHOOK_DELIVERY)


@pytest.fixture
def enforced(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    stack = MotoStack(
        genviral_api_url=emulator.base_url,
        token=TOKEN,
        parameters={"AllowPrivateWebhookUrls": "true"},
        enforce_iam=True,
    )
    with stack:
        yield stack
        assert stack.enforcement is not None
        assert stack.enforcement.take_denials() == [], "a refusal the test did not expect"


def key_arn(stack: MotoStack) -> str:
    return stack.resolver.attributes[("WebhookSecretsKey", "Arn")]


def kms_grants(properties: dict[str, Any]) -> set[tuple[str, str]]:
    """(action, resource) of the role's kms: statements."""
    found = set()
    for policy in properties.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            found |= {(action, json.dumps(statement["Resource"])) for action in actions if action.startswith("kms:")}
    return found


def test_the_key_policy_delegates_to_iam_and_only_the_api_and_the_delivery_function_may_use_the_key(
    enforced: MotoStack,
) -> None:
    key = transformed_template()["Resources"]["WebhookSecretsKey"]
    (statement,) = key["Properties"]["KeyPolicy"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Allow", "kms:*", "*")
    assert key["DeletionPolicy"] == "Retain"
    # as the stack made them: the roles of every function
    granted = {
        function: kms_grants(properties) for function, (_, properties) in function_roles(enforced.resolver).items()
    }
    arn = json.dumps(key_arn(enforced))
    assert granted == {
        POLLER: set(),
        WORKER: set(),
        WEBHOOK_DISPATCHER: set(),
        API: {("kms:Encrypt", arn)},
        WEBHOOK_DELIVERY: {("kms:Decrypt", arn)},
    }


def test_no_function_but_the_delivery_function_can_open_a_secret_and_it_signs_what_the_receiver_verifies(
    enforced: MotoStack,
) -> None:
    runner = LocalRunner(enforced)
    with WebhookReceiver() as receiver:
        created = runner.api("POST", "/webhooks", {"url": receiver.url})
        assert created.status == 201, created.body
        secret = created.body["secret"]
        SECRETS.add(secret.removeprefix("whsec_"))
        receiver.trust(secret)

        # The table holds the secret sealed, not the secret
        item = enforced.client("dynamodb").get_item(
            TableName=enforced.ref("StateTable"), Key=endpoint_item_key(created.body["id"])
        )["Item"]
        (stored,) = [entry["M"]["value"]["S"] for entry in item["secrets"]["L"]]
        assert stored.startswith(SEALED_PREFIX)
        assert secret not in json.dumps(item)
        assert secret.removeprefix("whsec_") not in json.dumps(item)

        # Each other function's role reads the item (its grants allow it), and is refused the secret
        for function in (POLLER, WORKER, API, WEBHOOK_DISPATCHER):
            box = KmsSecretBox(enforced.client_as(function, "kms"), key_arn(enforced))
            with pytest.raises(WebhookSecretError, match="AccessDeniedException"):
                box.open(created.body["id"], stored)
        assert enforced.enforcement is not None
        denials = enforced.enforcement.take_denials()
        assert {(d.principal.split("/")[-1], d.action, d.resource) for d in denials} == {
            (function, "kms:Decrypt", key_arn(enforced)) for function in (POLLER, WORKER, API, WEBHOOK_DISPATCHER)
        }
        direct = enforced.client_as(WORKER, "kms")
        with pytest.raises(ClientError) as refused:  # the SDK's own call, as anyone holding the item could try
            direct.decrypt(
                CiphertextBlob=base64.b64decode(stored.removeprefix(SEALED_PREFIX)),
                EncryptionContext={"webhook_id": created.body["id"]},
                KeyId=key_arn(enforced),
            )
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        enforced.enforcement.take_denials()

        # The delivery function opens it and signs; the reference library verifies
        assert runner.api("POST", f"/webhooks/{created.body['id']}/test").status == 202
        runner.deliver_webhooks()
        (delivery,) = receiver.received
        assert delivery.verified


def test_a_sealed_secret_copied_onto_another_endpoint_does_not_open(stack: MotoStack) -> None:
    box = KmsSecretBox(stack.client("kms"), key_arn(stack))
    sealed = box.seal("wh_" + "1" * 32, "whsec_c2VjcmV0")

    assert box.open("wh_" + "1" * 32, sealed) == "whsec_c2VjcmV0"
    with pytest.raises(
        WebhookSecretError, match=r"could not open the signing key of wh_2+: InvalidCiphertextException"
    ):
        box.open("wh_" + "2" * 32, sealed)


def test_opened_secrets_are_kept_for_a_while_then_opened_again(stack: MotoStack) -> None:
    now = [0.0]
    client = stack.client("kms")
    calls: list[str] = []

    def count(**_: Any) -> None:
        calls.append("decrypt")

    client.meta.events.register("before-call.kms.Decrypt", count)
    box = KmsSecretBox(client, key_arn(stack), monotonic=lambda: now[0], cache_seconds=300)
    sealed = box.seal("wh_" + "1" * 32, "whsec_c2VjcmV0")
    try:
        for at in (0.0, 299.0, 301.0):
            now[0] = at
            assert box.open("wh_" + "1" * 32, sealed) == "whsec_c2VjcmV0"
    finally:
        client.meta.events.unregister("before-call.kms.Decrypt", count)
    assert len(calls) == 2


def test_an_endpoint_registered_by_0_4_has_its_secret_sealed_in_place_by_the_first_webhook_request(
    enforced: MotoStack,
) -> None:
    legacy = "whsec_" + base64.b64encode(b"0.4 secret of 32 bytes, or so.." * 1).decode()
    SECRETS.add(legacy.removeprefix("whsec_"))
    with WebhookReceiver() as receiver:
        webhook_id = "wh_" + "4" * 32
        dynamodb, table = enforced.client("dynamodb"), enforced.ref("StateTable")
        dynamodb.put_item(  # as 0.4 wrote it: the secret in the clear, no subscription, no count
            TableName=table,
            Item={
                **endpoint_item_key(webhook_id),
                "url": {"S": receiver.url},
                "created_at": {"S": "2026-03-01T12:00:00.000Z"},
                "secrets": {"L": [{"M": {"value": {"S": legacy}}}]},
                "attempts_pending": {"N": "0"},
            },
        )
        receiver.trust(legacy)  # what the receiver holds, and keeps
        runner = LocalRunner(enforced)

        listed = runner.api("GET", "/webhooks")  # the first request to the webhook routes, on the API's role

        assert [webhook["id"] for webhook in listed.body["webhooks"]] == [webhook_id]
        item = dynamodb.get_item(TableName=table, Key=endpoint_item_key(webhook_id))["Item"]
        (stored,) = [entry["M"]["value"]["S"] for entry in item["secrets"]["L"]]
        assert stored.startswith(SEALED_PREFIX)
        assert legacy not in json.dumps(item)
        assert legacy.removeprefix("whsec_") not in json.dumps(item)
        for function in (POLLER, WORKER, API, WEBHOOK_DISPATCHER):
            box = KmsSecretBox(enforced.client_as(function, "kms"), key_arn(enforced))
            with pytest.raises(WebhookSecretError, match="AccessDeniedException"):
                box.open(webhook_id, stored)
        assert enforced.enforcement is not None
        assert {d.action for d in enforced.enforcement.take_denials()} == {"kms:Decrypt"}

        # The delivery function opens it: the same key, which the receiver verifies
        assert runner.api("POST", f"/webhooks/{webhook_id}/test").status == 202
        runner.deliver_webhooks()
        rotated = runner.api("POST", f"/webhooks/{webhook_id}/rotate-secret")
        SECRETS.add(rotated.body["secret"].removeprefix("whsec_"))
        assert runner.api("POST", f"/webhooks/{webhook_id}/test").status == 202
        runner.deliver_webhooks()

        first, second = receiver.received
        assert first.verified
        assert len(first.headers["webhook-signature"].split(" ")) == 1
        assert second.verified  # by the 0.4 secret, which signs beside the new one for a day
        assert len(second.headers["webhook-signature"].split(" ")) == 2


def test_a_secret_sealed_under_the_previous_key_opens_only_where_that_key_is_still_granted(
    enforced: MotoStack,
) -> None:
    """`WebhookSecretsKmsKeyArn` changed after endpoints were registered: their secrets are sealed under the
    previous key. The delivery function opens them under the key their ciphertext names, where its role is granted
    kms:Decrypt on that key too (docs/webhooks.md, "Changing the key")."""
    previous = enforced.client("kms").create_key()["KeyMetadata"]["Arn"]
    webhook_id = "wh_" + "5" * 32
    sealed = KmsSecretBox(enforced.client("kms"), previous).seal(webhook_id, "whsec_c2VjcmV0")
    delivery = KmsSecretBox(enforced.client_as(WEBHOOK_DELIVERY, "kms"), key_arn(enforced))
    with pytest.raises(WebhookSecretError, match="AccessDeniedException"):
        delivery.open(webhook_id, sealed)
    assert enforced.enforcement is not None
    assert {(d.action, d.resource) for d in enforced.enforcement.take_denials()} == {("kms:Decrypt", previous)}

    role = enforced.roles[WEBHOOK_DELIVERY].name
    enforced.client("iam").put_role_policy(
        RoleName=role,
        PolicyName="PreviousWebhookSecretsKey",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": previous}]}
        ),
    )
    assert delivery.open(webhook_id, sealed) == "whsec_c2VjcmV0"
    with pytest.raises(WebhookSecretError, match="InvalidCiphertextException"):  # still bound to its endpoint
        delivery.open("wh_" + "6" * 32, sealed)
