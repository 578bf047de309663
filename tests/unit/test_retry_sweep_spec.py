"""The retry sweep (`polling/retry_sweep.py`) on the in-memory doubles: one list call finds the failed
posts Genviral sent back to its scheduler; only what the list shows changed is checked again."""

from __future__ import annotations

import pytest

from genviral_relay.errors import GenviralUnavailableError
from genviral_relay.models.messages import CheckRequest, SweepRequest
from genviral_relay.models.pause import PauseStatus
from genviral_relay.models.upstream import PAGE_LIMIT
from genviral_relay.observability import Metric
from genviral_relay.polling.work_batch import WorkItem
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, post
from tests.unit.world import World, emitted

ATTEMPT = "2025-02-01T14:59:00.000Z"


def failed(account_id: str) -> dict[str, object]:
    return account(account_id, status="failed", last_attempted_at=ATTEMPT, error_message="token expired")


def retrying(account_id: str) -> dict[str, object]:
    return account(account_id, status="retry", last_attempted_at=ATTEMPT)


def awaiting_retry(world: World) -> None:
    """Given a watched post whose two accounts failed a minute ago (their retry window is open)."""
    world.register(post(failed(ACCOUNT_A), failed(ACCOUNT_B), status="failed"))
    assert world.stored().awaiting_retry
    world.forget_calls()


def test_a_post_genviral_sent_back_to_retry_is_checked_with_its_own_answer(world: World) -> None:
    awaiting_retry(world)
    world.source.put(post(failed(ACCOUNT_A), retrying(ACCOUNT_B), status="retry"))

    report = world.path.sweep.run()

    assert [outcome.result for outcome in report.outcomes] == ["changed"]
    assert world.source.calls == {"posts_in_status": 1, "get_post": 1}
    assert world.stored().accounts[ACCOUNT_B].status == "retry"
    assert emitted(Metric.RETRY_SWEEP_CHECKS) == [1]


def test_a_retry_the_watch_already_recorded_is_not_checked_again(world: World) -> None:
    awaiting_retry(world)
    world.source.put(post(failed(ACCOUNT_A), retrying(ACCOUNT_B), status="retry"))
    world.path.sweep.run()
    assert world.stored().awaiting_retry  # account A's failure still awaits its retry
    world.forget_calls()

    report = world.path.sweep.run()

    assert report.outcomes == ()
    assert world.source.calls == {"posts_in_status": 1}


def test_a_listed_post_the_sweep_does_not_cover_is_left_alone(world: World) -> None:
    # Given a watched post with no failure in a retry window, listed changed (its own schedule covers it)...
    world.register(post(retrying(ACCOUNT_A), status="retry"))
    assert not world.stored().awaiting_retry
    world.source.put(post(account(ACCOUNT_A, status="pending"), status="retry"))
    # ...and a post in retry the relay does not watch
    world.source.put(post(retrying(ACCOUNT_A), status="retry", post_id="22222222-2222-2222-2222-222222222222"))
    world.forget_calls()

    report = world.path.sweep.run()

    assert report.outcomes == ()
    assert world.source.calls["get_post"] == 0


@pytest.mark.parametrize(("others", "checked"), [(PAGE_LIMIT - 1, False), (PAGE_LIMIT, True)])
def test_a_full_list_checks_every_waiting_post(world: World, others: int, checked: bool) -> None:
    # Given a waiting post the list does not show, behind `others` posts in retry the relay does not watch
    awaiting_retry(world)
    for index in range(others):
        world.source.put(post(retrying(ACCOUNT_A), status="retry", post_id=f"00000000-0000-4000-8000-{index:012d}"))

    report = world.path.sweep.run()

    # a full page may be cut off: the waiting post might be on it, so it is checked by its own answer
    assert [outcome.post_id for outcome in report.outcomes] == ([POST_ID] if checked else [])
    assert world.source.calls["get_post"] == (1 if checked else 0)


def test_a_failed_list_call_checks_nothing_and_pauses_nothing(world: World) -> None:
    awaiting_retry(world)
    world.source.put(post(failed(ACCOUNT_A), retrying(ACCOUNT_B), status="retry"))
    world.source.fail_next["list"] = [GenviralUnavailableError("timed out")]

    report = world.path.sweep.run()

    assert isinstance(report.error, GenviralUnavailableError)
    assert (report.outcomes, report.refused) == ((), False)
    assert world.source.calls["get_post"] == 0
    assert world.store.genviral_pause(NOW) == PauseStatus()  # nothing stored
    assert world.path.sweep.run().outcomes[0].result == "changed"  # the next tick's sweep finds it


def test_a_post_the_sweep_checked_is_not_checked_again_by_a_check_message_of_the_same_batch(world: World) -> None:
    awaiting_retry(world)
    world.source.put(post(failed(ACCOUNT_A), retrying(ACCOUNT_B), status="retry"))

    world.batch().run(
        [
            WorkItem("sweep", SweepRequest(sweep="retry")),
            WorkItem("check", CheckRequest(post_id=POST_ID, queued_at=NOW)),
        ]
    )

    assert world.source.calls == {"posts_in_status": 1, "get_post": 1}  # the sweep's check only
    assert world.stored().accounts[ACCOUNT_B].status == "retry"
