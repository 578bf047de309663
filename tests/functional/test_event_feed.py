"""The event feed on moto through the API function and the CLI: what the check committed is served in commit order
once settled, `next` moves on, bad input is a clear 4xx, and one event's story lists its webhook deliveries."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay.aws.delivery_log import DynamoDbDeliveryLog
from genviral_relay.models.domain import POST_ID_HINT
from genviral_relay.models.event_log import DeliveryState
from genviral_relay.models.feed_api import EVENT_ID_HINT
from genviral_relay.rules.cursors import encode_cursor
from genviral_relay.rules.event_feed import FEED_SETTLE, end_of
from genviral_relay.webhooks.ports import DeliveryLog
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.functional.test_cli import Cli
from tests.support.doubles import SteppingClock

RETENTION = timedelta(days=30)
UNKNOWN_EVENT = "2f1c6e0e-8c9a-5d2b-9a51-0c7f3e1d4b6a"


@pytest.fixture
def deliveries(local_stack: MotoStack) -> DeliveryLog:
    """The deployment's delivery log, to record what the story then reads."""
    return DynamoDbDeliveryLog(local_stack.client("dynamodb"), local_stack.ref("StateTable"), event_retention=RETENTION)


def events_found(emulator: GenviralEmulator, relay: LocalRunner, relay_clock: SteppingClock) -> list[dict[str, Any]]:
    """A watched post whose two accounts then post: the check commits two transitions and the completion."""
    post_id = emulator.create_post(accounts=2, scheduled_at=relay_clock.now - timedelta(minutes=1))
    assert relay.api("POST", "/watches", {"post_id": post_id}).status == 201
    for account in emulator.account_ids(post_id):
        emulator.mark_posted(post_id, account, published_url="https://social.example/p/1")
    answer = relay.api("POST", f"/watches/{post_id}/check")
    assert answer.status == 200, answer.body
    return list(answer.body["transitions"])


def test_the_feed_serves_what_the_check_committed_once_settled_and_next_moves_on(
    emulator: GenviralEmulator, relay: LocalRunner, relay_clock: SteppingClock, deliveries: DeliveryLog
) -> None:
    found = events_found(emulator, relay, relay_clock)
    assert len(found) == 3

    early = relay.api("GET", "/events")
    assert (early.status, early.body["data"]) == (200, [])
    relay_clock.now += FEED_SETTLE
    first = relay.api("GET", f"/events?after={early.body['next']}&limit=2")
    rest = relay.api("GET", f"/events?after={first.body['next']}&limit=2")
    after = relay.api("GET", f"/events?after={rest.body['next']}")

    served = [*first.body["data"], *rest.body["data"]]
    assert sorted(d["event_id"] for d in served) == sorted(d["event_id"] for d in found)
    assert {d["event_id"]: d for d in served} == {d["event_id"]: d for d in found}  # the documents as published
    assert rest.body["next"] == encode_cursor("feed", end_of(relay_clock.now - FEED_SETTLE))
    assert after.body == {"data": [], "next": rest.body["next"]}
    completions = relay.api("GET", "/events?event_type=post.completed")
    assert [d["event_type"] for d in completions.body["data"]] == ["post.completed"]
    by_post = relay.api("GET", f"/events?post_id={found[0]['post_id'].upper()}")
    assert len(by_post.body["data"]) == 3


@pytest.mark.parametrize(
    ("query", "status", "error", "message"),
    [
        ("limit=0", 400, "bad_request", "limit"),
        ("limit=101", 400, "bad_request", "limit"),
        ("event_type=post.exploded", 400, "bad_request", "event_type"),
        ("post_id=nope", 400, "bad_request", re.escape(POST_ID_HINT)),
        ("after=garbage!", 400, "bad_request", "cursor is malformed"),
        (f"after={encode_cursor('attempts:wh_' + '0' * 32, 'x')}", 400, "bad_request", "another listing"),
        (f"after={encode_cursor('feed', '2020-01-01T00:00:00.000Z#~')}", 410, "cursor_expired", "oldest entry kept"),
    ],
)
def test_bad_feed_requests_are_clear_4xx(relay: LocalRunner, query: str, status: int, error: str, message: str) -> None:
    answer = relay.api("GET", f"/events?{query}")

    assert answer.status == status, answer.body
    assert answer.body["error"] == error
    assert re.search(message, answer.body["message"]), answer.body


