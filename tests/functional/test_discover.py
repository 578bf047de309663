"""Discover mode: the relay lists the workspace's posts and watches each new one, with no registration.

Genviral on loopback HTTP (the emulator answers `GET /posts` with its filters and its 100-post cap),
AWS on moto; the handlers through the template for the end-to-end cases, `Discovery` directly for
the walk itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genviral_relay.clock import Clock, format_ts, moment_from, utc_now
from genviral_relay.models.messages import DiscoverRequest
from genviral_relay.models.upstream import PAGE_LIMIT
from genviral_relay.observability import Metric, metrics
from genviral_relay.polling.discover import LOOK_BACK, TIME_RESERVE, DiscoverReport, Discovery
from genviral_relay.polling.work_batch import WorkItem
from local.emulator import Fault, GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import NO_ACCOUNT_CHECKS, SYNC, TOKEN
from tests.functional.shared_rig import stored_item
from tests.functional.subscribers import drain, transitions
from tests.support.doubles import SteppingClock
from tests.support.seams import RelayRig


@pytest.fixture
def discover_stack(emulator: GenviralEmulator) -> Iterator[MotoStack]:
    parameters = {"WatchMode": "discover", **NO_ACCOUNT_CHECKS}
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters=parameters) as running:
        yield running


@pytest.fixture
def discover_runner(discover_stack: MotoStack) -> LocalRunner:
    return LocalRunner(discover_stack)


@pytest.fixture
def rig(stack: MotoStack, emulator: GenviralEmulator) -> RelayRig:
    return RelayRig(stack, emulator.base_url, genviral_timeout=10.0)  # no hang faults here: never time out


def discovery(rig: RelayRig, *, since: str = "now", max_list_calls: int = 20, clock: Clock = utc_now) -> Discovery:
    return Discovery(
        check=rig.checker,
        source=rig.source,
        store=rig.store,
        state=rig.tables,
        pause=rig.path.pause,
        clock=clock,
        baseline_before=lambda now: moment_from(since, now),
        max_list_calls=max_list_calls,
    )


def walk_to_the_end(walker: Discovery, *, runs: int = 50) -> list[DiscoverReport]:
    reports = [walker.run()]
    while not reports[-1].walk_complete and len(reports) < runs:
        reports.append(walker.run())
    assert reports[-1].walk_complete
    return reports


def watched(rig: RelayRig, post_ids: list[str]) -> set[str]:
    return set(rig.store.get_many(post_ids))


def list_requests(emulator: GenviralEmulator) -> list[Any]:
    return [record for record in emulator.requests_log if record.path.rstrip("/").endswith("/posts")]


def post_requests(emulator: GenviralEmulator) -> int:
    return len(emulator.requests_log) - len(list_requests(emulator))


# ---------------------------------------------------------------- through the handlers


def test_a_tick_in_discover_mode_watches_old_posts_silently_and_reports_new_ones(
    emulator: GenviralEmulator, discover_runner: LocalRunner, discover_stack: MotoStack
) -> None:
    # Given a workspace with history: a post that already published, and one publishing now
    now = datetime.now(UTC)
    finished = emulator.create_post(
        accounts=1, scheduled_at=now - timedelta(days=2), created_at=now - timedelta(days=3)
    )
    emulator.mark_posted(finished, emulator.account_ids(finished)[0])
    publishing = emulator.create_post(
        accounts=2, scheduled_at=now - timedelta(minutes=1), created_at=now - timedelta(hours=2)
    )

    # When the relay ticks for the first time in discover mode (DiscoverSince defaults to now)
    assert discover_runner.tick()["enqueued"] == 1 + SYNC  # nothing is watched yet: the discovery request only
    discover_runner.drain_work_queue()

    # Then both are watched, their states recorded from the list alone, and nothing was published
    assert stored_item(discover_stack, finished)["post_status"]["S"] == "posted"
    assert stored_item(discover_stack, publishing)["post_status"]["S"] == "scheduled"
    assert emulator.calls(finished) == emulator.calls(publishing) == 0
    assert drain(discover_stack).sns_documents() == []

    # When a new post appears already published, and the old one publishes one account
    fresh = emulator.create_post(accounts=1, scheduled_at=None)
    emulator.mark_posted(fresh, emulator.account_ids(fresh)[0])
    first_account = emulator.account_ids(publishing)[0]
    emulator.mark_posted(publishing, first_account)
    discover_runner.tick_and_work()

    # Then each change is reported once: the new post as first seen, the old one from its baseline
    received = drain(discover_stack)
    documents = received.sns_transitions()
    assert sorted((d["post_id"], d["account_id"], d["previous_status"]) for d in documents) == sorted(
        [(fresh, emulator.account_ids(fresh)[0], None), (publishing, first_account, "scheduled")]
    )
    # and the fresh post, all of whose accounts are final, is reported completed; the other is not
    assert sorted((d["post_id"], d["event_type"]) for d in received.sns_documents()) == sorted(
        [(fresh, "post.account.posted"), (fresh, "post.completed"), (publishing, "post.account.posted")]
    )
    # the fresh post's event came from its own canonical answer, not from the list
    assert emulator.calls(fresh) == 1


def test_discovery_and_registration_of_the_same_post_never_double_emit(
    emulator: GenviralEmulator, discover_runner: LocalRunner, discover_stack: MotoStack
) -> None:
    # Given discover mode has started, and a new post is registered through the API as well
    discover_runner.tick_and_work()
    post_id = emulator.create_post(accounts=2, scheduled_at=None)
    first, second = emulator.account_ids(post_id)
    emulator.mark_posted(post_id, first)
    assert discover_runner.api("POST", "/watches", {"post_id": post_id}).status == 201

    # When discovery lists it, twice, and the second account then fails
    for _ in range(2):
        discover_runner.tick_and_work()
    emulator.mark_failed(post_id, second, error_message="rejected")
    discover_runner.tick_and_work()

    # Then each transition, and the post's completion, reached the subscribers exactly once
    received = drain(discover_stack)
    documents = received.sns_transitions()
    assert sorted((d["account_id"], d["status"]) for d in documents) == sorted([(first, "posted"), (second, "failed")])
    assert sorted(received.sns_event_types()) == ["post.account.failed", "post.account.posted", "post.completed"]
    assert len({d["event_id"] for d in received.sns_documents()}) == 3


def test_registering_a_post_discovery_already_reported_emits_nothing_again(
    emulator: GenviralEmulator, discover_runner: LocalRunner, discover_stack: MotoStack
) -> None:
    # Given discovery has reported a new post's first account
    discover_runner.tick_and_work()
    post_id = emulator.create_post(accounts=2, scheduled_at=None)
    first, second = emulator.account_ids(post_id)
    emulator.mark_posted(post_id, first)
    discover_runner.tick_and_work()

    # When the pipeline registers it afterwards, and the second account then posts
    assert discover_runner.api("POST", "/watches", {"post_id": post_id}).status == 200
    emulator.mark_posted(post_id, second)
    discover_runner.tick_and_work()

    # Then each transition, and the post's completion, reached the subscribers exactly once
    received = drain(discover_stack)
    documents = received.sns_transitions()
    assert sorted(d["account_id"] for d in documents) == sorted([first, second])
    assert received.sns_event_types() == ["post.account.posted", "post.account.posted", "post.completed"]
    assert len({d["event_id"] for d in received.sns_documents()}) == 3


def test_registered_mode_never_lists_posts(emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack) -> None:
    emulator.create_post(accounts=1, created_at=datetime.now(UTC) - timedelta(minutes=1))
    assert runner.tick()["enqueued"] == SYNC  # the workspaces' sync alone
    runner.drain_work_queue()
    assert emulator.requests_log == []


# ---------------------------------------------------------------- the baseline


def test_discover_since_reports_posts_created_after_it_and_baselines_the_rest(
    emulator: GenviralEmulator, rig: RelayRig
) -> None:
    # Given posts that all published already, created 3 days, 36 hours and 1 hour ago
    now = datetime.now(UTC)
    created = {age: now - age for age in (timedelta(days=3), timedelta(hours=36), timedelta(hours=1))}
    posts = {}
    for age, created_at in created.items():
        posts[age] = emulator.create_post(accounts=1, scheduled_at=created_at, created_at=created_at)
        emulator.mark_posted(posts[age], emulator.account_ids(posts[age])[0])

    # When discovery first runs with DiscoverSince = 2d
    walk_to_the_end(discovery(rig, since="2d"))

    # Then the two posts created within two days are reported (first seen), the older one is not
    reported = {document["post_id"] for document in rig.collect().sns}
    assert reported == {posts[timedelta(hours=36)], posts[timedelta(hours=1)]}
    assert watched(rig, list(posts.values())) == set(posts.values())


def test_the_baseline_is_fixed_by_the_first_run(emulator: GenviralEmulator, rig: RelayRig) -> None:
    walk_to_the_end(discovery(rig, since="now"))
    first_state = rig.tables.discover_state()
    assert first_state is not None

    # A later run configured differently keeps the first run's baseline
    walk_to_the_end(discovery(rig, since="30d"))
    later_state = rig.tables.discover_state()
    assert later_state is not None
    assert later_state.baseline_before == first_state.baseline_before


# ---------------------------------------------------------------- the walk


def test_each_tick_after_the_first_walk_lists_only_the_look_back_window(
    emulator: GenviralEmulator, rig: RelayRig
) -> None:
    now = datetime.now(UTC)
    for index in range(150):
        emulator.create_post(accounts=1, created_at=now - timedelta(days=1, hours=index))
    walker = discovery(rig)
    walk_to_the_end(walker)
    emulator.requests_log.clear()

    walker.run()

    (request,) = list_requests(emulator)
    since = datetime.fromisoformat(request.query["since"].replace("Z", "+00:00"))
    assert now - LOOK_BACK - timedelta(seconds=5) <= since <= datetime.now(UTC) - LOOK_BACK + timedelta(seconds=5)


def test_a_watched_post_the_list_shows_changed_is_checked_at_once(emulator: GenviralEmulator, rig: RelayRig) -> None:
    # Given a discovered post scheduled for tomorrow (its next own check is hours away)
    post_id = emulator.create_post(accounts=1, scheduled_at=datetime.now(UTC) + timedelta(days=1))
    walker = discovery(rig)
    walk_to_the_end(walker)
    assert emulator.calls(post_id) == 0

    # When it fails early and the next discovery lists it
    emulator.mark_failed(post_id, emulator.account_ids(post_id)[0], error_message="token expired")
    walker.run()

    # Then the list prompted one canonical check, which reported the failure
    assert emulator.calls(post_id) == 1
    delivered = rig.collect().sns
    assert [(d["post_id"], d["status"]) for d in transitions(delivered)] == [(post_id, "failed")]
    assert [d["event_type"] for d in delivered] == ["post.account.failed", "post.completed"]
    # and a listing that shows nothing new prompts no check
    walker.run()
    assert emulator.calls(post_id) == 1


# ---------------------------------------------------------------- faults


def test_a_failed_list_call_keeps_the_walk_where_it_was(emulator: GenviralEmulator, rig: RelayRig) -> None:
    for index in range(120):
        emulator.create_post(accounts=1, created_at=datetime.now(UTC) - timedelta(hours=index))
    walker = discovery(rig)
    first = walker.run()
    state = rig.tables.discover_state()
    assert state is not None

    emulator.inject(Fault.server_error(), times=3)  # every attempt of the next list call
    failed = walker.run()

    assert failed.error is not None
    assert failed.list_calls == 0
    after = rig.tables.discover_state()
    assert after is not None
    assert after.pending == state.pending
    assert walk_to_the_end(walker)[-1].walk_complete
    assert first.list_calls > 0


def test_a_refused_key_on_the_list_pauses_calls(emulator: GenviralEmulator, rig: RelayRig) -> None:
    emulator.plan_error = "subscription_required"
    batch = rig.path.work_batch(discovery=discovery(rig))

    assert batch.run([WorkItem("m-1", DiscoverRequest(discover="posts"))]) == []

    reason = rig.tables.genviral_pause(utc_now()).reason
    assert reason is not None
    assert "402" in reason
    assert metrics.metric_set[Metric.GENVIRAL_ERRORS_402]["Value"] == [1.0]  # what the 402 alarm watches
    assert rig.tables.discover_state() is not None  # the baseline is fixed even though nothing was listed


def test_a_first_walk_too_big_for_one_invocation_stops_in_time_and_resumes(
    emulator: GenviralEmulator, rig: RelayRig
) -> None:
    # Given 30 new posts, each already published (each needs its own canonical call before an event)
    now = datetime.now(UTC)
    post_ids = [emulator.create_post(accounts=1, created_at=now - timedelta(minutes=index + 1)) for index in range(30)]
    for post_id in post_ids:
        emulator.mark_posted(post_id, emulator.account_ids(post_id)[0])
    walker = discovery(rig, since="1d")
    remaining = iter([timedelta(seconds=60)] * 12)  # the invocation's clock: 12 looks, then nearly out

    # When the first run has time for only part of them
    first = walker.run(time_left=lambda: next(remaining, TIME_RESERVE - timedelta(seconds=1)))

    # Then it stops, keeps the window for the next run, and that run reports the rest, each post once
    assert 0 < len(watched(rig, post_ids)) < len(post_ids)
    assert not first.walk_complete
    second = walker.run(time_left=lambda: timedelta(seconds=60))
    assert second.walk_complete
    assert watched(rig, post_ids) == set(post_ids)
    reported = [
        (event.post_id, event.event_type)
        for report in (first, second)
        for outcome in report.outcomes
        for event in outcome.events
    ]
    assert sorted(reported) == sorted(
        (post_id, event_type) for post_id in post_ids for event_type in ("post.account.posted", "post.completed")
    )


def test_more_than_a_page_of_posts_created_within_one_millisecond_is_reported(
    emulator: GenviralEmulator, rig: RelayRig
) -> None:
    # Given 101 posts with the same created_at: no window Genviral can list holds fewer than 100
    created_at = datetime.now(UTC) - timedelta(hours=1)
    post_ids = [emulator.create_post(accounts=1, created_at=created_at) for _ in range(PAGE_LIMIT + 1)]

    reports = walk_to_the_end(discovery(rig, max_list_calls=200))

    # Then the walk still ends, watches the page it got, and says loudly that one post may be missed
    assert len(watched(rig, post_ids)) == PAGE_LIMIT
    assert sum(report.list_calls for report in reports) < 200
    # (>= 1: halves share their middle bound, so the crowded millisecond can sit in two windows)
    assert sum(metrics.metric_set[Metric.DISCOVER_WINDOWS_UNSPLITTABLE]["Value"]) >= 1


def test_a_malformed_list_item_is_watched_through_its_own_answer(emulator: GenviralEmulator, rig: RelayRig) -> None:
    # Given a post Genviral lists in a shape the relay cannot read (no accounts), next to a good one
    good = emulator.create_post(accounts=1, scheduled_at=None)
    odd = emulator.create_post(accounts=1, scheduled_at=None)
    emulator.mark_posted(odd, emulator.account_ids(odd)[0])
    listed_odd = {key: value for key, value in emulator.post_json(odd).items() if key != "accounts"}
    emulator.inject(Fault.body({"summary": {}, "posts": [emulator.post_json(good), listed_odd]}))

    # When discovery runs (baseline in the past: both are new posts)
    walker = discovery(rig, since="1d")
    walker.run()

    # Then both are watched; the odd one through its own canonical answer, which reported its account
    assert watched(rig, [good, odd]) == {good, odd}
    assert emulator.calls(odd) == 1
    delivered = rig.collect().sns
    assert [(d["post_id"], d["status"]) for d in transitions(delivered)] == [(odd, "posted")]
    assert [(d["post_id"], d["event_type"]) for d in delivered] == [
        (odd, "post.account.posted"),
        (odd, "post.completed"),
    ]


def test_the_list_query_uses_genviral_timestamps(emulator: GenviralEmulator, rig: RelayRig) -> None:
    discovery(rig).run()
    (request,) = list_requests(emulator)
    assert request.query["limit"] == str(PAGE_LIMIT)
    assert request.query["since"] == format_ts(datetime(1970, 1, 1, tzinfo=UTC))
    assert request.query["until"].endswith("Z")


def test_discovery_sees_only_the_keys_scope(emulator: GenviralEmulator, rig: RelayRig) -> None:
    # Given a key scoped to two accounts, a post on one of them and another, and a post on neither
    emulator.scope_accounts = {"acct-in-1", "acct-in-2"}
    mixed = emulator.create_post(accounts=["acct-in-1", "acct-out"], scheduled_at=None)
    outside = emulator.create_post(accounts=["acct-out"], scheduled_at=None)

    walk_to_the_end(discovery(rig))

    # Then only the post in scope is watched, with only its account in scope
    assert watched(rig, [mixed, outside]) == {mixed}
    record = rig.store.get(mixed)
    assert record is not None
    assert set(record.accounts) == {"acct-in-1"}


def test_in_discover_mode_hot_posts_created_hours_apart_are_refreshed_by_one_list_call(
    emulator: GenviralEmulator, discover_runner: LocalRunner, relay_clock: SteppingClock
) -> None:
    # Given two posts publishing now, created three hours apart with nothing between, watched by discovery
    due = relay_clock.now - timedelta(minutes=1)
    created = [relay_clock.now - timedelta(hours=hours) for hours in (5, 2)]
    post_ids = [emulator.create_post(scheduled_at=due, created_at=moment) for moment in created]
    discover_runner.tick_and_work()
    emulator.requests_log.clear()

    # When the next tick finds both due
    relay_clock.now += timedelta(minutes=1)
    assert (
        discover_runner.tick()["enqueued"] == 2 + SYNC
    )  # one refresh for both (the table knows every post), the discovery
    discover_runner.drain_work_queue()

    # Then one list call over their window refreshed them (the other is discovery's look-back), none alone
    windows = sorted((record.query["since"], record.query["until"]) for record in list_requests(emulator))
    assert len(windows) == 2
    assert windows[0] == (format_ts(created[0]), format_ts(created[1]))
    assert all(emulator.calls(post_id) == 0 for post_id in post_ids)
