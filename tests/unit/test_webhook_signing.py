"""The relay's Standard Webhooks signer agrees with the reference library (`standardwebhooks`), both ways."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from genviral_relay.rules.webhook_signing import new_secret, signature, signed_headers

NOW = datetime.now(UTC).replace(microsecond=0)


@given(message_id=st.text(min_size=1, max_size=40).filter(lambda text: "." not in text and text.isprintable()),
       body=st.text(max_size=200))  # fmt: skip
def test_the_signature_is_the_reference_librarys(message_id: str, body: str) -> None:
    secret = new_secret()
    timestamp = int(NOW.timestamp())
    assert signature(secret, message_id, timestamp, body.encode()) == Webhook(secret).sign(message_id, NOW, body)


def test_the_reference_library_verifies_a_delivery_signed_with_the_current_and_the_previous_key() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"event_id":"e1","event_type":"post.account.posted"}'
    # Now, not at import: the library refuses a timestamp five minutes off its clock, and the suite runs longer
    headers = signed_headers([new, old], "e1", int(datetime.now(UTC).timestamp()), body)
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, dict(headers)) == {"event_id": "e1", "event_type": "post.account.posted"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, dict(headers))
    with pytest.raises(WebhookVerificationError):  # one byte changed
        Webhook(new).verify(body.replace(b"e1", b"e2", 1), dict(headers))


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_an_unpadded_secret_signs_as_the_library_reads_it() -> None:
    padded = "whsec_" + base64.b64encode(b"k" * 25).decode()
    assert padded.endswith("=")
    unpadded = padded.rstrip("=")
    assert (
        signature(unpadded, "m", 1, b"{}")
        == signature(padded, "m", 1, b"{}")
        == Webhook(unpadded).sign("m", datetime.fromtimestamp(1, UTC), "{}")
    )