def test_an_events_story_lists_its_deliveries_recorded_and_queued(
    emulator: GenviralEmulator, relay: LocalRunner, relay_clock: SteppingClock, deliveries: DeliveryLog
) -> None:
    hooks = [relay.api("POST", "/webhooks", {"url": f"http://127.0.0.1:{port}/in"}).body["id"] for port in (9001, 9002)]
    relay_clock.now += timedelta(seconds=1)
    event = events_found(emulator, relay, relay_clock)[0]
    deliveries.record_states(
        [DeliveryState(webhook_id=hooks[0], event_id=event["event_id"], state="retrying", attempts=2, last_status=503)]
    )

    answer = relay.api("GET", f"/events/{event['event_id'].upper()}")

    assert answer.status == 200, answer.body
    assert answer.body["event"] == event
    states = {d["webhook_id"]: (d["state"], d["attempts"], d["last_status"]) for d in answer.body["deliveries"]}
    assert states == {hooks[0]: ("retrying", 2, 503), hooks[1]: ("queued", 0, None)}


def test_an_unknown_or_malformed_event_id_is_a_clear_4xx(relay: LocalRunner) -> None:
    unknown = relay.api("GET", f"/events/{UNKNOWN_EVENT}")
    malformed = relay.api("GET", "/events/e1")

    assert (unknown.status, unknown.body["error"]) == (404, "not_found")
    assert UNKNOWN_EVENT in unknown.body["message"]
    assert (malformed.status, malformed.body["error"], malformed.body["message"]) == (400, "bad_request", EVENT_ID_HINT)


def test_the_cli_lists_the_feed_and_shows_one_event(
    emulator: GenviralEmulator,
    relay: LocalRunner,
    relay_clock: SteppingClock,
    deliveries: DeliveryLog,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in relay.stack.cli_environment().items():
        monkeypatch.setenv(name, value)
    cli = Cli(capsys, monkeypatch)
    found = events_found(emulator, relay, relay_clock)
    relay_clock.now += FEED_SETTLE

    listed = cli("events", "list", "--limit", "2", "--json")
    following = cli("events", "list", "--after", listed.json()["next"], "--json")
    shown = cli("events", "show", found[0]["event_id"], "--json")
    text = cli("events", "show", found[0]["event_id"])
    missing = cli("events", "show", UNKNOWN_EVENT, "--json")
    bad = cli("events", "list", "--limit", "0")
    own = cli("events", "list", "--workspace", "default", "--json")  # a stack of one: every event is default's
    other = cli("events", "list", "--workspace", "acme", "--json")
    misnamed = cli("events", "list", "--workspace", "Acme!")

    assert listed.code == following.code == shown.code == text.code == 0
    served = [*listed.json()["data"], *following.json()["data"]]
    assert sorted(d["event_id"] for d in served) == sorted(d["event_id"] for d in found)
    assert shown.json()["event"] == found[0]
    assert found[0]["event_id"] in text.out
    assert (missing.code, missing.error()["error"]) == (1, "not_found")
    assert EVENT_ID_HINT in missing.error()["message"]
    assert bad.code == 2
    assert sorted(d["event_id"] for d in own.json()["data"]) == sorted(d["event_id"] for d in found)
    assert (other.code, other.json()["data"]) == (0, [])
    assert (misnamed.code, "workspace" in misnamed.err) == (2, True)
    braced = cli("events", "show", "{" + found[0]["event_id"] + "}")  # uuid.UUID takes it; no id of ours is so
    assert (braced.code, EVENT_ID_HINT in braced.err) == (2, True)
