"""The Genviral keys, read from Secrets Manager through Powertools parameters (cached in memory): one read of the
secret serves every workspace (its forms: `aws/secret_forms.py`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from genviral_relay.aws.secret_forms import parse_workspaces
from genviral_relay.checking.ports import TokenSource, WorkspaceKeys
from genviral_relay.errors import TokenUnavailableError
from genviral_relay.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

DEFAULT_MAX_AGE_SECONDS = 300


def aws_error_code(error: GetParameterError) -> str | None:
    """The SDK's error code behind Powertools' error (`AccessDeniedException`), or the failure's class name."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code") or "") or None
    return type(cause).__name__ if cause is not None else None


class SecretsManagerWorkspaceKeys(WorkspaceKeys):
    def __init__(
        self, client: SecretsManagerClient, secret_arn: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS
    ) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._secret_arn = secret_arn
        self._max_age = max_age
        self._parsed: tuple[str, dict[str, str]] | None = None
        """The last value read and its keys: a cached value is not parsed again."""
        self._reported: set[str] = set()
        """The configuration errors already logged by this execution environment (each is logged once)."""
        self._lock = threading.Lock()  # the worker's checks read keys on several threads

    def names(self, *, refresh: bool = False) -> tuple[str, ...]:
        return tuple(self.keys(refresh=refresh))

    def token_source(self, workspace: str) -> TokenSource:
        return _WorkspaceToken(self, workspace)

    def keys(self, *, refresh: bool = False) -> dict[str, str]:
        """Each workspace's key, by name (sorted); `TokenUnavailableError` when the secret cannot be read or is not
        a usable configuration (logged once per distinct problem: each call would otherwise repeat it)."""
        value = self._read(refresh)
        with self._lock:
            if self._parsed is not None and self._parsed[0] == value:
                return self._parsed[1]
            try:
                keys = parse_workspaces(value)
            except TokenUnavailableError as error:
                if error.problem not in self._reported:
                    self._reported.add(error.problem)
                    logger.error(
                        "The Genviral secret is not a usable configuration; Genviral calls pause until it is fixed",
                        extra={"problem": error.problem},
                    )
                raise
            self._parsed = (value, keys)
            return keys

    def _read(self, refresh: bool) -> str:
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
        return value


class _WorkspaceToken(TokenSource):
    """One workspace's key, read from the (cached) secret when a call needs it."""

    def __init__(self, keys: SecretsManagerWorkspaceKeys, workspace: str) -> None:
        self._keys = keys
        self._workspace = workspace

    def token(self, *, refresh: bool = False) -> str:
        token = self._keys.keys(refresh=refresh).get(self._workspace)
        if token is None:
            raise TokenUnavailableError(f"the Genviral secret no longer names workspace {self._workspace}")
        return token
