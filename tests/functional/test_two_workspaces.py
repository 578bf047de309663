"""The proof of issue 25: two Genviral workspaces in one stack, through the template's handlers (moto, the emulator
with a key per workspace), from the first tick (the worker's sync learns them from the secret) to the end of a
refused key. One key is revoked mid-run: the other workspace's events all arrive, once each, on both targets; no
document crosses workspaces; the refused workspace pauses alone, and its events arrive once its key works again."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

from genviral_relay.checking.pause import PAUSE_AFTER_REFUSAL
from genviral_relay.polling.workspaces import workspace_registry
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import NO_ACCOUNT_CHECKS, SECRETS, TOKEN
from tests.functional.subscribers import Received, drain
from tests.functional.test_workspace_handlers import store_of
from tests.support.doubles import SteppingClock

KEYS = {"acme": "gva_live_acme.aaaaaaaaaaaaaaaa", "beta": "gva_live_beta.bbbbbbbbbbbbbbbb"}
TICK = timedelta(minutes=1)


def tick(runner: LocalRunner, clock: SteppingClock) -> dict[str, Any]:
    """A minute later: the poller's tick, then the worker until the work queue is empty."""
    clock.now += TICK
    report: dict[str, Any] = runner.tick(clock.now)
    assert runner.drain_work_queue().failed == 0
    return report


def published(received: Received) -> list[tuple[str, str, str, str]]:
    """(workspace, event_type, post_id, account_id) of every document of both targets, the SNS attribute checked."""
    for message in received.sns:
        document = json.loads(message["Message"])
        assert message["MessageAttributes"]["workspace"]["Value"] == document["workspace"]
    return [
        (document["workspace"], document["event_type"], document.get("post_id", ""), document.get("account_id") or "")
        for document in received.sns_documents() + received.eventbridge_documents()
    ]


def test_two_workspaces_one_refused_key_the_other_unaffected_and_nothing_crosses(
    emulator: GenviralEmulator, relay_clock: SteppingClock
) -> None:
    SECRETS.update(KEYS.values())  # no log line, document or answer may hold them
    for name, key in KEYS.items():
        emulator.add_workspace(name, key)
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters=NO_ACCOUNT_CHECKS) as stack:
        secret = json.dumps({"workspaces": KEYS})
        stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=secret)
        runner = LocalRunner(stack)

        # The first tick asks for a sync: the worker learns both workspaces from the secret.
        tick(runner, relay_clock)
        registry, _ = workspace_registry(store_of(stack).notices)
        assert (registry.workspaces, registry.removed) == (("acme", "beta"), {})

        # Two posts in each workspace, two accounts each, registered through the API.
        posts = {
            name: [
                emulator.create_post(workspace=name, accounts=2, scheduled_at=relay_clock.now - TICK) for _ in range(2)
            ]
            for name in KEYS
        }
        workspace_of = {post_id: name for name, ids in posts.items() for post_id in ids}
        for post_id, name in workspace_of.items():
            answer = runner.api("POST", "/watches", {"post_id": post_id, "workspace": name})
            assert (answer.status, answer.body["watch"]["workspace"]) == (201, name)

        # Each workspace's first accounts post: both report.
        for post_id in workspace_of:
            emulator.mark_posted(post_id, emulator.account_ids(post_id)[0])
        tick(runner, relay_clock)
        before = published(drain(stack))
        assert sorted(before) == sorted(
            [
                (name, "post.account.posted", post_id, emulator.account_ids(post_id)[0])
                for post_id, name in workspace_of.items()
            ]
            * 2  # SNS and the bus
        )

        # Mid-run, acme's key is revoked; then every remaining account finishes.
        emulator.revoke_key("acme")
        for post_id in workspace_of:
            emulator.mark_failed(post_id, emulator.account_ids(post_id)[1], error_message="Media rejected")
        refused = tick(runner, relay_clock)
        calls = emulator.calls_by_workspace()["acme"]
        paused = tick(runner, relay_clock)
        during = published(drain(stack))

        # beta: all of its events, once each; acme: only its pause, and no call while paused.
        beta_expected = [
            event
            for post_id in posts["beta"]
            for event in (
                ("beta", "post.account.failed", post_id, emulator.account_ids(post_id)[1]),
                ("beta", "post.completed", post_id, ""),
            )
        ]
        assert sorted(event for event in during if event[0] == "beta") == sorted(beta_expected * 2)  # SNS and bus
        assert sorted(event for event in during if event[0] == "acme") == [("acme", "relay.paused", "", "")] * 2
        assert "acme" in paused["paused"]
        assert "beta" not in paused["paused"]
        assert "beta" not in refused.get("paused", {})
        assert emulator.calls_by_workspace()["acme"] == calls
        acme, beta = store_of(stack).in_workspace("acme"), store_of(stack).in_workspace("beta")
        assert acme.genviral_pause(relay_clock.now).reason is not None
        assert beta.genviral_pause(relay_clock.now).reason is None

        # The key works again: once the pause ends, acme's events arrive, and its resumption.
        emulator.restore_key("acme")
        relay_clock.now += PAUSE_AFTER_REFUSAL
        tick(runner, relay_clock)
        tick(runner, relay_clock)
        after = published(drain(stack))

        acme_expected = [
            event
            for post_id in posts["acme"]
            for event in (
                ("acme", "post.account.failed", post_id, emulator.account_ids(post_id)[1]),
                ("acme", "post.completed", post_id, ""),
            )
        ] + [("acme", "relay.resumed", "", "")]
        assert sorted(after) == sorted(acme_expected * 2)

        # Over the whole run: every document names its post's workspace, and no event was published twice.
        for workspace, _type, post_id, _account in before + during + after:
            assert post_id == "" or workspace_of[post_id] == workspace
        assert max(Counter(before + during + after).values()) == 2  # one per target
        stack.drain_subscribers()  # every published document meets the JSON Schema
