"""The pause rule (`checking/pause.py`): a refused key stops every call to Genviral for a while, stored
once per pause; the check, the retry sweep and discovery each report a refusal through it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from genviral_relay.checking.pause import PAUSE_AFTER_REFUSAL, GenviralPause, describe_refusal
from genviral_relay.errors import (
    GenviralAuthError,
    GenviralConfigError,
    GenviralSubscriptionRequiredError,
    GenviralTierNotAllowedError,
    TokenUnavailableError,
)
from genviral_relay.models.domain import CreatedWindow
from genviral_relay.observability import Metric
from genviral_relay.polling.discover import CLOCK_SKEW, HISTORY_START
from tests.builders import NOW, POST_ID, account, post
from tests.support.doubles import InMemoryStore
from tests.unit.world import World, emitted

REFUSED_402 = GenviralSubscriptionRequiredError("no plan", status=402, error_code="subscription_required")
REASON_402 = "GenviralSubscriptionRequiredError (HTTP 402 subscription_required): no plan"
PAUSED_AT_NOW = (NOW + PAUSE_AFTER_REFUSAL, REASON_402)
"""The pause a refusal at NOW stores: (until, reason)."""


def pause(world: World) -> GenviralPause:
    return world.path.pause


def test_a_refused_key_pauses_calls_and_says_why(world: World) -> None:
    reason = pause(world).refused(REFUSED_402)

    assert reason == REASON_402
    assert pause(world).reason() == reason
    assert world.store.stored_pause == PAUSED_AT_NOW
    assert emitted(Metric.GENVIRAL_PAUSES) == [1]


def test_later_refusals_within_the_pause_store_nothing_more(world: World) -> None:
    pause(world).refused(REFUSED_402)
    stored = world.store.calls["put_item"]

    for _ in range(3):
        world.later(timedelta(minutes=1))
        pause(world).refused(GenviralAuthError("revoked", status=401, error_code="unauthorized"))

    assert world.store.calls["put_item"] == stored == 1
    assert emitted(Metric.GENVIRAL_PAUSES) == [1]
    assert pause(world).reason() == REASON_402  # the first refusal's reason stands
    assert world.store.stored_pause == PAUSED_AT_NOW  # and its end: later refusals do not extend the pause


def test_calls_resume_when_the_pause_ends(world: World) -> None:
    pause(world).refused(REFUSED_402)

    world.later(PAUSE_AFTER_REFUSAL - timedelta(seconds=1))
    assert pause(world).reason() == REASON_402
    world.later(timedelta(seconds=1))
    assert pause(world).reason() is None
    assert world.store.stored_pause == PAUSED_AT_NOW  # ended by the clock, not removed


def test_a_refusal_after_the_pause_pauses_again(world: World) -> None:
    pause(world).refused(REFUSED_402)
    world.later(PAUSE_AFTER_REFUSAL)

    pause(world).refused(REFUSED_402)

    assert world.store.calls["put_item"] == 2
    assert world.store.stored_pause == (NOW + 2 * PAUSE_AFTER_REFUSAL, REASON_402)
    assert pause(world).reason() == REASON_402


class PauseWriteFailsOnce(InMemoryStore):
    """The table refuses the first write of the pause (throttled past the SDK's retries, unreachable)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    def pause_genviral(self, *, until: datetime, reason: str) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("the table did not answer")
        super().pause_genviral(until=until, reason=reason)


def test_a_pause_that_could_not_be_stored_is_stored_by_the_next_refusal(world: World) -> None:
    store = PauseWriteFailsOnce()
    pause = GenviralPause(store, world.clock)
    with pytest.raises(ConnectionError):
        pause.refused(REFUSED_402)

    world.later(timedelta(seconds=10))
    pause.refused(REFUSED_402)

    # the pause runs from the refusal that stored it
    assert store.stored_pause == (NOW + timedelta(seconds=10) + PAUSE_AFTER_REFUSAL, REASON_402)
    assert store.calls["put_item"] == 1


def test_a_pause_stored_by_another_process_is_read_from_the_store(world: World) -> None:
    GenviralPause(world.store, world.clock).refused(REFUSED_402)  # another worker's

    assert pause(world).reason() == REASON_402
    world.later(PAUSE_AFTER_REFUSAL)
    assert pause(world).reason() is None


def test_a_refusal_without_an_http_answer_says_so() -> None:
    assert describe_refusal(TokenUnavailableError("secret deleted")) == (
        "TokenUnavailableError (no HTTP answer): secret deleted"
    )


def refuse(world: World, key: str, error: GenviralConfigError) -> None:
    world.source.fail_next[key] = [error]


def test_a_check_refused_by_genviral_pauses_calls_and_leaves_the_post_due(world: World) -> None:
    world.register(post(account(status="scheduled")))
    before = world.stored()
    refuse(world, POST_ID, GenviralAuthError("revoked", status=401, error_code="unauthorized"))

    outcome = world.check.check(POST_ID)

    assert outcome.result == "refused"
    assert world.store.stored_pause == (NOW + PAUSE_AFTER_REFUSAL, "GenviralAuthError (HTTP 401 unauthorized): revoked")
    assert world.stored() == before
    assert POST_ID in set(world.store.due_post_ids(NOW))


def test_a_retry_sweep_refused_by_genviral_pauses_calls(world: World) -> None:
    refused = GenviralTierNotAllowedError("tier", status=403, error_code="tier_not_allowed")
    refuse(world, "list", refused)

    report = world.path.sweep.run()

    assert (report.refused, report.error, report.outcomes) == (True, refused, ())
    assert world.store.stored_pause == (
        NOW + PAUSE_AFTER_REFUSAL,
        "GenviralTierNotAllowedError (HTTP 403 tier_not_allowed): tier",
    )


def test_a_discover_run_refused_by_genviral_pauses_calls_and_resumes_its_walk_later(world: World) -> None:
    refuse(world, "list", REFUSED_402)
    discovery = world.discovery()

    report = discovery.run()

    assert (report.refused, report.error, report.walk_complete, report.list_calls) == (True, REFUSED_402, False, 0)
    assert world.store.stored_pause == PAUSED_AT_NOW
    state = world.store.discover_state()
    assert state is not None
    # the first walk's one window, which it could not list, is listed next time
    assert state.pending == (CreatedWindow(since=HISTORY_START, until=NOW + CLOCK_SKEW),)
    assert (state.walk_started_at, state.listed_until, state.walking_history) == (NOW, None, True)


def test_the_check_the_sweep_and_discovery_share_one_pause(world: World) -> None:
    world.register(post(account(status="scheduled")))
    refuse(world, POST_ID, REFUSED_402)
    world.check.check(POST_ID)
    refuse(world, "list", REFUSED_402)
    world.path.sweep.run()
    refuse(world, "list", REFUSED_402)
    world.discovery().run()

    assert emitted(Metric.GENVIRAL_PAUSES) == [1]
    assert world.store.stored_pause == PAUSED_AT_NOW
    assert world.source.fail_next == {POST_ID: [], "list": []}  # each of them did meet its refusal
