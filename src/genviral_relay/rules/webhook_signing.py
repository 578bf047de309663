"""Standard Webhooks signatures (standardwebhooks.com), written out rather than imported: ten lines of the
standard library, so the functions' artifact gains no dependency. tests/unit/test_webhook_signing.py holds
them to the reference library (`standardwebhooks`), which verifies every delivery in the tests.

`webhook-signature` is `v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the
base64-decoded part of the secret after `whsec_`; several keys (a rotation) give a space-separated list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence

from genviral_relay.models.webhooks import SECRET_PREFIX

SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(keys: Sequence[str], message_id: str, timestamp: int, body: bytes) -> Mapping[str, str]:
    """The headers of one attempt, signed with every key in `keys` (newest first)."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(key, message_id, timestamp, body) for key in keys),
    }
