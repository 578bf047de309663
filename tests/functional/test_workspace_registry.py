"""The workspaces' registry through the real handlers on moto: the poller asks for a sync (it never reads the
secret: its role may not), the worker reads the secret afresh and writes the `WORKSPACES` record; a workspace added
to the secret is there after one tick, a removed one is listed as removed with its watches untouched, and a bad
secret is recorded and pauses calls, logged once, with no key in any line."""

from __future__ import annotations

import json
from datetime import timedelta

from genviral_relay.aws.secret_forms import NOT_USABLE
from genviral_relay.clock import utc_now
from genviral_relay.models.workspace_registry import WorkspaceRegistry
from genviral_relay.polling.workspaces import workspace_registry
from local.emulator import GenviralEmulator
from local.runner import POLLER, LocalRunner
from local.stack import MotoStack
from tests.conftest import SECRETS, TOKEN, SecretSentinel
from tests.functional.shared_rig import stored_item
from tests.functional.test_auth_faults import relay_lines
from tests.functional.test_cli import store_of
from tests.functional.test_relay_flow import publishing_now

ACME = "gva_live_acme.0a1b2c3d4e5f"


def registry(stack: MotoStack) -> tuple[WorkspaceRegistry, int]:
    return workspace_registry(store_of(stack).notices)


def put_secret(stack: MotoStack, value: str) -> None:
    stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=value)


def sync(runner: LocalRunner) -> None:
    """A tick (a new poller environment: it asks for a sync), then the worker until the queue is empty."""
    runner.tick()
    report = runner.drain_work_queue()
    assert report.failed == 0


def test_the_poller_asks_and_the_worker_syncs_without_the_poller_reading_the_secret(
    runner: LocalRunner, stack: MotoStack, secret_reads: list[str]
) -> None:
    assert "GENVIRAL_SECRET_ARN" not in stack.function_env(POLLER)

    runner.tick()
    assert secret_reads == []
    runner.drain_work_queue()

    assert secret_reads == [stack.secret_arn]  # the worker's sync: one read past the cache
    found, version = registry(stack)
    assert (found.workspaces, found.removed, found.error, version) == (("default",), {}, None, 1)


def test_a_workspace_added_is_registered_within_one_sync_and_a_removed_one_listed_with_its_watch_kept(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    SECRETS.add(ACME)
    post_id, _ = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    sync(runner)

    put_secret(stack, json.dumps({"workspaces": {"default": TOKEN, "acme": ACME}}))
    sync(runner)
    assert registry(stack)[0].workspaces == ("acme", "default")

    watch = stored_item(stack, post_id)
    put_secret(stack, json.dumps({"workspaces": {"acme": ACME}}))
    before = utc_now()
    sync(runner)

    found = registry(stack)[0]
    assert found.workspaces == ("acme",)
    assert list(found.removed) == ["default"]
    assert found.removed["default"] >= before - timedelta(seconds=1)
    assert stored_item(stack, post_id) == watch  # nothing deleted: the watch waits for its workspace


def test_a_04_stack_switched_to_a_map_without_default_before_its_first_sync_reports_default_removed(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, secret_sentinel: SecretSentinel
) -> None:
    SECRETS.add(ACME)
    post_id, _ = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201  # 0.4's secret: default's watch
    watch = stored_item(stack, post_id)
    put_secret(stack, json.dumps({"workspaces": {"acme": ACME}}))

    sync(runner)

    found = registry(stack)[0]
    assert (found.workspaces, list(found.removed)) == (("acme",), ["default"])
    assert stored_item(stack, post_id) == watch
    (line,) = relay_lines(
        secret_sentinel,
        "The Genviral secret does not name the workspace default, which holds this stack's watches from before "
        "several workspaces: they stop, kept, until the secret names default again",
    )
    assert line["level"] == "WARNING"


def test_a_new_stack_s_first_sync_need_not_name_default(runner: LocalRunner, stack: MotoStack) -> None:
    SECRETS.add(ACME)
    put_secret(stack, json.dumps({"workspaces": {"acme": ACME}}))

    sync(runner)

    found = registry(stack)[0]
    assert (found.workspaces, found.removed) == (("acme",), {})


def test_a_bad_secret_is_recorded_pauses_calls_and_is_logged_once_without_a_key(
    runner: LocalRunner, stack: MotoStack, secret_sentinel: SecretSentinel
) -> None:
    sync(runner)
    put_secret(stack, '{"workspaces": {"acme": "' + ACME + '", "acme": "' + TOKEN + '"}}')
    SECRETS.add(ACME)

    sync(runner)
    sync(runner)

    found = registry(stack)[0]
    assert found.workspaces == ("default",)  # the last good list: nothing watched is lost
    assert found.error == 'the Genviral secret names the workspace(s) "acme" more than once'
    (line,) = relay_lines(
        secret_sentinel, "The Genviral secret is not usable; the workspaces stay as last read and their calls pause"
    )
    assert line["level"] == "ERROR"
    # the default workspace's calls pause; the published reason names no workspace (the log line and record do)
    assert runner.tick()["paused"] == NOT_USABLE
