"""The event feed on the in-memory doubles: the check's commit puts each new event in the feed, a slow commit puts
it again at a fresh position, the outbox appends what it had to read back (a crash after the commit), and the
reader serves pages a consumer follows with `next`, and one event's story."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest

from genviral_relay.errors import CursorExpiredError, EventNotFoundError
from genviral_relay.feed.reader import EventFeed
from genviral_relay.models.event_log import DeliveryState, FeedEntry
from genviral_relay.models.events import published_document
from genviral_relay.models.webhooks import EndpointFilter, WebhookEndpoint
from genviral_relay.rules.cursors import CursorError, encode_cursor
from genviral_relay.rules.event_feed import COMMIT_WINDOW, FEED_SETTLE, end_of
from genviral_relay.rules.webhook_retries import events_kept_for
from tests.builders import ACCOUNT_A, NOW, POST_ID, account, post
from tests.support.doubles import InMemoryWebhookStore
from tests.support.event_log_doubles import InMemoryDeliveryLog, InMemoryEventLog
from tests.unit.world import World

OTHER_POST = "22222222-2222-2222-2222-222222222222"
RETENTION = events_kept_for(30)


class SimulatedCrash(BaseException):
    """The process dies (nothing in the relay catches a BaseException)."""


def transition(world: World, post_id: str = POST_ID) -> None:
    """Given a watched post whose account Genviral now shows posted (its check finds an event and the completion)."""
    world.register(post(account(ACCOUNT_A), post_id=post_id))
    world.source.put(post(account(ACCOUNT_A, status="posted"), post_id=post_id, status="posted"))


def feed_of(world: World) -> EventFeed:
    return EventFeed(
        log=world.store.feed,
        deliveries=InMemoryDeliveryLog(),
        webhooks=InMemoryWebhookStore(),
        clock=world.clock,
        event_retention=RETENTION,
    )


def positions(log: InMemoryEventLog) -> list[str]:
    return sorted(log.entries)


def test_a_commit_puts_each_new_event_in_the_feed_at_its_stamp_with_the_published_document(world: World) -> None:
    transition(world)

    outcome = world.check.check(POST_ID)

    assert len(outcome.events) == 2  # the account's transition and the post's completion
    entries = sorted(world.store.feed.entries.values(), key=lambda entry: entry.position)
    assert {entry.event_id for entry in entries} == {event.event_id for event in outcome.events}
    assert {entry.committed_at for entry in entries} == {NOW}
    by_id = {event.event_id: event for event in outcome.events}
    for entry in entries:
        assert entry.document == published_document(by_id[entry.event_id]).decode()
        assert (entry.post_id, entry.event_type) == (POST_ID, by_id[entry.event_id].event_type)
    assert world.stored().outbox == frozenset()  # the feed's outbox entries are acknowledged with the others


def test_a_commit_answered_in_time_takes_one_position_each(world: World) -> None:
    transition(world)
    world.store.landing = lambda post_id: world.later(COMMIT_WINDOW)  # at the window's edge: in time

    world.check.check(POST_ID)

    assert len(world.store.feed.entries) == 2


def test_a_commit_answered_late_appends_its_events_again_at_a_fresh_position(world: World) -> None:
    transition(world)
    world.store.landing = lambda post_id: world.later(COMMIT_WINDOW + timedelta(milliseconds=1))

    outcome = world.check.check(POST_ID)

    late = NOW + COMMIT_WINDOW + timedelta(milliseconds=1)
    stamps = sorted((entry.event_id, entry.committed_at) for entry in world.store.feed.entries.values())
    assert stamps == sorted((event.event_id, moment) for event in outcome.events for moment in (NOW, late))


def test_the_outbox_appends_an_event_it_read_back_after_a_crash_at_a_fresh_position(world: World) -> None:
    transition(world)
    world.publishers["sns"].crashing = True
    with pytest.raises(SystemExit):
        world.check.check(POST_ID)
    assert len(world.store.feed.entries) == 2  # the commit's positions

    world.publishers["sns"].crashing = False
    world.later(timedelta(minutes=1))
    world.check.check(POST_ID)

    again = [entry for entry in world.store.feed.entries.values() if entry.committed_at == NOW + timedelta(minutes=1)]
    assert len(again) == 2  # read back from the table: it may have been committed late
    assert world.stored().outbox == frozenset()


def late_commit_whose_second_append_raises(world: World, error: BaseException) -> Callable[[Sequence[FeedEntry]], None]:
    """The next commit lands 30 s after its stamp, and the feed append after it (the second: the commit's own is
    the first) raises `error`; answers the feed's own append, to put back."""
    world.store.landing = lambda post_id: world.later(timedelta(seconds=30))
    commit_append = world.store.feed.append
    appends: list[int] = []

    def raises_on_the_second(entries: Sequence[FeedEntry]) -> None:
        appends.append(len(entries))
        if len(appends) == 2:
            raise error
        commit_append(entries)

    world.store.feed.append = raises_on_the_second  # type: ignore[method-assign]
    return commit_append


