"""Discover mode (`polling/discover.py`) on the in-memory doubles: the rules of the walk. The walk against
the emulator's real `GET /posts` filters and through the handlers is in tests/functional/test_discover.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from genviral_relay.checking.ports import PostPage
from genviral_relay.clock import format_ts
from genviral_relay.models.upstream import PAGE_LIMIT
from genviral_relay.observability import Metric
from genviral_relay.polling.discover import HISTORY_START, LOOK_BACK
from tests.builders import ACCOUNT_A, NOW, account, outcomes, post
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
    assert [event.previous_status for event in outcomes(outcome.events)] == [None]
    assert world.source.calls["get_post"] == 1  # events always come from the single-post answer
    assert world.published("sns") == [event.event_id for event in outcome.events]
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
    assert [event.previous_status for event in outcomes(report.outcomes[0].events)] == ["scheduled"]


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


def test_the_walk_finds_every_post_across_window_splits(world: World) -> None:
    # Given more posts than a page in several shapes: spread over a month, 130 created in the same
    # second, and a burst in the last hour
    burst_second = NOW - timedelta(days=5)
    created = [NOW - timedelta(days=30) + timedelta(hours=5 * index) for index in range(140)]
    created += [burst_second + timedelta(milliseconds=index * 7) for index in range(130)]
    created += [NOW - timedelta(minutes=index) for index in range(1, 61)]
    post_ids = [post_id(index) for index in range(len(created))]
    for identifier, moment in zip(post_ids, created, strict=True):
        world.source.put(post(account(ACCOUNT_A, status="scheduled"), post_id=identifier, created_at=format_ts(moment)))

    # When discovery walks with a small budget per run (resuming across runs)
    discovery = world.discovery(max_list_calls=6)
    reports = [discovery.run()]
    while not reports[-1].walk_complete:
        reports.append(discovery.run())
        assert len(reports) < 50, "the walk never completes"

    # Then every post is watched, windows were split, no run exceeded its budget, the number of
    # list calls stays near the minimum, and finding the posts asked nothing per post
    assert set(world.store.get_many(post_ids)) == set(post_ids)
    assert sum(report.windows_split for report in reports) > 0
    assert len(reports) > 1
    assert max(report.list_calls for report in reports) <= 6
    list_calls = sum(report.list_calls for report in reports)
    assert list_calls == world.source.calls["posts_created"]
    assert list_calls < 4 * len(post_ids) / PAGE_LIMIT * 8
    assert world.source.calls["get_post"] == 0


def test_a_post_created_while_the_walk_runs_is_found_by_the_next_run(world: World) -> None:
    # Given enough posts that the first walk needs several list calls (one per run here), and a
    # walk that takes an hour
    walk_started = NOW
    for index in range(250):
        created = format_ts(walk_started - timedelta(hours=index))
        world.source.put(post(account(ACCOUNT_A, status="scheduled"), post_id=post_id(index), created_at=created))
    discovery = world.discovery(max_list_calls=1)

    # When, once the walk has listed its newest windows, two posts appear there: one created a
    # minute after the walk started, one created before it but listable only now
    report = discovery.run()
    while not report.walk_complete and not only_older_windows_left(world, walk_started - LOOK_BACK):
        report = discovery.run()
    assert not report.walk_complete
    created_mid_walk = [post_id(1000), post_id(1001)]
    for identifier, moment in zip(
        created_mid_walk, (walk_started + timedelta(minutes=1), walk_started - timedelta(minutes=5)), strict=True
    ):
        world.source.put(post(account(ACCOUNT_A, status="scheduled"), post_id=identifier, created_at=format_ts(moment)))
    world.later(timedelta(hours=1))
    while not report.walk_complete:
        report = discovery.run()

    # Then the walk in progress cannot see them, and the next run (the next tick) finds both
    assert world.store.get_many(created_mid_walk) == {}
    discovery.run()
    assert set(world.store.get_many(created_mid_walk)) == set(created_mid_walk)


def only_older_windows_left(world: World, moment: datetime) -> bool:
    state = world.store.discover_state()
    assert state is not None
    return all(window.until < moment for window in state.pending)


def test_the_first_walk_indexes_the_workspaces_history_and_later_ones_list_only_the_look_back(world: World) -> None:
    world.source.put(
        post(posted(), post_id=post_id(1), status="posted", created_at=format_ts(NOW - timedelta(days=30)))
    )

    world.discovery().run()
    state = world.store.discover_state()

    assert state is not None
    assert (state.history_indexed, state.walking_history) == (True, False)
    assert listed_since(world) == [NOW - LOOK_BACK]  # from where the last walk started, not from the beginning


def listed_since(world: World) -> list[datetime]:
    """A minute later: where each list call of the next discover run started."""
    starts: list[datetime] = []
    listing = world.source.posts_created

    def recorded(since: datetime, until: datetime, *, limit: int) -> PostPage:
        starts.append(since)
        return listing(since, until, limit=limit)

    world.source.posts_created = recorded  # type: ignore[method-assign]
    world.later(timedelta(minutes=1))
    world.discovery().run()
    return starts


def test_after_an_upgrade_the_next_walk_lists_the_history_again_and_gives_old_watches_their_created_at(
    world: World,
) -> None:
    # Given a deployment whose state and watches were stored by 0.3: no history_indexed, no created_at
    created = NOW - timedelta(days=30)
    old = post(account(ACCOUNT_A, status="scheduled"), post_id=post_id(1), created_at=format_ts(created))
    unwatched = post(account(ACCOUNT_A, status="scheduled"), post_id=post_id(2), created_at=format_ts(created))
    world.source.put(old)
    world.source.put(unwatched)
    world.discovery().run()
    world.store.delete(unwatched.id, expected_version=1)  # DELETE /watches/{id}
    stored_by_0_3 = world.stored(old.id).model_copy(update={"created_at": None, "version": 2})
    world.store.save(stored_by_0_3, expected_version=1, new_events=())
    state = world.store.discover_state()
    assert state is not None
    world.store.save_discover_state(
        state.model_copy(update={"version": state.version + 1, "history_indexed": False}),
        expected_version=state.version,
    )
    world.forget_calls()

    # When discover mode runs on 0.4
    assert listed_since(world) == [HISTORY_START]

    # Then it listed from the beginning, saved the old watch's created_at once, adopted nothing it had
    # listed before, and knows its history now
    assert world.stored(old.id).created_at == format_ts(created)
    assert world.store.calls["transact_write_items"] == 1
    assert world.store.creation_moments(created, created, limit=2) == [created]
    assert world.store.discover_state().history_indexed  # type: ignore[union-attr]
    assert world.store.get(unwatched.id) is None  # listed by the walk before: unwatched, and left so
    assert world.published("sns") == []
