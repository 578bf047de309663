"""The adaptive schedule as the checker keeps it over hours of simulated time: real checks against
the emulator on loopback and the state table on moto, the clock moved from one due moment to the next."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from genviral_relay.aws.dead_letters import SqsDeadLetters
from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.aws.publishers import SnsPublisher
from genviral_relay.checking.check import PostCheck
from genviral_relay.checking.ports import WatchStore
from genviral_relay.genviral.client import GenviralClient, StaticToken
from genviral_relay.relay import Relay, compose_relay
from genviral_relay.rules.schedule import PollingPolicy
from local.emulator import GenviralEmulator
from local.stack import MotoStack
from tests.conftest import TOKEN
from tests.functional.subscribers import drain
from tests.support.doubles import SteppingClock
from tests.support.seams import no_sleep

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POLICY = PollingPolicy()


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(START)


@pytest.fixture
def emulator(clock: SteppingClock) -> Iterator[GenviralEmulator]:
    with GenviralEmulator(tokens=[TOKEN], clock=clock) as running:
        yield running


@pytest.fixture
def store(stack: MotoStack, clock: SteppingClock) -> DynamoDbStore:
    return DynamoDbStore(
        stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=1), clock=clock
    )


@pytest.fixture
def path(stack: MotoStack, store: DynamoDbStore, emulator: GenviralEmulator, clock: SteppingClock) -> Relay:
    return compose_relay(
        store=store,
        state=store,
        source=GenviralClient(emulator.base_url, StaticToken(TOKEN), sleep=no_sleep, clock=clock),
        publishers=[SnsPublisher(stack.client("sns"), stack.ref("EventsTopic"), sleep=no_sleep)],
        dead_letters=SqsDeadLetters(stack.client("sqs"), stack.ref("EventsDLQ"), clock=clock),
        clock=clock,
        policy=POLICY,
    )


@pytest.fixture
def checker(path: Relay) -> PostCheck:
    return path.checker


def check_when_due(checker: PostCheck, store: WatchStore, clock: SteppingClock, post_id: str) -> datetime | None:
    """Move the clock to the post's next check (a past moment: the next tick) and check; None once unwatched."""
    watch = store.get(post_id)
    assert watch is not None
    if watch.next_check_at is None:
        return None
    clock.now = max(watch.next_check_at, clock.now + POLICY.tick)
    checker.check(post_id)
    return clock.now


def check_until(checker: PostCheck, store: WatchStore, clock: SteppingClock, post_id: str, until: datetime) -> None:
    """Every check the post's schedule asks for, until the clock passes `until`."""
    while clock.now < until:
        check_when_due(checker, store, clock, post_id)


def test_an_overdue_post_backs_off_while_nothing_changes(
    checker: PostCheck, store: WatchStore, emulator: GenviralEmulator, clock: SteppingClock
) -> None:
    post_id = emulator.create_post(accounts=1, scheduled_at=START - timedelta(hours=2))
    checker.check(post_id, trigger="register")

    moments = [START]
    while moments[-1] < START + timedelta(hours=6):
        moment = check_when_due(checker, store, clock, post_id)
        assert moment is not None
        moments.append(moment)

    gaps = [later - earlier for earlier, later in pairwise(moments)]
    assert len(moments) <= 25  # a fixed-rate poller: 360
    assert gaps == sorted(gaps)
    assert gaps[-1] == POLICY.overdue_interval_max


def test_a_change_on_an_overdue_post_restarts_checks_every_tick(
    checker: PostCheck, store: WatchStore, emulator: GenviralEmulator, clock: SteppingClock
) -> None:
    post_id = emulator.create_post(accounts=2, scheduled_at=START - timedelta(hours=5))
    first, second = emulator.account_ids(post_id)
    checker.check(post_id, trigger="register")
    check_until(checker, store, clock, post_id, START + timedelta(hours=2))
    emulator.mark_posted(post_id, first)

    seen_at = check_when_due(checker, store, clock, post_id)
    next_check = check_when_due(checker, store, clock, post_id)

    watch = store.get(post_id)
    assert watch is not None
    assert watch.accounts[first].status == "posted"
    assert watch.accounts[second].status == "scheduled"
    assert watch.changed_at == seen_at
    assert seen_at is not None
    assert next_check == seen_at + POLICY.tick


