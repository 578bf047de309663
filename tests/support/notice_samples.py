"""A document of each notice type (`account.*`, `relay.*`), built from the models: for the specs of their
delivery and of their chat messages (the committed samples under events/outbound are the docs')."""

from __future__ import annotations

from genviral_relay.models.events import AccountRef
from genviral_relay.models.relay_notices import NOTICE_DETAIL_TYPES, AccountStatusEvent, PostsAtRisk, RelayStateEvent

TIKTOK = AccountRef(id="0f4f54d4-8cce-4fb7-8c7b-befbcb8af812", platform="tiktok", username="brand",
                    display_name="Brand", type="byo")  # fmt: skip
AT_RISK = tuple(f"{n}{n}{n}{n}{n}{n}{n}{n}-2222-4222-8222-22222222222{n}" for n in range(1, 8))
"""Seven watched posts, soonest first."""
REASON = "Genviral refused the key: payment required"
NOTICES: dict[str, AccountStatusEvent | RelayStateEvent] = {
    "account.disconnected": AccountStatusEvent(
        event_id="5b0f3c1e-6f0a-5c53-9d0e-3a1c2b4d5e61", event_type="account.disconnected",
        detected_at="2025-02-01T14:07:12.301Z", account_id=TIKTOK.id, account=TIKTOK, status="revoked",
        previous_status="active", posts_at_risk=PostsAtRisk(count=len(AT_RISK), post_ids=AT_RISK),
    ),
    "account.reconnected": AccountStatusEvent(
        event_id="0c9e2d7a-3b4f-5e81-a2c6-7d8e9f0a1b23", event_type="account.reconnected",
        detected_at="2025-02-01T14:52:40.118Z", account_id=TIKTOK.id, account=TIKTOK, status="active",
        previous_status="revoked", posts_at_risk=PostsAtRisk(count=2, post_ids=AT_RISK[:2]),
    ),
    "relay.paused": RelayStateEvent(
        event_id="7e1d4c2b-9a8f-5b6e-8d3c-1f2e3d4c5b6a", event_type="relay.paused",
        detected_at="2025-02-01T09:00:03.877Z", reason=REASON, http_status=402, until="2025-02-01T09:15:03Z",
        paused_at="2025-02-01T09:00:03Z",
    ),
    "relay.resumed": RelayStateEvent(
        event_id="3a2b1c0d-4e5f-5a6b-9c7d-8e9f0a1b2c3d", event_type="relay.resumed",
        detected_at="2025-02-01T09:15:04.220Z", reason=REASON, http_status=402, until=None,
        paused_at="2025-02-01T09:00:03Z",
    ),
}  # fmt: skip
assert set(NOTICES) == set(NOTICE_DETAIL_TYPES)


def notice(event_type: str, event_id: str | None = None, **fields: object) -> AccountStatusEvent | RelayStateEvent:
    """The sample of `event_type`, under `event_id` and with `fields` changed when given."""
    sample = NOTICES[event_type]
    update = {**fields, **({"event_id": event_id} if event_id is not None else {})}
    return type(sample).model_validate({**sample.model_dump(), **update})
