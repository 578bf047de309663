"""The workspaces' registry (`polling/workspaces.py`) on the in-memory doubles: the worker's sync records the
workspaces the secret names, a removed one is listed as removed with its watches untouched, and a bad secret keeps
the last good list, says why once and pauses every known workspace. The poller asks for a sync at its first tick
and every five minutes, paused or not; the worker runs it once per batch, paused or not."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import timedelta

import pytest

from genviral_relay.aws.secret_forms import NOT_USABLE
from genviral_relay.checking.pause import GenviralPause
from genviral_relay.errors import StateConflictError, TokenUnavailableError
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.messages import CheckRequest, WorkspacesRequest
from genviral_relay.models.workspace_registry import WORKSPACES_RECORD, WorkspaceRegistry
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.observability import Metric
from genviral_relay.polling.stack_work import StackTick
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.work_batch import WorkItem
from genviral_relay.polling.workspace_runs import WorkspaceTicks
from genviral_relay.polling.workspaces import SYNC_EVERY, WorkspaceSync, workspace_registry
from tests.builders import NOW, POST_ID
from tests.conftest import SecretSentinel
from tests.support.doubles import InMemoryWorkQueue
from tests.support.workspace_doubles import StaticWorkspaceKeys
from tests.unit.world import World, emitted

ACME, BETA, GAMMA = "gva_live_acme.0a1b2c3d", "gva_live_beta.4e5f6a7b", "gva_live_gamma.8c9d0e1f"
UNREADABLE = TokenUnavailableError("the Genviral secret could not be read")
UNUSABLE_LINE = "The Genviral secret is not usable; the workspaces stay as last read and their calls pause"


class Rig:
    """The default workspace's world (the registry's store, the watches) and one world per other workspace (its
    pause: a view of its own, as `in_workspace` gives one)."""

    def __init__(self, world: World, keys: StaticWorkspaceKeys) -> None:
        self.world = world
        self.keys = keys
        self.others: defaultdict[str, World] = defaultdict(World)
        self.sync = WorkspaceSync(
            keys=keys, store=world.store.notices, pauses=self.pause, clock=world.clock, default_watched=self.watched
        )
        self.asked = 0
        """How often the sync asked whether default holds a watch."""

    def watched(self) -> bool:
        self.asked += 1
        return next(self.world.store.watched_post_ids(limit=1), None) is not None

    def pause(self, workspace: str) -> GenviralPause:
        return (self.world if workspace == "default" else self.others[workspace]).path.pause

    def registry(self) -> WorkspaceRegistry:
        return workspace_registry(self.world.store.notices)[0]

    def version(self) -> int:
        return workspace_registry(self.world.store.notices)[1]

    def paused(self) -> dict[str, str | None]:
        return {name: self.pause(name).reason() for name in ["default", *sorted(self.others)]}


def secret(**keys: str) -> str:
    return json.dumps({"workspaces": keys})


@pytest.fixture
def rig(world: World) -> Rig:
    return Rig(world, StaticWorkspaceKeys())


def unusable_lines(sentinel: SecretSentinel) -> list[str]:
    return [text for _, text in sentinel.rendered if UNUSABLE_LINE in text]


def test_before_the_first_sync_the_stack_is_04_s_one_workspace_default(rig: Rig) -> None:
    assert workspace_registry(rig.world.store.notices) == (WorkspaceRegistry(workspaces=("default",)), 0)


def test_the_first_sync_reads_the_secret_afresh_and_records_its_workspaces(rig: Rig) -> None:
    report = rig.sync.run()

    assert rig.keys.reads == [True]  # past the cache: the sync is how a change is seen
    assert report.wrote
    assert rig.registry() == WorkspaceRegistry(workspaces=("default",), synced_at=NOW)


def test_a_sync_that_finds_nothing_changed_writes_nothing(rig: Rig) -> None:
    rig.sync.run()
    rig.world.later(SYNC_EVERY)

    assert not rig.sync.run().wrote
    assert rig.version() == 1
    assert rig.registry().synced_at == NOW


def test_a_workspace_added_appears_within_one_sync_and_a_removed_one_is_listed_with_its_watches_kept(
    rig: Rig,
) -> None:
    rig.keys.secret(secret(acme=ACME, beta=BETA))
    rig.sync.run()
    beta_watch = WatchRecord(post_id=POST_ID, version=1, registered_at=NOW, workspace="beta")
    rig.world.store.in_workspace("beta").save(beta_watch, expected_version=0, new_events=())
    rig.world.later(timedelta(minutes=5))

    rig.keys.secret(secret(acme=ACME, gamma=GAMMA))
    rig.sync.run()

    later = NOW + timedelta(minutes=5)
    assert rig.registry() == WorkspaceRegistry(workspaces=("acme", "gamma"), removed={"beta": later}, synced_at=later)
    assert rig.world.store.get(POST_ID) == beta_watch  # nothing deleted, nothing changed
    assert [rig.pause(name).reason() for name in ("default", "acme", "beta", "gamma")] == [None] * 4  # no refusal

    rig.world.later(timedelta(minutes=5))  # named again: no longer removed
    rig.keys.secret(secret(acme=ACME, beta=BETA, gamma=GAMMA))
    rig.sync.run()
    assert rig.registry().workspaces == ("acme", "beta", "gamma")
    assert rig.registry().removed == {}


def test_a_new_stack_s_first_sync_need_not_name_default(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.keys.secret(secret(acme=ACME))

    rig.sync.run()

    assert rig.registry() == WorkspaceRegistry(workspaces=("acme",), synced_at=NOW)
    assert "does not name the workspace default" not in caplog.text


def test_a_04_stack_s_first_sync_without_default_reports_it_removed_with_a_warning_and_its_watch_kept(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    watch = WatchRecord(post_id=POST_ID, version=1, registered_at=NOW, next_check_at=NOW)  # 0.4: no workspace
    rig.world.store.save(watch, expected_version=0, new_events=())
    rig.keys.secret(secret(acme=ACME))  # switched to a map before any sync

    rig.sync.run()

    assert rig.registry() == WorkspaceRegistry(workspaces=("acme",), removed={"default": NOW}, synced_at=NOW)
    assert rig.world.store.get(POST_ID) == watch
    (record,) = [record for record in caplog.records if "does not name the workspace default" in record.message]
    assert record.levelno == logging.WARNING


def test_whether_default_holds_a_watch_is_asked_at_the_first_sync_only_and_only_when_it_is_not_named(
    rig: Rig,
) -> None:
    rig.sync.run()  # names default
    rig.keys.secret(secret(acme=ACME))
    rig.sync.run()  # a later sync: default was read, so it is known

    assert rig.asked == 0
    assert rig.registry().removed == {"default": NOW}


def test_a_04_default_left_out_of_a_new_map_is_reported_removed(rig: Rig) -> None:
    rig.sync.run()  # the 0.4 secret: default
    rig.keys.secret(secret(acme=ACME))

    rig.sync.run()

    assert rig.registry().removed == {"default": NOW}


BAD_SECRETS = {
    "no usable token": '{"api_key": "' + ACME + '"}',
    "duplicate names": '{"workspaces": {"acme": "' + ACME + '", "acme": "' + BETA + '"}}',
    "name outside the pattern": secret(Acme=ACME),
    "empty map": secret(),
    "token not a string": '{"workspaces": {"acme": 1}}',
    "token and workspaces": '{"token": "' + ACME + '", "workspaces": {"beta": "' + BETA + '"}}',
    "one key under two names": secret(acme=ACME, beta=ACME),
}


@pytest.mark.parametrize("text", list(BAD_SECRETS.values()), ids=list(BAD_SECRETS))
def test_a_bad_secret_keeps_the_last_good_list_says_why_once_and_pauses_every_known_workspace(
    rig: Rig, secret_sentinel: SecretSentinel, text: str
) -> None:
    rig.keys.secret(secret(default=GAMMA, beta=BETA))
    rig.sync.run()
    rig.keys.secret(text)
    assert rig.keys.error is not None
    problem, published = rig.keys.error.problem, rig.keys.error.summary

    rig.sync.run()
    rig.world.later(SYNC_EVERY)
    rig.sync.run()  # the pause ends now: this sync's refusal moves it on

    assert rig.registry() == WorkspaceRegistry(workspaces=("beta", "default"), synced_at=NOW, error=problem)
    (line,) = unusable_lines(secret_sentinel)  # one per distinct problem, not one per sync
    assert json.dumps(problem)[1:-1] in line  # the operator's words, names and all
    assert emitted(Metric.SECRET_UNREADABLE) == [1, 1]  # each sync counts: the alarm stays on while it lasts
    assert rig.paused() == {"default": published, "beta": published}
    for world in (rig.world, rig.others["beta"]):
        (notice,) = world.publishers["sns"].notices
        assert notice.event_type == "relay.paused"
        assert notice.reason == published


def test_a_bad_entry_pauses_every_workspace_and_no_workspace_s_relay_paused_names_another(
    rig: Rig, secret_sentinel: SecretSentinel
) -> None:
    rig.keys.secret(secret(**{"client-a": ACME, "client-b": BETA}))
    rig.sync.run()
    rig.keys.secret(secret(**{"client-a": ACME, "client-b": BETA, "client-c": ""}))

    rig.sync.run()

    reasons = {name: rig.others[name].publishers["sns"].notices[0].reason for name in ("client-a", "client-b")}
    assert reasons == {"client-a": NOT_USABLE, "client-b": NOT_USABLE}
    for notice in (notice for world in rig.others.values() for notice in world.publishers["sns"].notices):
        assert "client-" not in str(notice.reason)
        assert "client-c" not in notice.model_dump_json()
    problem = rig.registry().error  # the operator's words, in the record and the one ERROR line
    assert problem is not None
    assert '"client-c"' in problem
    (line,) = unusable_lines(secret_sentinel)
    assert json.dumps(problem)[1:-1] in line
    # the autouse sentinel fails the test if a log record held a key


def test_an_unreadable_secret_is_handled_as_a_bad_one(rig: Rig) -> None:
    rig.keys.unreadable()

    rig.sync.run()

    assert rig.registry().error == "the Genviral secret could not be read"
    assert rig.registry().workspaces == ("default",)
    assert rig.paused() == {"default": "the Genviral secret could not be read (AccessDeniedException)"}


def test_another_bad_secret_is_said_again_and_a_fixed_one_clears_the_error(
    rig: Rig, secret_sentinel: SecretSentinel, caplog: pytest.LogCaptureFixture
) -> None:
    rig.sync.run()
    rig.keys.secret(secret())
    rig.sync.run()
    rig.keys.secret(secret(Bad=ACME))
    rig.sync.run()
    assert len(unusable_lines(secret_sentinel)) == 2

    rig.keys.secret(secret(acme=ACME))
    caplog.set_level(logging.INFO)
    rig.sync.run()

    assert rig.registry() == WorkspaceRegistry(workspaces=("acme",), removed={"default": NOW}, synced_at=NOW)
    assert "The workspaces changed in the Genviral secret" in caplog.text


def test_a_workspace_that_cannot_be_paused_fails_the_sync_after_the_others_paused(rig: Rig) -> None:
    rig.keys.secret(secret(acme=ACME, beta=BETA))
    rig.sync.run()
    rig.others["acme"].store.notices.failing_commits = 3  # type: ignore[attr-defined]
    rig.keys.secret(secret())

    with pytest.raises(RuntimeError, match="1 workspace"):
        rig.sync.run()

    assert rig.paused()["beta"] is not None
    assert rig.registry().error is not None  # recorded all the same


def test_a_sync_another_worker_wrote_first_stops_there(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    notices = rig.world.store.notices

    def conflict(*_: object, **__: object) -> None:
        raise StateConflictError(WORKSPACES_RECORD)

    monkeypatch.setattr(notices, "commit", conflict)

    assert not rig.sync.run().wrote


# ------------------------------------------------------------------ the poller asks, the worker runs
def tick(world: World, queue: InMemoryWorkQueue, *, sync_every: timedelta | None = SYNC_EVERY) -> WorkspaceTicks:
    """The poller as the deployment composes it: the stack's own work on its own, then the workspace's tick."""
    workspace = PollTick(
        index=world.store, pause=GenviralPause(world.store, world.clock), queue=queue, clock=world.clock, discover=False
    )
    return WorkspaceTicks(
        workspaces=lambda: [DEFAULT_WORKSPACE],
        tick_of=lambda _: workspace,
        stack=StackTick(notices=None, sync_every=sync_every, queue=queue, clock=world.clock),
    )


SYNC = WorkspacesRequest(workspaces="sync")


def syncs(queue: InMemoryWorkQueue) -> int:
    return sum(request == SYNC for request, _ in queue.sent)


def test_the_poller_asks_for_a_sync_at_its_first_tick_then_every_five_minutes(world: World) -> None:
    queue = InMemoryWorkQueue()
    poller = tick(world, queue)

    poller.run()
    assert syncs(queue) == 1
    world.later(SYNC_EVERY - timedelta(seconds=1))
    poller.run()
    assert syncs(queue) == 1
    world.later(timedelta(seconds=1))
    poller.run()
    assert syncs(queue) == 2
    other = InMemoryWorkQueue()
    tick(world, other).run()  # a new execution environment asks at once
    assert syncs(other) == 1


def test_the_poller_asks_for_a_sync_while_paused_and_again_when_the_queue_refused(world: World) -> None:
    queue = InMemoryWorkQueue()
    poller = tick(world, queue)
    world.path.pause.refused(UNREADABLE)
    queue.failing = True
    with pytest.raises(Exception, match="could not be queued"):
        poller.run()
    queue.failing = False

    report = poller.run()

    assert report.paused == {DEFAULT_WORKSPACE: world.path.pause.reason()}
    assert [request for request, _ in queue.sent] == [SYNC]


def test_without_a_sync_interval_the_poller_never_asks(world: World) -> None:
    queue = InMemoryWorkQueue()
    tick(world, queue, sync_every=None).run()

    assert syncs(queue) == 0


def test_the_worker_syncs_once_per_batch_even_while_paused(world: World) -> None:
    keys = StaticWorkspaceKeys()
    keys.secret(secret(acme=ACME))
    sync = WorkspaceSync(
        keys=keys,
        store=world.store.notices,
        pauses=lambda _: world.path.pause,
        clock=world.clock,
        default_watched=lambda: False,
    )
    world.path.pause.refused(UNREADABLE)
    batch = world.path.work_batch(workspaces=sync)

    failed = batch.run(
        [
            WorkItem("m1", SYNC),
            WorkItem("m2", SYNC),
            WorkItem("m3", CheckRequest(post_id=POST_ID, queued_at=NOW, waiting_since=NOW)),
        ]
    )

    assert failed == []
    assert keys.reads == [True]
    assert workspace_registry(world.store.notices)[0].workspaces == ("acme",)


def test_a_worker_without_a_sync_fails_its_message(world: World) -> None:
    assert world.batch().run([WorkItem("m1", SYNC)]) == ["m1"]