def test_a_crash_between_a_late_commit_and_its_second_append_is_repaired_by_the_outbox(world: World) -> None:
    transition(world)
    commit_append = late_commit_whose_second_append_raises(world, SimulatedCrash())
    with pytest.raises(SimulatedCrash):
        world.check.check(POST_ID)
    world.store.feed.append = commit_append  # type: ignore[method-assign]
    first = positions(world.store.feed)
    reader = feed_of(world)
    world.later(FEED_SETTLE)
    passed = reader.page(after=None, limit=100)  # a reader passes the late positions (they just landed)
    assert [entry.position for entry in passed.entries] == first

    world.store.landing = lambda post_id: None
    world.check.check(POST_ID)  # the next check of the post: its outbox still owes the feed

    world.later(FEED_SETTLE)
    followed = reader.page(after=passed.next, limit=100)
    assert {entry.event_id for entry in followed.entries} == {entry.event_id for entry in passed.entries}
    assert world.stored().outbox == frozenset()


def test_a_failing_append_after_a_late_commit_fails_nothing_and_the_outbox_appends_the_events(world: World) -> None:
    transition(world)
    late_commit_whose_second_append_raises(world, RuntimeError("the table throttled the append"))

    outcome = world.check.check(POST_ID)  # committed: never an error for the check (nor a 500 for the API)

    assert outcome.result == "changed"
    late = NOW + timedelta(seconds=30)
    stamps = sorted((entry.event_id, entry.committed_at) for entry in world.store.feed.entries.values())
    assert stamps == sorted((event.event_id, moment) for event in outcome.events for moment in (NOW, late))
    assert world.stored().outbox == frozenset()  # the outbox's feed entry appended them at once


def test_a_failing_feed_append_keeps_the_outbox_entry_and_the_other_targets_publish(world: World) -> None:
    transition(world)
    world.publishers["sns"].crashing = True
    with pytest.raises(SystemExit):
        world.check.check(POST_ID)
    world.publishers["sns"].crashing = False

    def refuses(entries: Sequence[FeedEntry]) -> None:
        raise RuntimeError("ProvisionedThroughputExceededException")

    world.store.feed.append = refuses  # type: ignore[method-assign]
    world.check.check(POST_ID)

    assert {entry.target for entry in world.stored().outbox} == {"feed"}
    assert len(world.published("sns")) == 2


# ---------------------------------------------------------------- the reader
def test_an_entry_is_served_once_it_is_feed_settle_old_and_next_moves_to_the_horizon(world: World) -> None:
    transition(world)
    world.check.check(POST_ID)
    reader = feed_of(world)

    early = reader.page(after=None, limit=100)
    assert early.entries == []
    world.later(FEED_SETTLE)
    served = reader.page(after=early.next, limit=100)

    assert len(served.entries) == 2
    assert served.next == encode_cursor("feed", end_of(NOW))  # not full: everything up to the horizon is served
    assert reader.page(after=served.next, limit=100).entries == []


