"""The account health check on the in-memory doubles (`checking/account_health.py`): a listing's changes committed
and published as notices, a failed listing deciding nothing, one id per change when two workers list at once, and
the worker's dispatch of `AccountsRequest`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genviral_relay.checking.account_health import AccountHealthCheck
from genviral_relay.errors import GenviralServerError, GenviralTierNotAllowedError
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth
from genviral_relay.models.messages import AccountsRequest
from genviral_relay.models.relay_notices import MAX_NOTICES_PER_COMMIT, AccountStatusEvent, PostsAtRisk
from genviral_relay.models.upstream import AccountListing
from genviral_relay.observability import Metric
from genviral_relay.polling.work_batch import WorkItem
from genviral_relay.rules.account_health import account_event_id, next_listing_at
from tests.builders import ACCOUNT_A, ACCOUNT_B, POST_ID, account, post
from tests.support.doubles import InMemoryPostSource
from tests.unit.world import World, emitted

OTHER_POST = "22222222-2222-2222-2222-222222222222"


class Health:
    """The check on a world's doubles: its notices go to the world's targets."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.store = world.store.notices
        self.check = world.path.account_health()

    def notices(self) -> list[AccountStatusEvent]:
        return [notice for notice in self.world.publishers["sns"].notices if isinstance(notice, AccountStatusEvent)]

    def state(self) -> AccountHealth:
        record = self.store.records[ACCOUNT_HEALTH_RECORD]
        return AccountHealth.model_validate_json(record.state)


@pytest.fixture
def health(world: World) -> Health:
    world.source.set_account(ACCOUNT_A, username="cafe")
    world.source.set_account(ACCOUNT_B)
    world.register(post(account(ACCOUNT_A, status="scheduled"), scheduled_at="2025-02-02T10:00:00Z"))
    world.register(post(account(ACCOUNT_A, status="posted"), account(ACCOUNT_B), post_id=OTHER_POST))
    return Health(world)


def test_an_account_that_leaves_active_is_announced_with_the_posts_it_puts_at_risk(health: Health) -> None:
    health.check.run()
    health.world.source.set_account(ACCOUNT_A, username="cafe", status="revoked")
    health.world.later(timedelta(minutes=15))

    report = health.check.run()

    (notice,) = health.notices()
    assert report.notices == (notice,)
    assert (notice.event_type, notice.status, notice.previous_status) == ("account.disconnected", "revoked", "active")
    assert notice.event_id == account_event_id(ACCOUNT_A, 1)
    assert notice.account.username == "cafe"
    assert notice.posts_at_risk == PostsAtRisk(count=1, post_ids=(POST_ID,))  # the other post is final for it
    assert emitted(Metric.ACCOUNTS_DISCONNECTED) == [1]
    assert health.store.pending() == []  # published and acknowledged


def test_its_return_is_announced_once(health: Health) -> None:
    health.check.run()
    health.world.source.set_account(ACCOUNT_A, status="paused")
    health.check.run()
    health.world.source.set_account(ACCOUNT_A, status="active")
    health.check.run()
    health.check.run()

    assert [notice.event_type for notice in health.notices()] == ["account.disconnected", "account.reconnected"]
    assert emitted(Metric.ACCOUNTS_RECONNECTED) == [1]


def test_an_account_that_vanishes_is_announced_at_the_confirming_listing(health: Health) -> None:
    health.check.run()
    del health.world.source.accounts[ACCOUNT_A]
    health.check.run()
    assert health.notices() == []
    assert health.state().confirm

    health.check.run()

    assert [(notice.status, notice.previous_status) for notice in health.notices()] == [(None, "active")]


def test_a_failed_listing_decides_nothing_and_records_only_the_failure(health: Health) -> None:
    health.check.run()
    stored = health.state()
    health.world.source.accounts.clear()
    health.world.source.fail_next["accounts"] = [GenviralServerError("accounts_failed", status=500)] * 2

    reports = [health.check.run(), health.check.run()]

    assert [report.answered for report in reports] == [False, False]
    assert health.state() == stored.model_copy(update={"failures": 2, "failed_at": health.world.clock.now})
    assert health.notices() == []
    assert emitted(Metric.GENVIRAL_ERRORS_5XX) == [1, 1]
    health.check.run()  # answered (empty: suspect, nothing decided): the failures are over
    assert health.state().failures == 0
    assert health.notices() == []


