"""Bulk refresh (`polling/bulk_refresh.py`) on the in-memory doubles: hot posts created together are queued
as one refresh and recorded from one list answer, with the events and ids their own checks would
give; a full answer is listed on below its oldest post; what a list does not show is checked on its
own, and only its own answer ends a watch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from genviral_relay.aws.dynamodb_items import DUE_SHARDS
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.checking.ports import PostPage
from genviral_relay.clock import format_ts
from genviral_relay.errors import GenviralAuthError, GenviralServerError
from genviral_relay.models.domain import DiscoverState
from genviral_relay.models.messages import CheckRequest, RefreshRequest, WorkRequest
from genviral_relay.models.upstream import Post
from genviral_relay.observability import Metric
from genviral_relay.polling import bulk_refresh
from genviral_relay.polling.bulk_refresh import HotWindows
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.work_batch import WorkItem
from genviral_relay.rules.late_urls import URL_CHECKS
from tests.builders import NOW, account, post
from tests.support.doubles import InMemoryWorkQueue
from tests.unit.world import World, emitted

IMPORTED = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
"""When the bulk import created the posts (they are due at NOW, 15:00)."""
TICK_QUERIES = DUE_SHARDS + 2
"""What a tick queries besides the created index: the due index's shards and the retry shard, twice
for the latter (`due_watches`, `awaiting_retry`)."""
POSTS = [f"00000000-0000-4000-8000-{index:012d}" for index in range(1, 200)]


def imported(world: World, count: int, *, spacing: timedelta = timedelta(milliseconds=50), start: int = 0) -> list[str]:
    """Given `count` watched posts created together, due every tick, still scheduled in Genviral."""
    post_ids = POSTS[start : start + count]
    for index, post_id in enumerate(post_ids):
        world.register(scheduled(post_id, IMPORTED + index * spacing))
    world.forget_calls()
    return post_ids


def scheduled(post_id: str, created_at: datetime, *states: dict[str, object]) -> Post:
    return post(*(states or (account(status="scheduled"),)), post_id=post_id, created_at=format_ts(created_at))


def posted(world: World, post_id: str, *, url: str | None = "https://x.example/p") -> None:
    """Genviral now shows the post's account posted (`url`: its published URL, None: not given yet)."""
    created_at = world.source.posts[post_id].created_at
    world.source.put(
        post(
            account(
                status="posted",
                published_at="2025-02-01T15:00:20Z",
                last_attempted_at="2025-02-01T15:00:20Z",
                published_url=url and f"{url}/{post_id}",
            ),
            post_id=post_id,
            status="posted",
            created_at=created_at,
        )
    )


def genviral_calls(world: World) -> dict[str, int]:
    """The post calls made (the account list that names the accounts of events is left out)."""
    return {name: count for name, count in world.source.calls.items() if name != "list_accounts"}


def tick(world: World, *, discover_mode: bool = False) -> list[WorkRequest]:
    """`discover_mode`: group as discover mode does, its state saying a walk has indexed the
    workspace's history unless the spec saved another (the discovery itself is not queued here)."""
    if discover_mode and world.store.discover_state() is None:
        indexed = DiscoverState(version=1, baseline_before=NOW, listed_until=NOW, history_indexed=True)
        world.store.save_discover_state(indexed, expected_version=0)
    queue = InMemoryWorkQueue()
    PollTick(
        index=world.store,
        pause=GenviralPause(world.store, world.clock),
        queue=queue,
        clock=world.clock,
        discover=False,
        windows=HotWindows(store=world.store, index=world.store, discover=world.store if discover_mode else None),
    ).run()
    return [request for request, _ in queue.sent]


def work(world: World, requests: list[WorkRequest]) -> list[str]:
    return world.batch().run([WorkItem(f"m{index}", request) for index, request in enumerate(requests)])


