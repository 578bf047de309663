"""Each workspace's log lines name it (`workspace_scope.py`), on the in-memory doubles and the Powertools logger's own
JSON lines: a line written while one workspace's work runs (its tick, its batch and the batch's threads, the sync
pausing it) carries `workspace`; a line of no workspace's work (the stack's own) carries none, and a stack of one
workspace writes 0.4's lines, with no `workspace` at all."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from genviral_relay.models.messages import NoticesRequest, WorkspacesRequest
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.outbox import FLUSH_AFTER
from genviral_relay.observability import logger, logs_to
from genviral_relay.polling.work_batch import WorkItem
from genviral_relay.workspace_scope import working_for
from tests.conftest import SECRET_MARK
from tests.support.workspace_doubles import StaticWorkspaceKeys
from tests.unit.test_poll_tick_spec import owe_a_notice
from tests.unit.test_workspace_runs_spec import ACME, BETA, POSTS, GatedSource, Stack, pause
from tests.unit.test_workspace_sync_spec import Rig
from tests.unit.world import World

ACME_KEY, BETA_KEY = "gva_live_acme.0a1b2c3d", "gva_live_beta.4e5f6a7b"
FLUSH = WorkItem("flush", NoticesRequest(notices="flush"))
KEPT = "Notice not published; kept for the next flush"


class Lines(list[dict[str, Any]]):
    """The relay's log lines as Powertools writes them (JSON, one a line)."""

    def of(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self if line["message"] == message]


@contextmanager
def captured() -> Iterator[Lines]:
    out, lines = io.StringIO(), Lines()
    try:
        with logs_to(out):
            yield lines
    finally:
        text = out.getvalue()
        assert SECRET_MARK not in text  # no key in any line
        lines.extend(json.loads(line) for line in text.splitlines())


def test_a_line_inside_a_workspace_s_work_names_it_and_one_outside_does_not() -> None:
    with captured() as lines:
        logger.info("before")
        with working_for(ACME, among=(ACME, BETA)):
            logger.info("inside")
            logger.info("about another", extra={"workspace": BETA})  # a line that names one keeps its own
            with working_for(None, among=(ACME, BETA)):
                logger.info("the stack's own")
            with working_for(ACME, among=(ACME, ACME)):
                logger.info("alone")
            logger.info("inside again")
        logger.info("after")

    assert [line.get("workspace") for line in lines] == [None, ACME, BETA, None, None, ACME, None]
    assert "workspace" not in lines[0]


def test_two_workspaces_batches_run_at_once_and_each_line_names_its_own() -> None:
    stack = Stack(ACME, BETA, threads=2)
    for workspace in (ACME, BETA):
        stack.watched(workspace, count=4)
    opened = threading.Event()
    gate = threading.Barrier(4, action=opened.set, timeout=10)  # both workspaces' threads in flight together
    for workspace, world in stack.worlds.items():
        gated = GatedSource(workspace, gate, opened)
        gated.posts = world.source.posts
        world.source = gated
        del world.path
    stack.ticks().run()

    with captured() as lines:
        failed = stack.batches().run(stack.taken())

    assert failed == []
    assert not gate.broken
    transitions = lines.of("Transition detected")
    assert len(transitions) == 8
    for line in transitions:
        assert line["workspace"] == (ACME if line["post_id"] in POSTS[ACME] else BETA), line
    assert {line.get("workspace") for line in lines} == {ACME, BETA}  # every line of the batch names one


def test_the_poller_s_lines_name_the_workspace_being_ticked() -> None:
    stack = Stack(ACME, BETA)
    stack.watched(ACME)
    stack.watched(BETA)
    pause(stack.worlds[BETA])

    with captured() as lines:
        stack.ticks().run()
        logger.info("the tick's own line, after the workspaces")

    paused = [line for line in lines if "paused" in line["message"].lower()]
    assert paused
    assert {line["workspace"] for line in paused} == {BETA}
    assert "workspace" not in lines.of("the tick's own line, after the workspaces")[0]


def test_a_stack_of_one_workspace_writes_its_lines_without_workspace() -> None:
    stack = Stack(DEFAULT_WORKSPACE)
    stack.watched(DEFAULT_WORKSPACE)

    with captured() as lines:
        stack.ticks().run()
        stack.batches().run(stack.taken())

    assert lines.of("Transition detected")
    assert [line for line in lines if "workspace" in line] == []


def test_the_stack_s_own_work_names_no_workspace_and_the_sync_names_each_workspace_it_pauses(world: World) -> None:
    rig = Rig(world, StaticWorkspaceKeys())  # default's world holds the registry; acme and beta a world each
    rig.keys.secret(json.dumps({"workspaces": {ACME: ACME_KEY, BETA: BETA_KEY}}))
    rig.sync.run()
    rig.keys.secret("{}")  # no usable key: every known workspace pauses
    batch = world.path.work_batch(workspaces=rig.sync)

    # the stack's own work runs on default's batch
    with captured() as lines, working_for(DEFAULT_WORKSPACE, among=(DEFAULT_WORKSPACE, ACME, BETA)):
        failed = batch.run([WorkItem("m1", WorkspacesRequest(workspaces="sync"))])

    assert failed == []
    (unusable,) = [line for line in lines if line["message"].startswith("The Genviral secret is not usable")]
    assert "workspace" not in unusable  # about the stack, not default
    pausing = lines.of("Genviral refused the key; pausing calls")
    assert sorted(line["workspace"] for line in pausing) == [ACME, BETA]


def owed_and_refused(stack: Stack) -> None:
    """Default's view holds a notice SNS keeps refusing: the flush writes a line about it."""
    world = stack.worlds[DEFAULT_WORKSPACE]
    owe_a_notice(world)
    world.later(FLUSH_AFTER)
    world.publishers["sns"].failing = True


def test_the_notices_flush_names_no_workspace_though_it_runs_on_default_s_batch() -> None:
    stack = Stack(DEFAULT_WORKSPACE, ACME)
    stack.watched(ACME)
    owed_and_refused(stack)
    stack.ticks().run()

    with captured() as lines:
        failed = stack.batches().run([FLUSH, *stack.taken()])

    assert failed == []
    (kept,) = lines.of(KEPT)
    assert "workspace" not in kept  # about the stack, not default
    assert {line["workspace"] for line in lines.of("Transition detected")} == {ACME}  # the same batch's other work


def test_the_worker_names_workspaces_by_the_secret_s_names_not_by_the_work_it_holds() -> None:
    stack = Stack(DEFAULT_WORKSPACE, ACME)
    stack.watched(ACME)
    owed_and_refused(stack)
    stack.ticks().run()
    stack.named = [ACME]  # the secret names acme alone: a stack of one workspace, as the poller's registry says

    with captured() as lines:
        failed = stack.batches().run([FLUSH, *stack.taken()])  # default's flush beside acme's checks

    assert failed == []
    assert lines.of(KEPT)
    assert lines.of("Transition detected")
    assert [line for line in lines if "workspace" in line] == []
