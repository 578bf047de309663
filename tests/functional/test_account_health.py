"""Account health end to end: the scheduler's ticks through the template's poller and worker, Genviral's
`GET /accounts` on loopback HTTP, AWS on moto; `account.disconnected` and `account.reconnected` checked as the
topic's and the bus's subscribers receive them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from local.emulator import Fault, GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import TOKEN
from tests.support.doubles import SteppingClock

EVERY = timedelta(minutes=15)  # the template's default AccountCheckMinutes


@pytest.fixture
def stack(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    """The template's defaults: account checks on (the suite's other flows turn them off)."""
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN) as running:
        yield running


def notices(stack: MotoStack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The account notices each target's subscriber received since the last call: (SNS envelopes, bus events)."""
    sns = [m for m in stack.received("sns") if json.loads(m["Message"])["event_type"].startswith("account.")]
    bus = [e for e in stack.received("eventbridge") if e["detail"]["event_type"].startswith("account.")]
    return sns, bus


def listings(emulator: GenviralEmulator) -> list[int]:
    """The HTTP status of every `GET /accounts` Genviral answered so far."""
    return [record.status for record in emulator.requests_log if record.path.endswith("/accounts")]


def tick(runner: LocalRunner, clock: SteppingClock, after: timedelta) -> None:
    clock.now += after
    runner.tick(clock.now)
    runner.drain_work_queue()


@pytest.mark.parametrize("listed_with_status", [False, True], ids=["vanishes", "listed revoked"])
def test_a_revoked_account_with_a_post_at_risk_is_announced_and_its_return_too(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    relay_clock: SteppingClock,
    listed_with_status: bool,
) -> None:
    # Given a watched post, due in two days, for an account Genviral lists, and a first listing
    emulator.list_inactive_accounts = listed_with_status
    post_id = emulator.create_post(accounts=1, scheduled_at=relay_clock.now + timedelta(days=2))
    (account_id,) = emulator.account_ids(post_id)
    emulator.set_account(account_id, username="brand.shop", platform="tiktok")
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    tick(runner, relay_clock, timedelta(0))
    assert listings(emulator) == [200]

    # When the account is revoked, and the ticks of the next interval come
    emulator.set_account(account_id, status="revoked")
    tick(runner, relay_clock, EVERY)
    if not listed_with_status:
        # Its only known account missing: a suspect listing (an empty answer may be Genviral's glitch), no change
        assert notices(stack) == ([], [])
        tick(runner, relay_clock, timedelta(minutes=1))
        assert listings(emulator) == [200, 200]  # not the one-tick confirmation of a single miss
        tick(runner, relay_clock, EVERY)  # the next regular listing says the same: confirmed

    # Then both targets announced it once, with the post at risk
    sns, bus = notices(stack)
    (message,) = sns
    document = json.loads(message["Message"])
    assert document["event_type"] == "account.disconnected"
    assert document["account_id"] == account_id
    assert document["account"]["username"] == "brand.shop"
    assert (document["status"], document["previous_status"]) == ("revoked" if listed_with_status else None, "active")
    assert document["posts_at_risk"] == {"count": 1, "post_ids": [post_id]}
    assert message["MessageAttributes"]["account_id"]["Value"] == account_id
    (event,) = bus
    assert event["detail-type"] == "Account Disconnected"
    assert event["detail"] == document

    # And a later interval announces nothing more; the account's return is announced once
    tick(runner, relay_clock, EVERY)
    assert notices(stack) == ([], [])
    emulator.restore_account(account_id)
    tick(runner, relay_clock, EVERY)
    tick(runner, relay_clock, EVERY)
    sns, bus = notices(stack)
    assert [json.loads(m["Message"])["event_type"] for m in sns] == ["account.reconnected"]
    assert [e["detail"]["status"] for e in bus] == ["active"]


def test_a_listing_that_fails_announces_nothing(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, relay_clock: SteppingClock
) -> None:
    post_id = emulator.create_post(accounts=1, scheduled_at=relay_clock.now + timedelta(days=2))
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    tick(runner, relay_clock, timedelta(0))

    emulator.inject(Fault.server_error(), accounts=True, times=100)
    for after in (EVERY, timedelta(minutes=1), timedelta(minutes=1)):
        tick(runner, relay_clock, after)
    assert listings(emulator) == [200, 500, 500]  # asked again at the next tick once, then backing off
    tick(runner, relay_clock, timedelta(minutes=4))
    assert listings(emulator) == [200, 500, 500, 500]
    assert notices(stack) == ([], [])