def test_posts_created_together_are_queued_as_one_refresh_and_recorded_from_one_list_call(world: World) -> None:
    post_ids = imported(world, 5)
    for post_id in post_ids[:3]:
        posted(world, post_id)

    (request,) = tick(world)
    assert isinstance(request, RefreshRequest)
    assert (request.post_ids, request.since, request.until) == (
        tuple(post_ids),
        IMPORTED,
        IMPORTED + 4 * timedelta(milliseconds=50),
    )
    assert work(world, [request]) == []

    assert genviral_calls(world) == {"posts_created": 1}
    assert [world.stored(post_id).post_status for post_id in post_ids] == ["posted"] * 3 + ["scheduled"] * 2
    assert len(world.published("sns")) == len(world.published("eventbridge")) == 6  # transitions, completions
    assert emitted(Metric.BULK_REFRESH_CALLS) == [1]
    assert emitted(Metric.POSTS_REFRESHED) == [5]


def test_a_listed_post_gives_the_events_and_ids_its_own_check_gives(world: World) -> None:
    post_ids = imported(world, 3)
    twin = World()
    for post_id in post_ids:
        twin.register(world.source.posts[post_id])
    for each in (world, twin):
        posted(each, post_ids[0])

    work(world, tick(world))
    for post_id in post_ids:
        twin.check.check(post_id)

    assert world.published("sns") == twin.published("sns")
    assert world.stored(post_ids[0]) == twin.stored(post_ids[0])


def test_late_urls_of_posts_created_together_come_from_one_list_call_as_their_own_checks_would_give(
    world: World,
) -> None:
    # Given three imported posts the relay saw posted without a URL: each is checked again at its first URL check
    post_ids = imported(world, 3)
    for post_id in post_ids:
        posted(world, post_id, url=None)
    work(world, tick(world))
    postings = list(world.publishers["sns"].published)
    world.forget_calls()

    # When the URLs appear and the URL checks come due together
    world.later(URL_CHECKS[0])
    for post_id in post_ids:
        posted(world, post_id)
    (request,) = tick(world)
    work(world, [request])

    # Then one list call reports each URL once, keyed on its posting
    assert isinstance(request, RefreshRequest)
    assert genviral_calls(world) == {"posts_created": 1}
    resolved = [event for event in world.publishers["sns"].published if event.event_type.endswith("url_resolved")]
    assert sorted(event.post_id for event in resolved) == post_ids
    assert {getattr(event, "posted_event_id", None) for event in resolved} == {
        event.event_id for event in postings if event.event_type == "post.account.posted"
    }


def test_a_lone_hot_post_keeps_its_own_check(world: World) -> None:
    together = imported(world, 2)
    alone = [POSTS[10]]
    world.register(scheduled(alone[0], IMPORTED + timedelta(hours=2)))

    requests = tick(world)

    assert sorted(map(type, requests), key=str) == [CheckRequest, RefreshRequest]
    refresh = next(request for request in requests if isinstance(request, RefreshRequest))
    assert refresh.post_ids == tuple(together)
    assert [request.post_id for request in requests if isinstance(request, CheckRequest)] == alone


def test_a_window_holds_at_most_100_posts_and_a_gap_starts_another(world: World) -> None:
    first = imported(world, 150)
    later = [POSTS[150], POSTS[151]]
    for index, post_id in enumerate(later):
        world.register(scheduled(post_id, IMPORTED + timedelta(minutes=11) + index * timedelta(seconds=1)))

    windows = [request.post_ids for request in tick(world) if isinstance(request, RefreshRequest)]

    assert sorted(windows, key=len) == [tuple(later), tuple(first[100:]), tuple(first[:100])]


def refreshed(requests: list[WorkRequest]) -> list[tuple[str, ...]]:
    return sorted(request.post_ids for request in requests if isinstance(request, RefreshRequest))


def checked_alone(requests: list[WorkRequest]) -> list[str]:
    return sorted(request.post_id for request in requests if isinstance(request, CheckRequest))


def finish(world: World, post_ids: list[str]) -> None:
    """Given these posts posted and recorded (their watches ended, their records kept)."""
    for post_id in post_ids:
        posted(world, post_id)
    work(world, tick(world))
    assert not any(world.stored(post_id).watching for post_id in post_ids)
    world.later(timedelta(minutes=1))
    world.forget_calls()


