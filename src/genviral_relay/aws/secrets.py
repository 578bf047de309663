"""The Genviral token, read from Secrets Manager through Powertools parameters (cached in memory)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from genviral_relay.checking.ports import TokenSource
from genviral_relay.errors import TokenUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

DEFAULT_MAX_AGE_SECONDS = 300


def parse_token(secret_value: str) -> str:
    """The secret holds the token as plain text or as JSON `{"token": "..."}`. Messages never quote it."""
    text = secret_value.strip()
    if text.startswith('"'):  # a JSON string: the token without its quotes
        try:
            text = str(json.loads(text)).strip()
        except ValueError:
            raise TokenUnavailableError("the Genviral secret looks like a JSON string but does not parse") from None
    elif text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise TokenUnavailableError("the Genviral secret looks like JSON but does not parse") from None
        token = document.get("token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise TokenUnavailableError('the Genviral secret is JSON without a non-empty "token" string')
        return token.strip()
    if not text:
        raise TokenUnavailableError("the Genviral secret is empty")
    return text


def aws_error_code(error: GetParameterError) -> str | None:
    """The SDK's error code behind Powertools' error (`AccessDeniedException`), or the failure's class name."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code") or "") or None
    return type(cause).__name__ if cause is not None else None


class SecretsManagerTokenSource(TokenSource):
    def __init__(
        self, client: SecretsManagerClient, secret_arn: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS
    ) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._secret_arn = secret_arn
        self._max_age = max_age

    def token(self, *, refresh: bool = False) -> str:
        try:
            value = self._provider.get(self._secret_arn, max_age=self._max_age, force_fetch=refresh)
        except GetParameterError as error:
            # Powertools wraps the SDK error (raised while handling it: its context); its text names the
            # secret, never its value.
            raise TokenUnavailableError(
                "the Genviral secret could not be read", aws_error_code=aws_error_code(error), detail=str(error)
            ) from None
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if not isinstance(value, str):
            raise TokenUnavailableError("the Genviral secret has no string value")
        return parse_token(value)
