"""Endpoint management through the API function on moto: edit, disable, enable, resend, and the fan-out's filters
and switch with the template's functions and a loopback receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay.aws.webhook_counts import endpoint_item_key
from genviral_relay.models.feed_api import EVENT_ID_HINT
from genviral_relay.models.webhooks import KNOWN_PLATFORMS, WEBHOOK_ID_HINT
from genviral_relay.receivers import sender
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from local.webhook_receiver import WebhookReceiver
from tests.conftest import SECRETS, TOKEN
from tests.functional.test_webhooks import check_now, post_with_outcomes, register
from tests.support.doubles import StaticResolver, SteppingClock

HOOKS = "https://hooks.example.com"
UNKNOWN = "wh_" + "9" * 32


@pytest.fixture
def api_stack(emulator: GenviralEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStack]:
    # The API function resolves the hooks' host to a public address, without DNS
    monkeypatch.setattr(sender, "SystemResolver", lambda: StaticResolver({"hooks.example.com": ["93.184.216.34"]}))
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN) as running:
        yield running


@pytest.fixture
def api(api_stack: MotoStack) -> LocalRunner:
    return LocalRunner(api_stack)


def created(api: LocalRunner, **body: Any) -> dict[str, Any]:
    answer = api.api("POST", "/webhooks", body)
    assert answer.status == 201, answer.body
    SECRETS.add(answer.body["secret"].removeprefix("whsec_"))  # the sentinel: no log line may hold it
    return dict(answer.body)


def test_registration_takes_the_new_fields_and_every_view_shows_them(api: LocalRunner) -> None:
    body = {"url": f"{HOOKS}/a", "filter": {"platforms": ["tiktok"]}, "rate_limit": 2.5}
    endpoint = created(api, **body)
    shown = {"filter", "rate_limit", "format", "enabled", "disabled_at", "disabled_reason"}
    listed = api.api("GET", "/webhooks").body["webhooks"][0]
    for view in (endpoint, api.api("GET", f"/webhooks/{endpoint['id']}").body, listed):
        assert {name: view[name] for name in shown} == {
            "filter": {"platforms": ["tiktok"], "account_ids": None, "error_categories": None, "workspaces": None},
            "rate_limit": 2.5, "format": "standard", "enabled": True, "disabled_at": None, "disabled_reason": None,
        }  # fmt: skip
    refused = api.api("POST", "/webhooks", {"url": f"{HOOKS}/b", "filter": {"platforms": ["myspace"]}})
    assert refused.status == 400
    assert f"known: {', '.join(KNOWN_PLATFORMS)}" in refused.body["message"]


def test_patch_edits_the_fields_given_and_answers_bad_input_clearly(api: LocalRunner) -> None:
    endpoint = created(api, url=f"{HOOKS}/a", description="ops", rate_limit=5)
    other = created(api, url=f"{HOOKS}/b")
    path = f"/webhooks/{endpoint['id']}"

    edited = api.api("PATCH", path, {"description": None, "filter": {"error_categories": ["media_rejected"]}})
    assert edited.status == 200, edited.body
    assert (edited.body["description"], edited.body["rate_limit"]) == (None, 5)
    assert edited.body["filter"]["error_categories"] == ["media_rejected"]
    assert "delivery" in edited.body
    assert "secret" not in edited.body
    assert api.api("GET", path).body["filter"] == edited.body["filter"]

    moved = api.api("PATCH", path, {"url": f"{HOOKS}/c", "event_types": ["post.completed"]})
    assert (moved.status, moved.body["url"], moved.body["event_types"]) == (200, f"{HOOKS}/c", ["post.completed"])
    assert created(api, url=f"{HOOKS}/a")["id"]  # the old URL is free again

    empty = api.api("PATCH", path, {})
    assert (empty.status, empty.body["error"]) == (400, "bad_request")
    assert "url, event_types, filter, description, rate_limit, format" in empty.body["message"]
    taken = api.api("PATCH", path, {"url": other["url"], "event_types": None})
    assert (taken.status, taken.body["error"], taken.body["webhook_id"]) == (409, "webhook_exists", other["id"])
    private = api.api("PATCH", path, {"url": "https://127.0.0.1/hooks"})
    assert (private.status, private.body["error"]) == (400, "bad_request")
    assert api.api("PATCH", path, {"url": None}).body["message"] == "url cannot be null; leave it out to keep it"
    assert api.api("PATCH", path, {"secrets": []}).status == 400
    assert api.api("PATCH", path, {"rate_limit": 0}).status == 400
    missing = api.api("PATCH", f"/webhooks/{UNKNOWN}", {"description": "x"})
    assert (missing.status, missing.body["error"]) == (404, "webhook_not_found")
    assert WEBHOOK_ID_HINT in missing.body["message"]  # the shape: a mistyped id is the usual cause
    assert api.api("PATCH", "/webhooks/wh_nope", {"description": "x"}).body["message"].startswith("a webhook id")


def test_an_empty_filter_is_no_filter_and_the_endpoint_stays_editable(api: LocalRunner) -> None:
    registered = created(api, url=f"{HOOKS}/a", filter={})
    patched = created(api, url=f"{HOOKS}/b")
    assert registered["filter"] is None
    assert api.api("PATCH", f"/webhooks/{patched['id']}", {"filter": {}}).body["filter"] is None
    written = created(api, url=f"{HOOKS}/c")
    api.stack.client("dynamodb").update_item(  # an empty map, as `{}` was stored before it meant no filter
        TableName=api.stack.ref("StateTable"), Key=endpoint_item_key(written["id"]),
        UpdateExpression="SET #f = :empty", ExpressionAttributeNames={"#f": "filter"},
        ExpressionAttributeValues={":empty": {"M": {}}},
    )  # fmt: skip
    for endpoint in (registered, patched, written):
        edited = api.api("PATCH", f"/webhooks/{endpoint['id']}", {"description": "ops"})
        assert (edited.status, edited.body.get("description")) == (200, "ops"), edited.body


def test_disable_and_enable_switch_an_endpoint_once_each_way(api: LocalRunner) -> None:
    endpoint = created(api, url=f"{HOOKS}/a")
    path = f"/webhooks/{endpoint['id']}"

    off = api.api("POST", f"{path}/disable", {"reason": "maintenance"})
    assert off.status == 200, off.body
    assert (off.body["enabled"], off.body["disabled_reason"]) == (False, "maintenance")
    assert off.body["disabled_at"] is not None
    again = api.api("POST", f"{path}/disable")  # no body: off already, kept as it was
    assert (again.status, again.body["disabled_reason"]) == (200, "maintenance")

    refused = api.api("POST", f"{path}/resend", {"event_id": "11111111-1111-1111-1111-111111111111"})
    assert (refused.status, refused.body["error"]) == (409, "webhook_disabled")
    assert f"POST /webhooks/{endpoint['id']}/enable" in refused.body["message"]

    on = api.api("POST", f"{path}/enable")
    assert on.status == 200, on.body
    assert (on.body["webhook"]["enabled"], on.body["webhook"]["disabled_at"], on.body["queued"]) == (True, None, 0)
    assert api.api("POST", f"{path}/enable", {"resend_missed": "sometimes"}).status == 400
    assert api.api("POST", f"/webhooks/{UNKNOWN}/disable").status == 404
    assert api.api("POST", f"/webhooks/{UNKNOWN}/enable").status == 404


def test_resend_refuses_bad_input_before_reading_anything(api: LocalRunner) -> None:
    endpoint = created(api, url=f"{HOOKS}/a")
    path = f"/webhooks/{endpoint['id']}/resend"

    def refusal(body: Any) -> tuple[int, str]:
        answer = api.api("POST", path, body)
        return answer.status, answer.body["message"]

    assert refusal({})[0] == 400
    assert "not both" in refusal({"event_id": "11111111-1111-1111-1111-111111111111", "since": "2026-01-01T00:00Z"})[1]
    assert "is later than until" in refusal({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"})[1]
    assert refusal({"event_id": "e1"})[1].endswith(EVENT_ID_HINT)
    status, message = refusal({"since": "2020-01-01T00:00:00Z"})
    assert status == 400
    assert "older than the retention: events are kept 30 days, since " in message
    assert api.api("POST", f"/webhooks/{UNKNOWN}/resend", {"since": "2026-01-01T00:00:00Z"}).status == 404


# ---------------------------------------------------------------- with the webhook functions


@pytest.fixture
def receivers(relay_clock: SteppingClock) -> Iterator[list[WebhookReceiver]]:
    running = [WebhookReceiver(clock=relay_clock).start() for _ in range(3)]
    try:
        yield running
    finally:
        for receiver in running:
            receiver.stop()


def test_the_fan_out_sends_nothing_to_a_disabled_endpoint_or_one_whose_filter_leaves_the_event_out(
    emulator: GenviralEmulator, relay: LocalRunner, receivers: list[WebhookReceiver]
) -> None:
    everything, instagram_only, off = receivers
    register(relay, everything)
    register(relay, instagram_only, filter={"platforms": ["instagram"]})
    disabled = register(relay, off)
    assert relay.api("POST", f"/webhooks/{disabled['id']}/disable").status == 200

    (event,) = check_now(relay, post_with_outcomes(emulator, relay, failed=1))
    assert event["account"]["platform"] == "tiktok"  # the emulator's accounts
    relay.deliver_webhooks()

    assert [delivery.webhook_id for delivery in everything.received] == [event["event_id"]]
    assert instagram_only.received == []
    assert off.received == []


def test_the_fan_out_sends_an_event_to_the_endpoints_of_its_workspace_only(
    emulator: GenviralEmulator, relay: LocalRunner, receivers: list[WebhookReceiver]
) -> None:
    default_only, acme_only, _ = receivers
    register(relay, default_only, filter={"workspaces": ["default"]})
    acme = register(relay, acme_only, filter={"workspaces": ["acme", "acme"]})
    assert acme["filter"]["workspaces"] == ["acme"]

    (event,) = check_now(relay, post_with_outcomes(emulator, relay, failed=1))
    relay.deliver_webhooks()

    assert event["workspace"] == "default"  # a single-workspace stack's
    assert [delivery.webhook_id for delivery in default_only.received] == [event["event_id"]]
    assert acme_only.received == []
    refused = relay.api("POST", "/webhooks", {"url": f"{HOOKS}/x", "filter": {"workspaces": ["Acme"]}})
    assert (refused.status, refused.body["error"]) == (400, "bad_request")
    assert refused.body["message"].startswith("invalid body: filter.workspaces.0: String should match pattern")


def test_the_fan_out_records_filtered_and_disabled_deliveries(
    emulator: GenviralEmulator, relay: LocalRunner, local_stack: MotoStack, receivers: list[WebhookReceiver]
) -> None:
    from genviral_relay.aws.delivery_log import DynamoDbDeliveryLog  # type: ignore[import-not-found,unused-ignore]

    filtered = register(relay, receivers[0], filter={"account_ids": ["not-an-account-of-the-post"]})
    disabled = register(relay, receivers[1])
    relay.api("POST", f"/webhooks/{disabled['id']}/disable")
    (event,) = check_now(relay, post_with_outcomes(emulator, relay, failed=1))
    relay.deliver_webhooks()

    log = DynamoDbDeliveryLog(local_stack.client("dynamodb"), local_stack.ref("StateTable"),
                              event_retention=timedelta(days=30))  # fmt: skip
    states = {state.webhook_id: state.state for state in log.deliveries(event["event_id"])}
    assert states == {filtered["id"]: "filtered", disabled["id"]: "disabled"}


def test_a_resent_event_arrives_again_with_its_id_and_body_and_a_fresh_signature(
    emulator: GenviralEmulator, relay: LocalRunner, receivers: list[WebhookReceiver], relay_clock: SteppingClock
) -> None:
    receiver = receivers[0]
    endpoint = register(relay, receiver)
    (event,) = check_now(relay, post_with_outcomes(emulator, relay, posted=1))
    relay.deliver_webhooks()
    relay_clock.now += timedelta(minutes=5)

    one = relay.api("POST", f"/webhooks/{endpoint['id']}/resend", {"event_id": event["event_id"]})
    assert (one.status, one.body) == (202, {"queued": 1})
    since = (relay_clock.now - timedelta(hours=1)).isoformat()
    ranged = relay.api("POST", f"/webhooks/{endpoint['id']}/resend", {"since": since})
    assert (ranged.status, ranged.body) == (202, {"queued": 1})
    relay.deliver_webhooks()

    first, *again = receiver.received
    assert len(again) == 2
    assert all(delivery.verified for delivery in receiver.received)
    assert {delivery.webhook_id for delivery in again} == {event["event_id"]}
    assert {delivery.body for delivery in again} == {first.body}
    assert json.loads(first.body) == event
    assert {delivery.headers["webhook-timestamp"] for delivery in again} != {first.headers["webhook-timestamp"]}
    unknown = relay.api(
        "POST", f"/webhooks/{endpoint['id']}/resend", {"event_id": "11111111-1111-4111-8111-111111111111"}
    )
    assert (unknown.status, unknown.body["error"]) == (404, "not_found")