def test_a_window_holds_at_most_100_posts_the_relay_knows_of_its_finished_ones_included(world: World) -> None:
    post_ids = imported(world, 150)
    finish(world, post_ids[::2])
    hot = post_ids[1::2]

    requests = tick(world)

    # The import's first 100 posts hold 50 hot ones: its 101st post starts the next window
    assert refreshed(requests) == [tuple(hot[:50]), tuple(hot[50:])]
    assert world.store.calls["query"] == TICK_QUERIES + 2  # the created index, once per window
    assert work(world, requests) == []
    assert genviral_calls(world) == {"posts_created": 2}  # no answer came back full


def test_hot_posts_created_in_one_millisecond_with_over_100_others_still_share_a_window(world: World) -> None:
    post_ids = imported(world, 150, spacing=timedelta(0))
    finish(world, post_ids[::3])
    hot = [post_id for post_id in post_ids if post_id not in post_ids[::3]]

    assert refreshed(tick(world)) == [tuple(sorted(hot))]  # no window is smaller than that instant


def test_in_discover_mode_hot_posts_created_hours_apart_share_a_window_when_few_posts_lie_between(
    world: World,
) -> None:
    hot = [POSTS[0], POSTS[1], POSTS[2]]
    for index, post_id in enumerate(hot):
        world.register(scheduled(post_id, IMPORTED + index * timedelta(hours=3)))
    world.forget_calls()

    assert refreshed(tick(world)) == []  # registered mode: posts nobody registered may lie in the gaps
    walking = DiscoverState(version=1, baseline_before=NOW, listed_until=NOW, walking_history=True)
    world.store.save_discover_state(walking, expected_version=0)
    assert refreshed(tick(world, discover_mode=True)) == []  # nor before a walk has indexed the history
    indexed = walking.model_copy(update={"version": 2, "history_indexed": True, "walking_history": False})
    world.store.save_discover_state(indexed, expected_version=1)
    assert refreshed(requests := tick(world, discover_mode=True)) == [tuple(hot)]
    assert work(world, requests) == []
    assert genviral_calls(world) == {"posts_created": 1}


def test_in_discover_mode_a_window_still_ends_at_100_posts_of_the_workspace(world: World) -> None:
    post_ids = imported(world, 130, spacing=timedelta(minutes=1))
    finish(world, post_ids[1:-1])

    assert refreshed(tick(world, discover_mode=True)) == []  # 130 posts lie from the first to the last
    assert checked_alone(tick(world, discover_mode=True)) == sorted([post_ids[0], post_ids[-1]])