def test_a_refused_key_pauses_calls(health: Health) -> None:
    health.world.source.fail_next["accounts"] = [GenviralTierNotAllowedError("tier_not_allowed", status=403)]

    assert health.check.run().refused
    assert health.world.path.pause.reason() is not None


def test_a_listing_without_change_reads_the_watched_posts_once(health: Health) -> None:
    health.check.run()
    health.world.forget_calls()
    next(health.world.store.watched_post_ids(), None)
    health.world.store.get_many([POST_ID, OTHER_POST])
    one_read = dict(health.world.store.calls)  # one look at the watched posts: is any at risk?
    health.world.forget_calls()

    health.check.run()

    calls = health.world.store.calls
    assert (calls["query"], calls["batch_get_item"]) == (one_read["query"], one_read["batch_get_item"])
    assert health.world.source.calls["list_accounts"] == 1


def test_with_every_watched_post_final_for_its_accounts_the_check_lists_nothing(health: Health) -> None:
    health.check.run()
    health.world.source.set_account(ACCOUNT_A, username="cafe", status="revoked")
    health.world.register(post(account(ACCOUNT_A, status="posted"), post_id=POST_ID))  # delivered: nothing at risk
    health.world.register(
        post(account(ACCOUNT_A, status="posted"), account(ACCOUNT_B, status="failed"), post_id=OTHER_POST)
    )
    health.world.forget_calls()
    health.world.later(timedelta(minutes=15))

    report = health.check.run()

    assert health.world.source.calls["list_accounts"] == 0  # no Genviral call while nothing is at risk
    assert report.notices == ()
    assert health.notices() == []
    assert health.state().quiet_at == health.world.clock.now  # the next check counts from here


def test_the_listing_refreshes_the_account_directory(health: Health) -> None:
    health.check.run()

    directory = health.world.store.account_directory()
    assert directory is not None
    assert set(directory.accounts) == {ACCOUNT_A, ACCOUNT_B}
    assert directory.refreshed_at == health.world.clock.now


def test_an_account_no_watched_post_targets_is_not_announced(health: Health) -> None:
    health.world.source.set_account("acct-unused")
    health.check.run()
    health.world.source.set_account("acct-unused", status="revoked")

    health.check.run()

    assert health.notices() == []
    assert health.state().accounts["acct-unused"].status == "revoked"


class ListingWhileAnotherCommits(InMemoryPostSource):
    """Genviral answering one worker while another worker lists and commits first."""

    def __init__(self, inner: InMemoryPostSource) -> None:
        super().__init__(inner.posts.values())
        self.accounts = inner.accounts
        self.other: AccountHealthCheck | None = None

    def list_accounts(self) -> AccountListing:
        other, self.other = self.other, None
        if other is not None:
            other.run()
        return super().list_accounts()


def test_two_workers_listing_at_once_announce_a_change_under_one_id(health: Health) -> None:
    health.check.run()
    health.world.source.set_account(ACCOUNT_A, status="revoked")
    racing = ListingWhileAnotherCommits(health.world.source)
    health.world.source = racing
    slow = health.world.path_with(["sns"]).account_health()  # reads `racing` as its source
    racing.other = health.check

    report = slow.run()

    assert report.answered
    assert report.notices == ()
    assert [notice.event_id for notice in health.notices()] == [account_event_id(ACCOUNT_A, 1)]


def test_a_worker_runs_one_check_for_every_account_message_of_a_batch(health: Health) -> None:
    batch = health.world.path.work_batch()
    health.world.forget_calls()
    items = [WorkItem(str(index), AccountsRequest(accounts="check")) for index in range(2)]

    assert batch.run(items) == []
    assert health.world.source.calls["list_accounts"] == 1


def test_a_worker_without_the_check_fails_its_message(world: World) -> None:
    batch = world.path.work_batch(accounts=False)
    assert batch.run([WorkItem("m1", AccountsRequest(accounts="check"))]) == ["m1"]


def test_a_mass_revocation_of_a_hundred_watched_accounts_is_announced_in_a_few_checks_each_once(world: World) -> None:
    ids = [f"00000000-0000-4000-8000-{index:012}" for index in range(100)]
    for account_id in ids:
        world.source.set_account(account_id)
    world.register(post(*(account(account_id) for account_id in ids), scheduled_at="2025-02-02T10:00:00Z"))
    health = Health(world)
    health.check.run()
    for account_id in ids:
        world.source.set_account(account_id, status="revoked")

    reports = [health.check.run() for _ in range(4)]

    assert [len(report.notices) for report in reports] == [MAX_NOTICES_PER_COMMIT, MAX_NOTICES_PER_COMMIT, 20, 0]
    published = [notice.account_id for notice in health.notices()]
    assert sorted(published) == ids
    assert health.store.pending() == []
    assert not health.state().confirm