def test_a_full_page_ends_at_its_last_entry_and_the_next_page_follows_it(world: World) -> None:
    transition(world)
    transition(world, OTHER_POST)
    world.check.check(POST_ID)
    world.check.check(OTHER_POST)
    world.later(FEED_SETTLE)
    reader = feed_of(world)

    pages = [reader.page(after=None, limit=3)]
    pages.append(reader.page(after=pages[0].next, limit=3))

    assert [len(page.entries) for page in pages] == [3, 1]
    assert pages[0].next == encode_cursor("feed", pages[0].entries[-1].position)
    assert len({entry.position for page in pages for entry in page.entries}) == 4


def test_filters_by_type_and_post(world: World) -> None:
    transition(world)
    transition(world, OTHER_POST)
    world.check.check(POST_ID)
    world.check.check(OTHER_POST)
    world.later(FEED_SETTLE)
    reader = feed_of(world)

    completions = reader.page(after=None, limit=100, event_type="post.completed")
    one_post = reader.page(after=None, limit=100, post_id=OTHER_POST)

    assert [json.loads(e.document)["event_type"] for e in completions.entries] == ["post.completed"] * 2
    assert {entry.post_id for entry in one_post.entries} == {OTHER_POST}
    assert len(one_post.entries) == 2


@pytest.mark.parametrize(
    ("cursor", "problem"),
    [
        ("not-a-cursor!", "malformed"),
        (encode_cursor("attempts:wh_" + "0" * 32, "2025-02-01T15:00:00.000Z#e#01"), "another listing"),
        (encode_cursor("feed", "yesterday"), "malformed"),
    ],
)
def test_a_cursor_the_feed_did_not_write_is_refused(world: World, cursor: str, problem: str) -> None:
    with pytest.raises(CursorError, match=problem):
        feed_of(world).page(after=cursor, limit=10)


def test_a_cursor_older_than_the_retention_has_expired_and_the_error_names_the_bound(world: World) -> None:
    old = encode_cursor("feed", end_of(NOW - RETENTION - timedelta(seconds=1)))

    with pytest.raises(CursorExpiredError, match=re.escape("2025-01-02T15:00:00.000Z")):
        feed_of(world).page(after=old, limit=10)


# ---------------------------------------------------------------- one event's story
def endpoint(number: int, **fields: object) -> WebhookEndpoint:
    values: dict[str, object] = {
        "id": f"wh_{number:032x}",
        "url": f"https://hooks{number}.example.com/in",
        "created_at": NOW - timedelta(days=1),
    }
    return WebhookEndpoint.model_validate(values | fields)


def test_the_story_shows_recorded_deliveries_and_queued_ones_for_endpoints_that_take_the_event(world: World) -> None:
    transition(world)
    (posted, _) = world.check.check(POST_ID).events
    webhooks = InMemoryWebhookStore()
    for one in (
        endpoint(1),  # recorded: delivered
        endpoint(2),  # takes it, nothing recorded yet: queued
        endpoint(3, event_types=("post.account.failed",)),  # another type: nothing
        endpoint(4, filter=EndpointFilter(platforms=("instagram",))),  # filtered out by its filter
        endpoint(5, enabled=False, disabled_at=NOW),  # off
        endpoint(6, created_at=NOW + timedelta(seconds=1)),  # registered after the event
    ):
        webhooks.items[one.id] = one
    log = InMemoryDeliveryLog()
    delivered = DeliveryState(
        webhook_id=endpoint(1).id, event_id=posted.event_id, state="delivered", attempts=1, last_status=204
    )
    log.record_states([delivered])
    reader = EventFeed(
        log=world.store.feed, deliveries=log, webhooks=webhooks, clock=world.clock, event_retention=RETENTION
    )

    story = reader.story(posted.event_id)

    assert json.loads(story.entry.document)["event_id"] == posted.event_id
    assert [(state.webhook_id, state.state) for state in story.deliveries] == [
        (endpoint(1).id, "delivered"),
        (endpoint(2).id, "queued"),
    ]


def test_an_unknown_event_has_no_story(world: World) -> None:
    with pytest.raises(EventNotFoundError):
        feed_of(world).story("2f1c6e0e-8c9a-5d2b-9a51-0c7f3e1d4b6a")
