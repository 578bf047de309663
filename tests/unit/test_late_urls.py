"""Late URLs (`rules/late_urls.py`): a posting reported without a `published_url` is checked again, backing off, for
24 h, and the URL, when it appears, is reported once (`post.account.url_resolved`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from genviral_relay.checking.answer import plan_answer
from genviral_relay.models.events import AccountOutcomeEvent, AccountUrlResolvedEvent, RelayEvent
from genviral_relay.rules.late_urls import URL_CHECKS
from genviral_relay.rules.schedule import PollingPolicy
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, post
from tests.unit.world import World

ATTEMPT = "2025-02-01T15:00:05.000Z"
URL = "https://www.tiktok.com/@shop/video/7300000000000000000"


def posted(url: str | None = None, *, at: str = ATTEMPT, account_id: str = ACCOUNT_A) -> dict[str, Any]:
    return account(account_id, status="posted", last_attempted_at=at, published_at=at, published_url=url)


def resolved(events: tuple[RelayEvent, ...] | list[RelayEvent]) -> list[AccountUrlResolvedEvent]:
    return [event for event in events if isinstance(event, AccountUrlResolvedEvent)]


def postings(events: tuple[RelayEvent, ...] | list[RelayEvent]) -> list[AccountOutcomeEvent]:
    return [event for event in events if isinstance(event, AccountOutcomeEvent)]


def posted_without_url(world: World) -> AccountOutcomeEvent:
    """Given a watched post whose account the relay saw posted without a URL, at NOW."""
    world.register(post(account(status="scheduled")))
    world.source.put(post(posted(), status="posted"))
    (posting,) = postings(world.check.check(POST_ID).events)
    return posting


# ---------------------------------------------------------------------- the schedule
def test_a_posting_without_url_keeps_a_finished_post_watched_and_checked_backing_off(world: World) -> None:
    posting = posted_without_url(world)

    assert posting.published_url is None
    watch = world.stored()
    assert watch.watching
    assert watch.accounts[ACCOUNT_A].url_awaited_since == "2025-02-01T15:00:00.000Z"
    assert watch.next_check_at == NOW + URL_CHECKS[0]

    # Each check finding no URL yet asks for the next one, further apart
    moments = []
    while (due := world.stored().next_check_at) is not None and world.stored().watching:
        world.clock.now = due
        world.check.check(POST_ID)
        moments.append(due - NOW)
    assert moments == list(URL_CHECKS)
    assert max(URL_CHECKS) == timedelta(hours=24)
    assert not world.stored().watching  # the wait is over: the post is finished


@pytest.mark.parametrize("late", [timedelta(seconds=10), timedelta(minutes=7), timedelta(hours=3)])
def test_a_check_after_a_scheduled_moment_asks_for_the_next_one(late: timedelta) -> None:
    policy = PollingPolicy()
    finished = post(posted(), status="posted")
    since = NOW

    wanted = policy.next_check(finished, NOW + late, urls_awaited=(since,))

    assert wanted == NOW + min(after for after in URL_CHECKS if after > late)


def test_an_unfinished_post_is_checked_at_the_url_moment_when_its_backoff_is_longer() -> None:
    policy = PollingPolicy()
    # Overdue by hours: the unfinished account's own backoff is 30 minutes
    unfinished = post(posted(), account(ACCOUNT_B, status="pending"))
    now = NOW + timedelta(hours=5)
    seen = now - URL_CHECKS[0] + timedelta(minutes=1)  # the first URL check is a minute away

    own = policy.next_check(unfinished, now, last_change=now - timedelta(hours=3))
    with_url = policy.next_check(unfinished, now, last_change=now - timedelta(hours=3), urls_awaited=(seen,))

    assert own == now + timedelta(minutes=30)
    assert with_url == now + timedelta(minutes=1)


# ---------------------------------------------------------------------- the event
def test_the_url_when_it_appears_is_one_event_keyed_on_the_posting(world: World) -> None:
    posting = posted_without_url(world)

    world.later(timedelta(minutes=5))
    world.source.put(post(posted(URL), status="posted"))
    outcome = world.check.check(POST_ID)

    (event,) = outcome.events
    assert isinstance(event, AccountUrlResolvedEvent)
    assert (event.event_type, event.status, event.previous_status) == ("post.account.url_resolved", "posted", "posted")
    assert (event.published_url, event.posted_event_id, event.sequence) == (URL, posting.event_id, 2)
    assert (event.last_attempted_at, event.published_at) == (ATTEMPT, ATTEMPT)
    assert event.detail_type == "Post Account Url Resolved"
    assert world.published("sns")[-1] == world.published("eventbridge")[-1] == event.event_id
    # The wait is over and the post finished: no more checks, no second event
    assert world.stored().accounts[ACCOUNT_A].url_awaited_since is None
    assert not world.stored().watching
    world.later(timedelta(hours=1))
    assert resolved(world.check.check(POST_ID, trigger="manual").events) == []


def test_the_same_resolution_run_twice_has_the_same_id(world: World) -> None:
    # A crash after Genviral answered, before the commit: the next check makes the same document.
    posted_without_url(world)
    stored = world.stored()
    world.later(timedelta(minutes=5))
    world.source.put(post(posted(URL), status="posted"))

    first = plan_answer(stored, world.source.posts[POST_ID], world.clock(), world.policy).detection
    again = plan_answer(stored, world.source.posts[POST_ID], world.clock(), world.policy).detection
    assert first.events == again.events
    assert len(resolved(first.events)) == 1


def test_a_url_after_the_24_hours_while_the_post_is_checked_anyway_is_reported_once(world: World) -> None:
    # Given a posting without URL and another account still pending: the post is checked for that one
    world.register(post(account(status="scheduled"), account(ACCOUNT_B, status="pending")))
    world.source.put(post(posted(), account(ACCOUNT_B, status="pending")))
    world.check.check(POST_ID)

    world.later(timedelta(hours=30))
    world.source.put(post(posted(URL), account(ACCOUNT_B, status="pending")))
    (event,) = resolved(world.check.check(POST_ID).events)

    assert event.published_url == URL
    world.later(timedelta(hours=1))
    assert resolved(world.check.check(POST_ID).events) == []


def test_leaving_posted_ends_the_wait_and_posting_again_is_a_new_posting(world: World) -> None:
    posted_without_url(world)

    world.later(timedelta(minutes=2))
    world.source.put(post(account(status="retry", last_attempted_at=ATTEMPT)))
    world.check.check(POST_ID)
    assert world.stored().accounts[ACCOUNT_A].url_awaited_since is None

    world.later(timedelta(minutes=3))
    again = "2025-02-01T15:05:05.000Z"
    world.source.put(post(posted(URL, at=again), status="posted"))
    events = world.check.check(POST_ID).events

    assert [(event.published_url, event.last_attempted_at) for event in postings(events)] == [(URL, again)]
    assert resolved(events) == []


def test_a_url_that_changes_after_it_was_given_is_no_new_event(world: World) -> None:
    world.register(post(account(status="scheduled")))
    world.source.put(post(posted(URL)))
    world.check.check(POST_ID)

    world.later(timedelta(minutes=2))
    world.source.put(post(posted(URL + "?s=1")))

    assert world.check.check(POST_ID).events == ()


def test_a_posting_recorded_silently_awaits_no_url(world: World) -> None:
    # Discover mode's baseline: the post's states are recorded, nothing reported, nothing awaited
    world.check.apply_answer(post(posted(), status="posted"), None, silent=True)

    assert not world.stored().watching
    assert world.stored().accounts[ACCOUNT_A].url_awaited_since is None
