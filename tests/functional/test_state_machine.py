"""A Hypothesis state machine over the real relay: Genviral changes, crashes at random seams,
duplicate deliveries and concurrent workers, with the invariants checked after every step.

1. every transition that happened upstream, and every completion of a post, reaches every target (checked once
   the run settles);
2. exactly one event id per transition, committed once: the conditional transaction lets one of
   several concurrent checks write it (in-process moto answers one call at a time, so its
   transactions are atomic as DynamoDB's are);
3. the stored state never moves backwards;
4. no event without a real transition.

The machine is written for the workspaces of one stack (`WORKSPACES`, each post a workspace's, each workspace its
own rig, ledger and invariants): here one, `default`; tests/functional/test_workspace_state_machine.py runs it
with two.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from genviral_relay import factories
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from local.emulator import GenviralEmulator
from local.stack import MotoStack
from tests.conftest import TOKEN
from tests.support.fault_matrix import TickingClock
from tests.support.ledger import Audit, Ledger
from tests.support.seams import SEAMS, RelayRig

POSTS = 2
"""Per workspace."""
ACCOUNTS = 2
INDEX = st.integers(0, 7)
"""A post among all workspaces' (`RelayMachine._post`), or a workspace: the index wraps, so one strategy serves any
count."""
EXAMPLES = int(os.environ.get("RELAY_STATE_MACHINE_EXAMPLES", "12"))
STEPS = int(os.environ.get("RELAY_STATE_MACHINE_STEPS", "25"))


class RelayMachine(RuleBasedStateMachine):
    WORKSPACES: ClassVar[tuple[str, ...]] = (DEFAULT_WORKSPACE,)

    def __init__(self) -> None:
        super().__init__()
        factories.reset()
        self.emulator, self.stack = self.start()
        self.rigs = {workspace: self.rig_for(workspace) for workspace in self.WORKSPACES}
        self.ledgers = {workspace: Ledger() for workspace in self.WORKSPACES}
        self.post_ids: list[str] = []
        self.workspace_of: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.history: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        self.position: dict[tuple[str, str], int] = {}

    def start(self) -> tuple[GenviralEmulator, MotoStack]:
        """Genviral and the stack, with a key for each of `WORKSPACES`."""
        emulator = GenviralEmulator(tokens=[TOKEN], clock=TickingClock()).start()
        return emulator, MotoStack(genviral_api_url=emulator.base_url, token=TOKEN).start()

    def rig_for(self, workspace: str) -> RelayRig:
        return RelayRig(self.stack, self.emulator.base_url, workspace=workspace)

    @initialize()
    def register_posts(self) -> None:
        scheduled = datetime.now(UTC) - timedelta(minutes=1)
        for workspace in self.WORKSPACES:
            for _ in range(POSTS):
                post_id = self.emulator.create_post(accounts=ACCOUNTS, scheduled_at=scheduled, workspace=workspace)
                self.post_ids.append(post_id)
                self.workspace_of[post_id] = workspace
                self._record_upstream(post_id)
                assert self._rig(post_id).check(post_id, trigger="register") is not None

    # ------------------------------------------------------------------ rules
    @rule(
        post=INDEX,
        account=st.integers(0, ACCOUNTS - 1),
        change=st.sampled_from(["posted", "failed", "retry", "void"]),
    )
    def genviral_changes_an_account(self, post: int, account: int, change: str) -> None:
        post_id = self._post(post)
        # Only change what the relay has recorded and still watches, so every transition is observable.
        record = self._rig(post_id).store.get(post_id)
        if record is None or not record.watching or not self._recorded(post_id):
            return
        account_id = self.emulator.account_ids(post_id)[account]
        current = self._upstream_states(post_id)[account_id]["status"]
        if change == "posted":
            self.emulator.mark_posted(post_id, account_id)
        elif change == "failed":
            self.emulator.mark_failed(post_id, account_id, error_message="rejected")
        elif change == "retry" and current == "failed":
            self.emulator.retry(post_id, [account_id])
        elif change == "void":
            self.emulator.set_account_state(post_id, account_id, status="void")
        self._record_upstream(post_id)

    @rule(post=INDEX, seam=st.sampled_from([None, *SEAMS]))
    def check_with_a_possible_crash(self, post: int, seam: str | None) -> None:
        post_id = self._post(post)
        rig = self._rig(post_id)
        if seam:
            rig.seams.arm(seam)
        rig.check(post_id)
        rig.seams.armed.clear()

    @rule(post=INDEX)
    def same_message_delivered_twice(self, post: int) -> None:
        post_id = self._post(post)
        self._rig(post_id).work([post_id])
        self._rig(post_id).work([post_id])

    @rule(post=INDEX, workers=st.integers(2, 3))
    def concurrent_workers_check_one_post(self, post: int, workers: int) -> None:
        barrier = threading.Barrier(workers)
        post_id = self._post(post)

        def work() -> None:
            barrier.wait()
            self._rig(post_id).work([post_id])

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    @rule(workspace=INDEX, seam=st.sampled_from([None, *SEAMS]))
    def tick_with_a_possible_crash_mid_batch(self, workspace: int, seam: str | None) -> None:
        rig = self.rigs[self.WORKSPACES[workspace % len(self.WORKSPACES)]]
        if seam:
            rig.seams.arm(seam)
        rig.tick(ahead=timedelta(minutes=30))
        rig.seams.armed.clear()

    # ------------------------------------------------------------------ invariants
    @invariant()
    def one_id_per_transition_and_no_invented_events(self) -> None:
        for workspace in self.WORKSPACES:
            audit = self._audit(workspace)
            assert audit.duplicate_ids == 0, (workspace, audit)
            assert audit.unexpected == 0, (workspace, audit)

    @invariant()
    def each_transition_is_committed_once(self) -> None:
        for rig in self.rigs.values():
            twice = [event_id for event_id, commits in rig.store.committed.items() if commits > 1]
            assert not twice, f"events committed more than once: {twice}"

    @invariant()
    def stored_state_never_moves_backwards(self) -> None:
        for post_id in self.post_ids:
            record = self._rig(post_id).store.get(post_id)
            if record is None:
                continue
            assert record.version >= self.versions.get(post_id, 0)
            self.versions[post_id] = record.version
            for account_id, state in record.accounts.items():
                key = (post_id, account_id)
                seen = self.history[key]
                start = self.position.get(key, 0)
                later = [
                    index for index in range(start, len(seen)) if seen[index] == (state.status, state.last_attempted_at)
                ]
                assert later, (
                    f"stored {state.status}@{state.last_attempted_at} is not at or after what was stored before"
                )
                self.position[key] = later[0]

    def teardown(self) -> None:
        try:
            if self.post_ids:
                self.settle()
                for workspace in self.WORKSPACES:
                    audit = self._audit(workspace)
                    assert audit.clean, (workspace, audit)
                    every_event = audit.expected + audit.completions  # the transitions and the posts' completions
                    assert audit.delivered == {"sns": every_event, "eventbridge": every_event}, (workspace, audit)
        finally:
            self.stack.stop()
            self.emulator.stop()

    def settle(self) -> None:
        """What later ticks would do: every workspace's notices and outboxes flushed, its posts checked."""
        for workspace, rig in self.rigs.items():
            rig.settle([post_id for post_id in self.post_ids if self.workspace_of[post_id] == workspace])

    # ------------------------------------------------------------------ helpers
    def _post(self, index: int) -> str:
        return self.post_ids[index % len(self.post_ids)]

    def _rig(self, post_id: str) -> RelayRig:
        return self.rigs[self.workspace_of[post_id]]

    @property
    def collected(self) -> RelayRig:
        """The rig whose `collect` drains the stack's subscribers and DLQ: one for all workspaces (they share them)."""
        return self.rigs[self.WORKSPACES[0]]

    def _delivered(self, workspace: str) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        """What the targets received, and what was parked, naming `workspace`."""
        delivered = self.collected.collect()
        return (
            {
                "sns": [document for document in delivered.sns if document["workspace"] == workspace],
                "eventbridge": [document for document in delivered.eventbridge if document["workspace"] == workspace],
            },
            [letter for letter in self.collected.dead_lettered if letter["event"]["workspace"] == workspace],
        )

    def _audit(self, workspace: str) -> Audit:
        return self.ledgers[workspace].audit(*self._delivered(workspace))

    def _upstream_states(self, post_id: str) -> dict[str, dict[str, str | None]]:
        return {state["account_id"]: state for state in self.emulator.post_json(post_id)["accounts"]["states"]}

    def _record_upstream(self, post_id: str) -> None:
        self.ledgers[self.workspace_of[post_id]].observe(self.emulator.post_json(post_id))
        for account_id, state in self._upstream_states(post_id).items():
            entry = (str(state["status"]), state["last_attempted_at"])
            history = self.history.setdefault((post_id, account_id), [])
            if not history or history[-1] != entry:
                history.append(entry)

    def _recorded(self, post_id: str) -> bool:
        record = self._rig(post_id).store.get(post_id)
        if record is None:
            return False
        upstream = self._upstream_states(post_id)
        return all(
            account_id in record.accounts
            and (record.accounts[account_id].status, record.accounts[account_id].last_attempted_at)
            == (state["status"], state["last_attempted_at"])
            for account_id, state in upstream.items()
        )


RelayMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRelayStateMachine = RelayMachine.TestCase
