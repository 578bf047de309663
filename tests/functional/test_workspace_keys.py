"""The workspaces' keys read from Secrets Manager (`aws/secrets.py`) on moto: one cached read serves every
workspace, a refresh reads again, a workspace the secret no longer names has no key, and a bad secret is logged
once per distinct problem, with no key in the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from genviral_relay.aws.secrets import SecretsManagerWorkspaceKeys
from genviral_relay.errors import TokenUnavailableError
from genviral_relay.factories import build_token_source
from tests.conftest import SECRETS, SecretSentinel

ACME, BETA, GAMMA = "gva_live_acme.0a1b2c3d", "gva_live_beta.4e5f6a7b", "gva_live_gamma.8c9d0e1f"
PROBLEM_LINE = "The Genviral secret is not a usable configuration; Genviral calls pause until it is fixed"


class Secret:
    """A secret on moto, its reads counted on the SDK calls themselves."""

    def __init__(self, value: str) -> None:
        self.client: Any = boto3.client("secretsmanager", region_name="us-east-1")
        self.arn: str = self.client.create_secret(Name="genviral/partner-api", SecretString=value)["ARN"]
        self.reads = 0
        self.client.meta.events.register("before-call.secrets-manager.GetSecretValue", self._count)

    def _count(self, **_: Any) -> None:
        self.reads += 1

    def put(self, value: str) -> None:
        self.client.put_secret_value(SecretId=self.arn, SecretString=value)

    def keys(self) -> SecretsManagerWorkspaceKeys:
        return SecretsManagerWorkspaceKeys(self.client, self.arn)


@pytest.fixture
def secret() -> Iterator[Secret]:
    SECRETS.update({ACME, BETA, GAMMA})
    with mock_aws():
        yield Secret(json.dumps({"workspaces": {"beta": BETA, "acme": ACME}}))


def problem_lines(sentinel: SecretSentinel) -> list[str]:
    return [text for _, text in sentinel.rendered if PROBLEM_LINE in text]


def test_one_read_serves_every_workspace_s_names_and_keys(secret: Secret) -> None:
    keys = secret.keys()

    assert keys.names() == ("acme", "beta")
    assert keys.token_source("acme").token() == ACME
    assert keys.token_source("beta").token() == BETA
    assert secret.reads == 1


def test_a_refresh_reads_the_secret_again_and_sees_a_workspace_added_or_removed(secret: Secret) -> None:
    keys = secret.keys()
    assert keys.names() == ("acme", "beta")
    secret.put(json.dumps({"workspaces": {"acme": ACME, "gamma": GAMMA}}))

    assert keys.names() == ("acme", "beta")  # cached: within the secret's cache time
    assert keys.names(refresh=True) == ("acme", "gamma")
    assert keys.token_source("gamma").token() == GAMMA
    with pytest.raises(TokenUnavailableError, match="the Genviral secret no longer names workspace beta"):
        keys.token_source("beta").token()
    assert secret.reads == 2


def test_a_token_refresh_after_a_401_reads_the_secret_again(secret: Secret) -> None:
    source = secret.keys().token_source("acme")
    assert source.token() == ACME
    secret.put(json.dumps({"workspaces": {"acme": GAMMA}}))  # rotated

    assert source.token(refresh=True) == GAMMA
    assert secret.reads == 2


@pytest.mark.parametrize(
    "value", [ACME, json.dumps(ACME), json.dumps({"token": ACME})], ids=["plain", "string", "token"]
)
def test_a_04_secret_is_the_default_workspace_as_the_functions_build_it(secret: Secret, value: str) -> None:
    secret.put(value)

    assert build_token_source(secret.arn, client=lambda _: secret.client).token() == ACME
    assert secret.keys().names() == ("default",)


def test_a_bad_secret_is_logged_once_per_distinct_problem_and_never_with_a_key(
    secret: Secret, secret_sentinel: SecretSentinel
) -> None:
    keys = secret.keys()
    secret.put(json.dumps({"workspaces": {"Acme": ACME, "beta": BETA}}))

    for _ in range(3):
        with pytest.raises(TokenUnavailableError, match='"Acme"'):
            keys.names(refresh=True)
        with pytest.raises(TokenUnavailableError):
            keys.token_source("beta").token(refresh=True)
    (line,) = problem_lines(secret_sentinel)
    assert '"Acme"' in line
    assert "ERROR" in line

    secret.put('{"workspaces": {}}')  # another problem: logged once more
    for _ in range(2):
        with pytest.raises(TokenUnavailableError, match="empty"):
            keys.names(refresh=True)
    assert len(problem_lines(secret_sentinel)) == 2

    secret.put(json.dumps({"workspaces": {"acme": ACME}}))  # fixed
    assert keys.names(refresh=True) == ("acme",)
    assert len(problem_lines(secret_sentinel)) == 2
    # the autouse sentinel fails the test if any record held ACME or BETA


def test_an_unreadable_secret_says_the_aws_error_code(secret: Secret) -> None:
    keys = secret.keys()
    secret.client.delete_secret(SecretId=secret.arn, ForceDeleteWithoutRecovery=True)

    with pytest.raises(TokenUnavailableError) as caught:
        keys.names(refresh=True)

    assert caught.value.summary == "the Genviral secret could not be read"
    assert caught.value.aws_error_code == "ResourceNotFoundException"
