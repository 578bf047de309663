"""A worker's batch (`polling/work_batch.py`) on the in-memory doubles: typed dispatch, one check per
post, failures confined to their own messages, and Genviral left alone once it refuses the key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genviral_relay.errors import GenviralAuthError, GenviralError, GenviralRateLimitedError, GenviralServerError
from genviral_relay.models.messages import CheckRequest, DiscoverRequest, SweepRequest, WorkRequest
from genviral_relay.observability import Metric
from genviral_relay.polling.work_batch import AdaptiveLimit, WorkItem
from tests.builders import NOW, account, post
from tests.unit.world import World, emitted

POSTS = [f"00000000-0000-4000-8000-{index:012d}" for index in range(1, 5)]
WRITES = ("transact_write_items", "update_item", "put_item", "delete_item")


def watched(world: World, *post_ids: str) -> None:
    """Given these posts are watched and due, and Genviral now shows each of them posted."""
    for post_id in post_ids:
        world.register(post(account(status="scheduled"), post_id=post_id))
        world.source.put(post(account(status="posted"), post_id=post_id, status="posted"))
    world.forget_calls()


def items(*requests: tuple[str, WorkRequest]) -> list[WorkItem]:
    return [WorkItem(message_id=message_id, request=request) for message_id, request in requests]


def check(post_id: str) -> CheckRequest:
    return CheckRequest(post_id=post_id)


def recorded_posts(world: World) -> set[str]:
    """The posts whose posted account the relay recorded."""
    return {post_id for post_id in POSTS if (w := world.store.get(post_id)) and w.post_status == "posted"}


def test_a_post_asked_for_by_several_messages_is_checked_once(world: World) -> None:
    watched(world, POSTS[0], POSTS[1])

    failed = world.batch().run(
        items(("m1", check(POSTS[0])), ("m2", check(POSTS[0])), ("m3", check(POSTS[1])), ("m4", check(POSTS[0])))
    )

    assert failed == []
    assert world.source.calls["get_post"] == 2
    assert world.store.calls["batch_get_item"] == 1  # the batch's watches in one read
    assert emitted(Metric.DUPLICATE_CHECK_REQUESTS) == [2]
    assert len(world.published("sns")) == 4  # each post's transition and completion, once


def test_a_batch_without_duplicates_counts_none(world: World) -> None:
    watched(world, POSTS[0], POSTS[1])

    world.batch().run(items(("m1", check(POSTS[0])), ("m2", check(POSTS[1]))))

    assert emitted(Metric.DUPLICATE_CHECK_REQUESTS) == []


@pytest.mark.parametrize("threads", [1, 4])
def test_an_unexpected_failure_fails_only_that_posts_messages(world: World, threads: int) -> None:
    watched(world, *POSTS)
    world.source.fail_next[POSTS[1]] = [RuntimeError("a bug")]

    failed = world.batch(threads=threads).run(
        items(
            ("m1", check(POSTS[0])),
            ("m2", check(POSTS[1])),
            ("m3", check(POSTS[2])),
            ("m4", check(POSTS[1])),
            ("m5", check(POSTS[3])),
        )
    )

    assert sorted(failed) == ["m2", "m4"]  # every message of the failed post, no other
    assert recorded_posts(world) == {POSTS[0], POSTS[2], POSTS[3]}
    assert emitted(Metric.CHECK_FAILURES) == [1]


def test_while_paused_a_batch_does_nothing_and_fails_nothing(world: World) -> None:
    watched(world, POSTS[0])
    world.store.store_pause(until=NOW + timedelta(minutes=5), reason="402")
    world.forget_calls()

    failed = world.batch().run(
        items(("m1", check(POSTS[0])), ("m2", SweepRequest(sweep="retry")), ("m3", DiscoverRequest(discover="posts")))
    )

    assert failed == []
    assert sum(world.source.calls.values()) == 0
    assert {call for call in world.store.calls if call in WRITES} == set()
    assert POSTS[0] in set(world.store.due_post_ids(NOW))  # the poller queues it again after the pause


def test_after_a_refusal_the_rest_of_the_batch_asks_genviral_nothing(world: World) -> None:
    watched(world, POSTS[0], POSTS[1], POSTS[2])
    world.source.fail_next[POSTS[0]] = [GenviralAuthError("revoked", status=401, error_code="unauthorized")]

    failed = world.batch().run(items(("m1", check(POSTS[0])), ("m2", check(POSTS[1])), ("m3", check(POSTS[2]))))

    assert failed == []  # a refusal is no failure: the posts stay due
    assert world.source.calls["get_post"] == 1
    assert recorded_posts(world) == set()
    assert set(world.store.due_post_ids(NOW)) >= {POSTS[0], POSTS[1], POSTS[2]}


def test_after_a_refused_sweep_no_post_is_checked(world: World) -> None:
    watched(world, POSTS[0])
    world.source.fail_next["list"] = [GenviralAuthError("revoked", status=401, error_code="unauthorized")]

    world.batch().run(items(("m1", SweepRequest(sweep="retry")), ("m2", check(POSTS[0]))))

    assert world.source.calls["get_post"] == 0


@pytest.mark.parametrize(
    ("error", "shrinks"),
    [
        pytest.param(GenviralRateLimitedError("slow down", retry_after=None), True, id="429"),
        pytest.param(GenviralServerError("get_failed", status=500), False, id="500"),
    ],
)
def test_a_429_halves_the_batchs_concurrency_and_the_batch_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch, error: GenviralError, shrinks: bool
) -> None:
    limits: list[int] = []
    shrink = AdaptiveLimit.shrink

    def recording_shrink(limit: AdaptiveLimit) -> None:
        shrink(limit)
        limits.append(limit.limit)

    monkeypatch.setattr(AdaptiveLimit, "shrink", recording_shrink)
    watched(world, POSTS[0], POSTS[1])
    world.source.fail_next[POSTS[0]] = [error]

    failed = world.batch(threads=4).run(items(("m1", check(POSTS[0])), ("m2", check(POSTS[1]))))

    assert failed == []
    assert limits == ([2] if shrinks else [])
    assert world.source.calls["get_post"] == 2  # unlike a refusal, the rest of the batch still asks
    assert recorded_posts(world) == {POSTS[1]}


def test_the_limit_halves_down_to_one_holder() -> None:
    limit = AdaptiveLimit(5)

    observed = []
    for _ in range(4):
        limit.shrink()
        observed.append(limit.limit)

    assert observed == [2, 1, 1, 1]
    assert AdaptiveLimit(0).limit == 1


def test_a_sweep_message_runs_the_retry_sweep_once(world: World) -> None:
    failed = world.batch().run(items(("s1", SweepRequest(sweep="retry")), ("s2", SweepRequest(sweep="retry"))))

    assert failed == []
    assert world.source.calls["posts_in_status"] == 1


def test_a_discover_message_runs_discovery_once(world: World) -> None:
    failed = world.batch().run(
        items(("d1", DiscoverRequest(discover="posts")), ("d2", DiscoverRequest(discover="posts")))
    )

    assert failed == []
    assert world.source.calls["posts_created"] == 1
    state = world.store.discover_state()
    assert state is not None
    assert state.listed_until == NOW


@pytest.mark.parametrize(
    "request_without_worker",
    [
        pytest.param(DiscoverRequest(discover="posts"), id="discover"),
        pytest.param(SweepRequest(sweep="retry"), id="sweep"),
    ],
)
def test_work_this_worker_cannot_do_fails_only_its_own_messages(
    world: World, request_without_worker: WorkRequest
) -> None:
    watched(world, POSTS[0])
    batch = world.batch(sweep=False, discovery=False)

    failed = batch.run(items(("x1", request_without_worker), ("c1", check(POSTS[0])), ("x2", request_without_worker)))

    assert failed == ["x1", "x2"]
    assert recorded_posts(world) == {POSTS[0]}
    assert emitted(Metric.CHECK_FAILURES) == []  # not a post check that failed


def test_an_unexpected_failure_of_the_sweep_fails_only_the_sweep_messages(world: World) -> None:
    watched(world, POSTS[0])
    world.source.fail_next["list"] = [RuntimeError("a bug")]

    failed = world.batch().run(items(("s1", SweepRequest(sweep="retry")), ("c1", check(POSTS[0]))))

    assert failed == ["s1"]
    assert recorded_posts(world) == {POSTS[0]}