def test_an_empty_listing_while_accounts_are_known_decides_nothing_and_warns(
    health: Health, caplog: pytest.LogCaptureFixture
) -> None:
    health.check.run()
    before = health.state().accounts
    health.world.source.accounts.clear()

    health.check.run()
    health.world.later(timedelta(minutes=1))
    health.check.run()

    assert health.notices() == []
    assert health.state().accounts == before
    assert "misses every known account" in caplog.text


def test_a_listed_item_the_relay_cannot_read_is_no_disconnect(health: Health) -> None:
    health.check.run()
    del health.world.source.accounts[ACCOUNT_A]
    health.world.source.unreadable_accounts = [ACCOUNT_A]

    for _ in range(3):
        health.check.run()

    assert health.notices() == []
    assert health.state().accounts[ACCOUNT_A].status == "active"


# ---------------------------------------------------------------- one listing for two uses


def naming_listing_world(*, account_checks: bool) -> World:
    """A watched post scheduled for ACCOUNT_A, the accounts checked once, and 10 minutes later ACCOUNT_A revoked
    while a new post of an account the directory has never seen (ACCOUNT_B) posts: naming it lists the accounts."""
    world = World(account_checks=account_checks)
    world.source.set_account(ACCOUNT_A)
    world.register(post(account(ACCOUNT_A, status="scheduled"), scheduled_at="2025-02-02T10:00:00Z"))
    world.path.account_health().run()
    world.later(timedelta(minutes=10))
    world.source.set_account(ACCOUNT_A, status="revoked")
    world.source.set_account(ACCOUNT_B)
    world.register(post(account(ACCOUNT_B, status="pending"), post_id=OTHER_POST))
    world.source.put(post(account(ACCOUNT_B, status="posted"), post_id=OTHER_POST))
    world.forget_calls()
    world.check.check(OTHER_POST)
    return world


def health_of(world: World) -> AccountHealth:
    return AccountHealth.model_validate_json(world.store.notices.records[ACCOUNT_HEALTH_RECORD].state)


def test_a_listing_made_to_name_an_account_is_the_account_check_of_that_moment() -> None:
    world = naming_listing_world(account_checks=True)

    assert world.source.calls["list_accounts"] == 1  # one call: the names, and the accounts' health
    state = health_of(world)
    assert state.listed_at == world.clock.now
    assert next_listing_at(state, timedelta(minutes=15)) == world.clock.now + timedelta(minutes=15)
    (notice,) = [n for n in world.publishers["sns"].notices if isinstance(n, AccountStatusEvent)]
    assert (notice.event_type, notice.account.id) == ("account.disconnected", ACCOUNT_A)
    assert notice.posts_at_risk == PostsAtRisk(count=1, post_ids=(POST_ID,))


def test_without_account_checks_a_naming_listing_leaves_the_accounts_health_alone() -> None:
    world = naming_listing_world(account_checks=False)

    assert world.source.calls["list_accounts"] == 1
    assert health_of(world).listed_at == world.clock.now - timedelta(minutes=10)
    assert [n for n in world.publishers["sns"].notices if isinstance(n, AccountStatusEvent)] == []


def test_before_the_first_account_check_a_naming_listing_sets_no_baseline() -> None:
    world = World(account_checks=True)
    world.source.set_account(ACCOUNT_B)
    world.register(post(account(ACCOUNT_B, status="posted"), post_id=OTHER_POST))

    assert world.source.calls["list_accounts"] == 1
    assert ACCOUNT_HEALTH_RECORD not in world.store.notices.records  # the first check's own listing sets it


def test_a_naming_listing_the_accounts_health_cannot_record_still_names_the_account(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(self: AccountHealthCheck, listing: AccountListing) -> None:
        raise RuntimeError("the table refused the commit")

    monkeypatch.setattr(AccountHealthCheck, "record", refused)

    world = naming_listing_world(account_checks=True)

    (event,) = [e for e in world.publishers["sns"].published if e.event_type == "post.account.posted"]
    assert event.account is not None
    assert (event.account.id, event.account.platform) == (ACCOUNT_B, "tiktok")  # named from the listing
    assert "The accounts' health could not record the naming listing" in caplog.text
    assert "RuntimeError: the table refused the commit" in caplog.text
