"""Discover mode (`logic/discover.py`) on the in-memory doubles: a few core rules of the walk. The walk
against the emulator's real `GET /posts` filters is in tests/functional/test_discover.py."""

from __future__ import annotations

from datetime import timedelta

from genviral_relay.clock import format_ts
from genviral_relay.logic.discover import PAGE_LIMIT
from genviral_relay.observability import Metric
from tests.builders import ACCOUNT_A, NOW, account, post
from tests.unit.world import World, emitted

ATTEMPT = "2025-02-01T14:59:00.000Z"


def post_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def posted() -> dict[str, object]:
    return account(ACCOUNT_A, status="posted", last_attempted_at=ATTEMPT, published_url="https://x.example/1")


def started(world: World) -> None:
    """Given discover mode ran once (at NOW: the baseline), and a minute went by."""
    world.discovery().run()
    world.later(timedelta(minutes=1))
    world.forget_calls()


def test_posts_older_than_the_baseline_are_watched_silently_from_the_list(world: World) -> None:
    old = post(posted(), post_id=post_id(1), status="posted", created_at=format_ts(NOW - timedelta(days=3)))
    world.source.put(old)

    report = world.discovery().run()

    assert report.walk_complete
    assert world.stored(old.id).accounts[ACCOUNT_A].status == "posted"
    assert world.source.calls["get_post"] == 0  # recorded from the list alone
    assert world.published("sns") == world.published("eventbridge") == []
    assert emitted(Metric.POSTS_BASELINED) == [1]


def test_a_new_post_with_a_final_account_is_registered_from_its_own_answer(world: World) -> None:
    started(world)
    fresh = post(posted(), post_id=post_id(1), status="posted", created_at=format_ts(NOW + timedelta(seconds=30)))
    world.source.put(fresh)

    report = world.discovery().run()

    (outcome,) = report.outcomes
    assert (outcome.result, outcome.created) == ("changed", True)
    assert [event.previous_status for event in outcome.events] == [None]
    assert world.source.calls["get_post"] == 1  # events always come from the single-post answer
    assert world.published("sns") == [outcome.events[0].event_id]
    assert emitted(Metric.POSTS_DISCOVERED) == [1]


def test_a_new_unfinished_post_is_recorded_from_the_list(world: World) -> None:
    started(world)
    fresh = post(account(ACCOUNT_A, status="scheduled"), post_id=post_id(1), created_at=format_ts(NOW))
    world.source.put(fresh)

    world.discovery().run()

    assert world.stored(fresh.id).accounts[ACCOUNT_A].status == "scheduled"
    assert world.source.calls["get_post"] == 0


def test_a_watched_post_is_checked_only_when_the_list_shows_it_changed(world: World) -> None:
    created = format_ts(NOW - timedelta(minutes=5))
    world.source.put(post(account(ACCOUNT_A, status="scheduled"), post_id=post_id(1), created_at=created))
    world.source.put(post(account(ACCOUNT_A, status="scheduled"), post_id=post_id(2), created_at=created))
    started(world)
    world.source.put(post(posted(), post_id=post_id(2), status="posted", created_at=created))

    report = world.discovery().run()

    assert [outcome.post_id for outcome in report.outcomes] == [post_id(2)]
    assert world.source.calls["get_post"] == 1
    assert [event.previous_status for event in report.outcomes[0].events] == ["scheduled"]


def test_a_full_page_splits_its_window_until_every_post_is_listed(world: World) -> None:
    # Given more posts than one page holds, created a minute apart
    total = PAGE_LIMIT + PAGE_LIMIT // 2
    for index in range(total):
        created = format_ts(NOW - timedelta(minutes=index + 1))
        world.source.put(post(account(ACCOUNT_A, status="scheduled"), post_id=post_id(index), created_at=created))

    report = world.discovery(max_list_calls=200).run()

    assert report.walk_complete
    assert report.windows_split >= 1
    assert report.list_calls == world.source.calls["posts_created"] > 1
    assert set(world.store.get_many([post_id(index) for index in range(total)])) == {
        post_id(index) for index in range(total)
    }


def test_a_walk_cut_short_resumes_at_the_next_run(world: World) -> None:
    total = PAGE_LIMIT + PAGE_LIMIT // 2
    for index in range(total):
        created = format_ts(NOW - timedelta(minutes=index + 1))
        world.source.put(post(account(ACCOUNT_A, status="scheduled"), post_id=post_id(index), created_at=created))
    discovery = world.discovery(max_list_calls=1)

    first = discovery.run()
    assert not first.walk_complete
    assert len(world.store.get_many([post_id(index) for index in range(total)])) == PAGE_LIMIT  # the newest page

    runs = 1
    while not discovery.run().walk_complete:
        runs += 1
        assert runs < 50, "the walk never completes"
    assert len(world.store.get_many([post_id(index) for index in range(total)])) == total
