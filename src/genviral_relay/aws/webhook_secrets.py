"""Webhook signing keys sealed with KMS, which only the API (Encrypt) and the delivery function (Decrypt) may use.

Each key is encrypted directly (32 bytes; KMS takes up to 4 KB, so no data key is needed) under the stack's key or
`WebhookSecretsKmsKeyArn`, with the encryption context {"webhook_id": <its endpoint>}: a sealed key copied onto
another endpoint's item does not open.

Opened keys are kept in memory for `CACHE_SECONDS` per execution environment: an endpoint's deliveries come in bursts
(a post's accounts, its completion, a retry schedule) and each Decrypt is a billed request (USD 0.03 per 10,000);
the bound also limits how long a key whose KMS access is revoked keeps signing in a warm function.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from genviral_relay.errors import WebhookSecretError
from genviral_relay.models.webhooks import is_plaintext_secret
from genviral_relay.webhooks.ports import SecretBox

SEALED_PREFIX = "kms:"
"""What a sealed key starts with in the table (a 0.4 key in the clear starts with `whsec_`)."""
CACHE_SECONDS = 300.0
MAX_CACHED = 1000
"""Well over 100 endpoints with a rotated-out key each."""


def _context(webhook_id: str) -> dict[str, str]:
    return {"webhook_id": webhook_id}


class KmsSecretBox(SecretBox):
    def __init__(
        self,
        client: Any,  # a KMS client (the pinned stubs have no KMS package)
        key_id: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._client = client
        self._key = key_id
        self._monotonic = monotonic
        self._cache_seconds = cache_seconds
        self._opened: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()  # the delivery function attempts a batch on several threads

    def seal(self, webhook_id: str, secret: str) -> str:
        try:
            answer = self._client.encrypt(
                KeyId=self._key, Plaintext=secret.encode(), EncryptionContext=_context(webhook_id)
            )
        except (ClientError, BotoCoreError) as error:
            raise WebhookSecretError(f"could not seal the signing key of {webhook_id}: {_code(error)}") from None
        return SEALED_PREFIX + base64.b64encode(answer["CiphertextBlob"]).decode()

    def open(self, webhook_id: str, sealed: str) -> str:
        if is_plaintext_secret(sealed):
            return sealed  # shim: plaintext-webhook-secrets (docs/compatibility.md)
        if not sealed.startswith(SEALED_PREFIX):
            raise WebhookSecretError(f"the signing key of {webhook_id} is neither sealed nor a key")
        now = self._monotonic()
        with self._lock:
            cached = self._opened.get((webhook_id, sealed))
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            opened = self._decrypt(webhook_id, base64.b64decode(sealed.removeprefix(SEALED_PREFIX)))
        except (ClientError, BotoCoreError, ValueError) as error:
            raise WebhookSecretError(f"could not open the signing key of {webhook_id}: {_code(error)}") from None
        with self._lock:
            if len(self._opened) >= MAX_CACHED:
                self._opened = {key: kept for key, kept in self._opened.items() if kept[1] > now}
            self._opened[(webhook_id, sealed)] = (opened, now + self._cache_seconds)
        return opened

    def _decrypt(self, webhook_id: str, ciphertext: bytes) -> str:
        """Under the configured key; a key sealed under another one (`WebhookSecretsKmsKeyArn` changed since) under
        the key its ciphertext names, which opens only where an IAM policy grants this role kms:Decrypt on it
        (docs/webhooks.md, "Changing the key"). KMS answers such a key IncorrectKeyException, or AccessDenied
        when it checks the role first."""
        request = {"CiphertextBlob": ciphertext, "EncryptionContext": _context(webhook_id)}
        try:
            answer = self._client.decrypt(KeyId=self._key, **request)
        except ClientError as error:
            if _code(error) not in _ANOTHER_KEY:
                raise
            answer = self._client.decrypt(**request)
        return str(answer["Plaintext"].decode())


_ANOTHER_KEY = ("IncorrectKeyException", "AccessDeniedException")


def _code(error: Exception) -> str:
    """What went wrong, by its code only: the SDK's message is left out of error answers and logs."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
