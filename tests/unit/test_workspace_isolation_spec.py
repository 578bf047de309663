"""Several workspaces in one stack, on the doubles: one Relay per workspace (`compose_relay(workspace=...)`), each on
its workspace's view of the same table and with its own Genviral key (a source each). What one workspace's key does
(its refusal, its listings) is its own; its watches are in its own shards."""

from __future__ import annotations

from genviral_relay.errors import GenviralSubscriptionRequiredError
from genviral_relay.models.account_health import ACCOUNT_HEALTH_RECORD, AccountHealth
from genviral_relay.models.domain import TARGETS
from genviral_relay.models.pause import PauseStatus
from genviral_relay.models.relay_notices import RelayStateEvent
from genviral_relay.relay import Relay, compose_relay
from tests.builders import ACCOUNT_A, ACCOUNT_B, NOW, POST_ID, account, post
from tests.support.doubles import (
    InMemoryDeadLetters,
    InMemoryPostSource,
    InMemoryStore,
    RecordingPublisher,
    SteppingClock,
)

ACME_POST = "22222222-2222-2222-2222-222222222222"
REFUSED_402 = GenviralSubscriptionRequiredError("no plan", status=402, error_code="subscription_required")


class Stack:
    """One table, one set of targets, two workspaces (`default` and `acme`), each with its own Genviral."""

    def __init__(self) -> None:
        self.clock = SteppingClock(NOW)
        self.store = InMemoryStore(clock=self.clock)
        self.publishers = {target: RecordingPublisher(target) for target in TARGETS}
        self.sources = {"default": InMemoryPostSource(), "acme": InMemoryPostSource()}
        self.relays = {workspace: self.relay(workspace) for workspace in self.sources}

    def relay(self, workspace: str) -> Relay:
        view = self.store.in_workspace(workspace)
        return compose_relay(
            store=view,
            state=view,
            source=self.sources[workspace],
            publishers=list(self.publishers.values()),
            dead_letters=InMemoryDeadLetters(),
            clock=self.clock,
            feed=self.store.feed,
            account_checks=True,
            workspace=workspace,
        )

    def register(self, workspace: str, post_id: str, *states: dict[str, object]) -> None:
        self.sources[workspace].put(post(*states, post_id=post_id))
        self.relays[workspace].check_now(post_id, trigger="register")


def test_a_refused_key_pauses_its_workspace_alone() -> None:
    stack = Stack()
    stack.sources["acme"].fail_next[ACME_POST] = [REFUSED_402]

    stack.register("acme", ACME_POST, account(status="scheduled"))
    stack.register("default", POST_ID, account(status="posted"))

    # default's key still answers and its events go out; that answer closes no pause of acme's
    assert [event.post_id for event in stack.publishers["sns"].published] == [POST_ID, POST_ID]
    acme, default = stack.relays["acme"], stack.relays["default"]
    assert acme.pause.reason() is not None
    assert default.pause.reason() is None
    assert stack.store.genviral_pause(NOW) == PauseStatus()  # the plain store is default's view
    assert stack.store.stored_pause is None
    assert stack.store.in_workspace("acme").stored_pause is not None
    (paused,) = stack.publishers["sns"].notices
    assert isinstance(paused, RelayStateEvent)
    assert paused.event_type == "relay.paused"


def test_each_workspace_lists_its_own_accounts_into_its_own_directory_and_health() -> None:
    stack = Stack()
    stack.sources["default"].set_account(ACCOUNT_A)
    stack.sources["acme"].set_account(ACCOUNT_B)

    stack.register("default", POST_ID, account(ACCOUNT_A, status="posted"))  # named: a listing, the directory
    stack.register("acme", ACME_POST, account(ACCOUNT_B, status="scheduled"))
    for relay in stack.relays.values():
        relay.account_health().run()  # the account check, with its workspace's key

    views = {workspace: stack.store.in_workspace(workspace) for workspace in stack.sources}
    directories = {workspace: view.account_directory() for workspace, view in views.items()}
    assert {workspace: set(found.accounts) for workspace, found in directories.items() if found} == {
        "default": {ACCOUNT_A},
        "acme": {ACCOUNT_B},
    }
    health = {}
    for workspace, view in views.items():
        record = view.notices.record(ACCOUNT_HEALTH_RECORD)
        assert record is not None, workspace
        health[workspace] = set(AccountHealth.model_validate_json(record.state).accounts)
    assert health == {"default": {ACCOUNT_A}, "acme": {ACCOUNT_B}}


def test_a_watch_registered_through_a_workspaces_relay_is_that_workspaces() -> None:
    stack = Stack()

    stack.register("acme", ACME_POST, account(status="scheduled"))
    stack.register("default", POST_ID, account(status="scheduled"))

    acme_view, default_view = stack.store.in_workspace("acme"), stack.store
    registered = stack.store.get(ACME_POST)
    assert registered is not None
    assert registered.workspace == "acme"
    assert default_view.get(POST_ID).workspace is None  # type: ignore[union-attr]  # as 0.4 stored it
    assert list(acme_view.watched_post_ids()) == [ACME_POST]  # acme's shards
    assert list(default_view.watched_post_ids()) == [POST_ID]
    much_later = NOW.replace(year=NOW.year + 1)
    assert list(default_view.due_post_ids(much_later)) == [POST_ID]
    assert list(acme_view.due_post_ids(much_later)) == [ACME_POST]
    # A later check through its relay keeps it acme's
    stack.clock.now = registered.next_check_at  # type: ignore[assignment]
    stack.sources["acme"].put(post(account(status="posted"), post_id=ACME_POST))
    stack.relays["acme"].check_now(ACME_POST, trigger="manual")
    assert stack.store.get(ACME_POST).workspace == "acme"  # type: ignore[union-attr]