def test_past_its_reads_of_the_created_index_a_tick_groups_hot_posts_as_registered_mode_does(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, crowd, second, third = POSTS[:2], POSTS[2:152], POSTS[152:154], POSTS[154:156]
    for index, post_id in enumerate(first + crowd):
        world.register(scheduled(post_id, IMPORTED + index * timedelta(seconds=1)))
    finish(world, crowd)
    for index, post_id in enumerate(second):
        world.register(scheduled(post_id, IMPORTED + timedelta(hours=2, seconds=index)))
    for index, post_id in enumerate(third):
        world.register(scheduled(post_id, IMPORTED + timedelta(hours=4, seconds=index)))
    world.forget_calls()

    assert refreshed(tick(world, discover_mode=True)) == sorted([tuple(first), tuple(second + third)])
    monkeypatch.setattr(bulk_refresh, "MAX_WINDOW_READS", 1)
    world.forget_calls()
    assert refreshed(tick(world, discover_mode=True)) == sorted([tuple(first), tuple(second), tuple(third)])
    assert world.store.calls["query"] == TICK_QUERIES + 1


def test_a_full_answer_is_listed_on_below_its_oldest_post(world: World) -> None:
    post_ids = imported(world, 3, spacing=timedelta(seconds=1))
    # 100 other posts of the workspace, created between the second and the third: the first answer is full.
    for index in range(100):
        world.source.put(
            scheduled(f"99999999-0000-4000-8000-{index:012d}", IMPORTED + timedelta(milliseconds=1500 + index))
        )
    for post_id in post_ids:
        posted(world, post_id)

    work(world, tick(world))

    assert genviral_calls(world) == {"posts_created": 2}
    assert [world.stored(post_id).post_status for post_id in post_ids] == ["posted"] * 3


def test_a_post_missing_from_a_complete_answer_is_confirmed_by_its_own_call_before_its_watch_ends(
    world: World,
) -> None:
    gone, hidden, shown = imported(world, 3)
    del world.source.posts[gone]  # deleted in Genviral
    listing = world.source.posts_created

    def stale_listing(since: datetime, until: datetime, *, limit: int) -> PostPage:
        page = listing(since, until, limit=limit)  # a listing that leaves out a post its own GET still shows
        kept = tuple(post for post in page.posts if post.id != hidden)
        return PostPage(posts=kept, unreadable_ids=(), size=len(kept))

    world.source.posts_created = stale_listing  # type: ignore[method-assign]
    posted(world, hidden)

    work(world, tick(world))

    assert genviral_calls(world) == {"posts_created": 1, "get_post": 2}
    assert (world.stored(gone).watching, world.stored(gone).ended_reason) == (False, "post_not_found")
    assert world.stored(hidden).post_status == "posted"  # its own answer, recorded
    assert world.stored(shown).watching


def test_a_refused_list_call_pauses_genviral_calls_and_changes_nothing(world: World) -> None:
    post_ids = imported(world, 4)
    before = [world.stored(post_id) for post_id in post_ids]
    world.source.fail_next["list"] = [GenviralAuthError("refused", status=401, error_code="invalid_token")]

    work(world, tick(world))

    assert genviral_calls(world) == {"posts_created": 1}  # and no post of its own: calls are paused
    assert world.path.pause.reason() is not None
    assert [world.stored(post_id) for post_id in post_ids] == before


def test_a_failed_list_call_leaves_its_posts_due_without_a_call_each(world: World) -> None:
    post_ids = imported(world, 4)
    world.source.fail_next["list"] = [GenviralServerError("busy", status=500, error_code="list_failed")]

    work(world, tick(world))

    assert genviral_calls(world) == {"posts_created": 1}
    assert set(post_ids) <= set(world.store.due_post_ids(NOW))  # queued again by the next tick


def test_a_late_copy_of_a_refresh_lists_nothing_again(world: World) -> None:
    imported(world, 4)
    (first,) = tick(world)
    world.later(timedelta(minutes=1))
    (second,) = tick(world)  # queued again: the first has not been taken yet
    world.later(timedelta(minutes=1))

    work(world, [first])  # late: its posts are claimed
    work(world, [second])

    assert genviral_calls(world) == {"posts_created": 1}
    assert emitted(Metric.DUPLICATE_CHECKS_SKIPPED) == [4]


def test_a_post_asked_for_by_a_check_and_a_refresh_in_one_batch_is_refreshed_once(world: World) -> None:
    post_ids = imported(world, 3)
    (refresh,) = tick(world)

    work(world, [CheckRequest(post_id=post_ids[1]), refresh])

    assert genviral_calls(world) == {"posts_created": 1}
    assert emitted(Metric.DUPLICATE_CHECK_REQUESTS) == [1]


def test_discover_modes_state_is_read_until_the_history_is_indexed_then_never_again(world: World) -> None:
    imported(world, 3)
    windows = HotWindows(store=world.store, index=world.store, discover=world.store)
    due = list(world.store.due_watches(NOW))

    assert len(windows.group(due).windows) == 1  # no state yet: read, and grouped as registered mode does
    indexed = DiscoverState(version=1, baseline_before=NOW, listed_until=NOW, history_indexed=True)
    world.store.save_discover_state(indexed, expected_version=0)
    world.forget_calls()
    windows.group(due)
    windows.group(due)

    assert world.store.calls["get_item"] == 1
