"""The events a consumer acts on without calling Genviral back, over the emulator and moto: the delivery that
hangs (`post.account.delayed`) and the post that is done (`post.completed`), on both targets, through the real
handlers; every document the subscribers receive is checked against the committed schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import TOKEN
from tests.functional.subscribers import documents
from tests.support.doubles import SteppingClock


def kinds(messages: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(event_type, account_id) of each message, completions with no account."""
    return [(document["event_type"], document.get("account_id")) for document in documents(messages)]


def test_a_late_delivery_is_reported_delayed_then_posted_then_the_post_completed(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, relay_clock: SteppingClock
) -> None:
    # Given a watched post of two accounts, due a minute ago, that Genviral does not deliver
    post_id = emulator.create_post(accounts=2, scheduled_at=relay_clock.now - timedelta(minutes=1))
    tiktok, instagram = emulator.account_ids(post_id)
    emulator.set_account(tiktok, platform="tiktok", username="brand", display_name="Brand")
    emulator.set_account(instagram, platform="instagram", username="brand.shop", display_name="Brand Shop")
    assert runner.api("POST", "/watches", {"post_id": post_id}).body["transitions"] == []

    # When the poller keeps checking: before the threshold nothing, at it one delay per account
    relay_clock.now += timedelta(minutes=13)
    runner.tick_and_work()
    assert stack.received("sns") == []
    relay_clock.now += timedelta(minutes=1)
    runner.tick_and_work()
    delayed_sns, delayed_bus = stack.received("sns"), stack.received("eventbridge")
    relay_clock.now += timedelta(minutes=1)
    runner.tick_and_work()
    assert stack.received("sns") == []  # once per attempt

    # ...and once Genviral delivers one and fails the other, their outcomes and the post's completion
    emulator.mark_posted(post_id, tiktok, published_url="https://www.tiktok.com/@brand/video/1")
    emulator.mark_failed(post_id, instagram, error_message="Instagram rejected the media: aspect ratio 9:21")
    relay_clock.now += timedelta(minutes=1)
    runner.tick_and_work()
    done_sns, done_bus = stack.received("sns"), stack.received("eventbridge")

    # Then each target got the same documents, in that order
    assert sorted(kinds(delayed_sns)) == sorted([("post.account.delayed", tiktok), ("post.account.delayed", instagram)])
    assert documents(delayed_sns) == documents(delayed_bus)
    *transitions, completed = kinds(done_sns)  # the completion after the account events it sums up
    assert sorted(transitions) == sorted([("post.account.posted", tiktok), ("post.account.failed", instagram)])
    assert completed == ("post.completed", None)
    assert documents(done_sns) == documents(done_bus)
    assert sorted(event["detail-type"] for event in delayed_bus + done_bus) == [
        "Post Account Delayed",
        "Post Account Delayed",
        "Post Account Failed",
        "Post Account Posted",
        "Post Completed",
    ]
    # The delay says what the account is, where it stands and since when it is awaited
    (delay,) = [document for document in documents(delayed_sns) if document["account_id"] == tiktok]
    assert (delay["status"], delay["account"]["platform"], delay["account"]["username"]) == (
        "scheduled",
        "tiktok",
        "brand",
    )
    assert delay["delayed_since"] == emulator.post_json(post_id)["scheduled_at"]
    # The completion sums the post up, each account named as its own event names it
    completion = documents(done_sns)[-1]
    assert (completion["outcome"], completion["posted_count"], completion["failed_count"]) == ("partial", 1, 1)
    assert [(a["account"]["username"], a["status"], a["error_category"]) for a in completion["accounts"]] == [
        ("brand", "posted", None),
        ("brand.shop", "failed", "media_rejected"),
    ]
    assert done_sns[-1]["MessageAttributes"]["outcome"]["Value"] == "partial"
    assert {"status", "account_id"}.isdisjoint(done_sns[-1]["MessageAttributes"])


def test_a_retry_that_completes_the_post_again_is_a_second_completion_under_a_new_id(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id = emulator.create_post(accounts=1, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    (account_id,) = emulator.account_ids(post_id)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201

    emulator.mark_failed(post_id, account_id, error_message="Upload timed out")
    first = runner.api("POST", f"/watches/{post_id}/check").body["transitions"]
    emulator.retry(post_id)
    assert runner.api("POST", f"/watches/{post_id}/check").body["transitions"] == []  # retrying: not complete
    emulator.mark_posted(post_id, account_id)
    second = runner.api("POST", f"/watches/{post_id}/check").body["transitions"]
    again = runner.api("POST", f"/watches/{post_id}/check").body["transitions"]

    assert [(d["event_type"], d.get("outcome")) for d in first] == [
        ("post.account.failed", None),
        ("post.completed", "failed"),
    ]
    assert [(d["event_type"], d.get("outcome")) for d in second] == [
        ("post.account.posted", None),
        ("post.completed", "posted"),
    ]
    assert again == []
    assert first[1]["event_id"] != second[1]["event_id"]
    received = documents(stack.received("sns"))
    assert [d["event_id"] for d in received] == [d["event_id"] for d in first + second]  # each once


def test_the_delay_threshold_is_met_while_the_overdue_checks_back_off(
    emulator: GenviralEmulator, relay_clock: SteppingClock
) -> None:
    # Given DelayedAfterMinutes past the hour after which an unfinished post is checked less and less often
    threshold = timedelta(minutes=95)
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters={"DelayedAfterMinutes": "95"}) as stack:
        runner = LocalRunner(stack)
        post_id = emulator.create_post(accounts=1, scheduled_at=relay_clock.now)
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201

        # When the poller has ticked for an hour (checking the post at every tick), then ticks every minute on
        relay_clock.now += timedelta(minutes=60)
        runner.tick_and_work()
        seen: list[tuple[timedelta, int, list[str]]] = []
        for minute in range(61, 101):
            relay_clock.now += timedelta(minutes=1)
            runner.tick_and_work()
            types = [document["event_type"] for document in documents(stack.received("sns"))]
            seen.append((timedelta(minutes=minute), emulator.calls(post_id), types))
        stack.drain_subscribers()

    # Then the checks were spaced out, yet one came at the threshold and reported the delay there
    delayed_at = [when for when, _, types in seen if types == ["post.account.delayed"]]
    assert delayed_at == [threshold]
    quiet_stretch = [calls for when, calls, _ in seen if timedelta(minutes=70) <= when < threshold]
    assert quiet_stretch[-1] - quiet_stretch[0] < len(quiet_stretch) / 2  # far fewer checks than ticks
