"""The state machine of tests/functional/test_state_machine.py over two workspaces of one stack: the secret names
both (`{"workspaces": {...}}`), Genviral gives each key its own posts, and each workspace's relay is composed as the
deployment composes one (its view of the table, its key). Its rules and invariants hold per workspace, and the
machine adds a refused key (revoked, then restored) and a tick of every workspace, checking after every step:

5. no document names a workspace other than its post's, and only a refused workspace announces a pause;
6. a refused key pauses its own workspace, and a workspace whose key was never refused has no pause record;
7. once the keys work again and the pauses are over, every transition and completion of both workspaces reached
   every target once.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from genviral_relay.checking.pause import PAUSE_AFTER_REFUSAL
from genviral_relay.clock import utc_now
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from local.emulator import GenviralEmulator
from local.stack import MotoStack
from tests.conftest import SECRETS, TOKEN
from tests.functional.test_state_machine import RelayMachine
from tests.support.fault_matrix import TickingClock
from tests.support.seams import RelayRig

ACME = "gva_live_acme.aaaaaaaaaaaaaaaa"
KEYS = {DEFAULT_WORKSPACE: TOKEN, "acme": ACME}
EXAMPLES = int(os.environ.get("RELAY_WORKSPACE_STATE_MACHINE_EXAMPLES", "6"))
STEPS = int(os.environ.get("RELAY_WORKSPACE_STATE_MACHINE_STEPS", "25"))


class WorkspaceRelayMachine(RelayMachine):
    WORKSPACES = tuple(KEYS)

    def __init__(self) -> None:
        SECRETS.add(ACME)  # no log line, document or dead letter may hold it
        self.offset = timedelta(0)
        """How far the relay's clock is ahead of the wall clock (teardown moves it past the pauses)."""
        self.revoked: set[str] = set()
        self.ever_revoked: set[str] = set()
        super().__init__()

    def start(self) -> tuple[GenviralEmulator, MotoStack]:
        emulator = GenviralEmulator(workspaces=KEYS, clock=TickingClock()).start()
        stack = MotoStack(genviral_api_url=emulator.base_url, token=TOKEN).start()
        secret = json.dumps({"workspaces": KEYS})
        stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=secret)
        return emulator, stack

    def rig_for(self, workspace: str) -> RelayRig:
        return RelayRig(self.stack, self.emulator.base_url, workspace=workspace, clock=self.now)

    def now(self) -> datetime:
        return utc_now() + self.offset

    # ------------------------------------------------------------------ rules
    @rule(workspace=st.sampled_from(tuple(KEYS)))
    def genviral_revokes_a_key(self, workspace: str) -> None:
        if workspace in self.revoked:
            return
        self.emulator.revoke_key(workspace)
        self.revoked.add(workspace)
        self.ever_revoked.add(workspace)
        # Its next call is refused (a fresh read of the secret finds the same key): its workspace pauses.
        post_id = next(post_id for post_id in self.post_ids if self.workspace_of[post_id] == workspace)
        rig = self.rigs[workspace]
        assert rig.check(post_id, trigger="manual") is not None
        assert rig.path.pause.reason() is not None, f"{workspace}'s refused key did not pause it"

    @rule(workspace=st.sampled_from(tuple(KEYS)))
    def genviral_restores_a_key(self, workspace: str) -> None:
        if workspace in self.revoked:
            self.emulator.restore_key(workspace)
            self.revoked.discard(workspace)

    @rule()
    def tick_of_every_workspace(self) -> None:
        for rig in self.rigs.values():  # as the poller's ticks run: each workspace's batch on its own
            rig.tick(ahead=timedelta(minutes=30))

    # ------------------------------------------------------------------ invariants
    @invariant()
    def no_document_crosses_workspaces(self) -> None:
        delivered = self.collected.collect()
        parked = [letter["event"] for letter in self.collected.dead_lettered]
        for document in delivered.sns + delivered.eventbridge + parked:
            if "post_id" in document:
                assert document["workspace"] == self.workspace_of[document["post_id"]], document["event_id"]
            elif document["event_type"].startswith("relay."):
                assert document["workspace"] in self.ever_revoked, (document["event_type"], document["workspace"])

    @invariant()
    def a_refused_key_pauses_its_own_workspace_only(self) -> None:
        for workspace, rig in self.rigs.items():
            if workspace not in self.ever_revoked:
                status = rig.tables.genviral_pause(self.now())
                assert (status.version, status.record) == (0, None), f"{workspace} paused; its key never was refused"

    def settle(self) -> None:
        for workspace in self.revoked:
            self.emulator.restore_key(workspace)
        self.revoked.clear()
        self.offset += PAUSE_AFTER_REFUSAL
        for workspace, rig in self.rigs.items():
            assert rig.path.pause.reason() is None, f"{workspace}'s pause outlived {PAUSE_AFTER_REFUSAL}"
        super().settle()


WorkspaceRelayMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestWorkspaceRelayStateMachine = WorkspaceRelayMachine.TestCase