def test_the_retry_sweep_sees_a_retry_while_a_sibling_account_backs_off(
    checker: PostCheck, path: Relay, store: WatchStore, emulator: GenviralEmulator, clock: SteppingClock
) -> None:
    post_id = emulator.create_post(accounts=2, scheduled_at=START - timedelta(hours=3))
    failing, stuck = emulator.account_ids(post_id)
    checker.check(post_id, trigger="register")
    emulator.mark_failed(post_id, failing, error_message="rejected by the platform")
    check_when_due(checker, store, clock, post_id)
    check_until(checker, store, clock, post_id, START + timedelta(hours=2))
    watch = store.get(post_id)
    assert watch is not None
    assert watch.next_check_at is not None
    assert watch.next_check_at - clock.now > 10 * POLICY.tick  # backed off: the retry would wait for it
    emulator.retry(post_id, [failing])

    clock.now += POLICY.tick
    assert list(store.awaiting_retry(clock.now)) == [post_id]
    path.sweep.run()

    watch = store.get(post_id)
    assert watch is not None
    assert watch.accounts[failing].status == "retry"
    assert watch.accounts[stuck].status == "scheduled"


def test_a_retry_the_sweep_cannot_see_is_reported_at_the_first_checkpoint(
    checker: PostCheck, store: WatchStore, emulator: GenviralEmulator, clock: SteppingClock
) -> None:
    post_id = emulator.create_post(accounts=1, scheduled_at=START - timedelta(minutes=5))
    (account_id,) = emulator.account_ids(post_id)
    emulator.mark_failed(post_id, account_id, error_message="rejected by the platform")
    checker.check(post_id, trigger="register")
    # Genviral sends the account back as `pending` (not listed under `retry`), then posts it
    emulator.set_account_state(post_id, account_id, status="pending", error_message=None)
    emulator.mark_posted(post_id, account_id)

    reported_at = check_when_due(checker, store, clock, post_id)

    watch = store.get(post_id)
    assert watch is not None
    assert watch.accounts[account_id].status == "posted"
    assert reported_at is not None
    assert reported_at - START <= POLICY.retry_checkpoints[0]


def test_the_sweep_checks_a_listed_post_only_when_the_list_shows_something_new(
    checker: PostCheck, path: Relay, store: WatchStore, emulator: GenviralEmulator, clock: SteppingClock
) -> None:
    post_id = emulator.create_post(accounts=2, scheduled_at=START - timedelta(minutes=5))
    first, second = emulator.account_ids(post_id)
    emulator.mark_failed(post_id, first, error_message="rejected by the platform")
    emulator.mark_failed(post_id, second, error_message="rejected by the platform")
    checker.check(post_id, trigger="register")
    emulator.retry(post_id, [second])

    def sweep_and_count() -> int:
        clock.now += POLICY.tick
        before = emulator.calls(post_id)
        path.sweep.run()
        return emulator.calls(post_id) - before

    assert sweep_and_count() == 1  # the retry is new: the post's own answer records it
    assert sweep_and_count() == 0  # still listed, nothing new: its own schedule takes over
    emulator.retry(post_id, [first])
    assert sweep_and_count() == 1
    watch = store.get(post_id)
    assert watch is not None
    assert {state.status for state in watch.accounts.values()} == {"retry"}


def test_a_url_given_after_the_posting_is_published_once_from_a_backing_off_check(
    checker: PostCheck, store: WatchStore, emulator: GenviralEmulator, clock: SteppingClock, stack: MotoStack
) -> None:
    # Given a post whose account Genviral reports posted 20 minutes before the platform gives the URL
    post_id = emulator.create_post(accounts=1, scheduled_at=START - timedelta(minutes=5))
    (account_id,) = emulator.account_ids(post_id)
    checker.check(post_id, trigger="register")
    emulator.mark_posted(post_id, account_id, url_after=timedelta(minutes=20))
    clock.now += POLICY.tick
    checker.check(post_id)
    seen_posted = clock.now

    # When the relay checks it as its schedule asks, until the watch ends
    moments = []
    while (moment := check_when_due(checker, store, clock, post_id)) is not None:
        moments.append(moment - seen_posted)
        watch = store.get(post_id)
        assert watch is not None
        if not watch.watching:
            break

    # Then the checks backed off (15 min: no URL yet; 1 h: found), and SNS got the posting then the URL
    assert moments == [timedelta(minutes=15), timedelta(hours=1)]
    received = drain(stack).sns_documents()
    account_documents = [document for document in received if document.get("account_id") == account_id]
    assert [(d["event_type"], d["published_url"], d["sequence"]) for d in account_documents] == [
        ("post.account.posted", None, 1),
        ("post.account.url_resolved", emulator.post_json(post_id)["accounts"]["states"][0]["published_url"], 2),
    ]
    posting, resolution = account_documents
    assert resolution["posted_event_id"] == posting["event_id"]
    assert resolution["last_attempted_at"] == posting["last_attempted_at"]
    assert emulator.calls(post_id) == 2 + len(moments)  # the registration, the posting, the URL checks
