"""An endpoint's attempt log through the API on moto (GET /webhooks/{id}/attempts): what the delivery function
recorded of each attempt, newest first, a page at a time; bad input answered 400 or 404 with a message."""

from __future__ import annotations

from datetime import timedelta

from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.webhook_receiver import WebhookReceiver
from tests.functional.test_webhooks import check_now, post_with_outcomes, receiver, register
from tests.support.doubles import SteppingClock

__all__ = ["receiver"]  # the fixture, shared


def test_the_attempt_log_shows_each_attempt_newest_first_with_its_outcome(
    emulator: GenviralEmulator, relay: LocalRunner, receiver: WebhookReceiver, relay_clock: SteppingClock
) -> None:
    webhook_id = register(relay, receiver)["id"]
    post_id = post_with_outcomes(emulator, relay, posted=1)
    (event,) = check_now(relay, post_id)
    receiver.answer(503)
    relay.deliver_webhooks()
    relay_clock.now += timedelta(seconds=6)
    relay.deliver_webhooks()

    page = relay.api("GET", f"/webhooks/{webhook_id}/attempts")
    assert page.status == 200, page.body
    assert [(a["event_id"], a["attempt"], a["outcome"], a["status"]) for a in page.body["data"]] == [
        (event["event_id"], 2, "delivered", 200),
        (event["event_id"], 1, "failed", 503),
    ]
    assert page.body["data"][1]["reason"].startswith("HTTP 503")
    assert all(a["duration_ms"] >= 0 for a in page.body["data"])
    assert page.body["next"] is None

    first = relay.api("GET", f"/webhooks/{webhook_id}/attempts?limit=1&outcome=failed")
    assert [a["attempt"] for a in first.body["data"]] == [1]
    after = relay.api("GET", f"/webhooks/{webhook_id}/attempts?limit=1&outcome=failed&after={first.body['next']}")
    assert (after.status, after.body["data"], after.body["next"]) == (200, [], None)


def test_bad_input_is_answered_with_a_message(relay: LocalRunner, receiver: WebhookReceiver) -> None:
    webhook_id = register(relay, receiver)["id"]
    unknown = "wh_" + "0" * 32
    assert relay.api("GET", f"/webhooks/{unknown}/attempts").status == 404
    malformed = relay.api("GET", "/webhooks/wh_nope/attempts")
    assert malformed.status == 400
    assert "wh_ followed by 32 hex digits" in malformed.body["message"]
    for query, words in (
        ("after=garbage", "the cursor is malformed"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("outcome=parked", "outcome"),
    ):
        answer = relay.api("GET", f"/webhooks/{webhook_id}/attempts?{query}")
        assert (answer.status, answer.body["error"]) == (400, "bad_request"), query
        assert words in answer.body["message"], (query, answer.body)
