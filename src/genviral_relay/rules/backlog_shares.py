"""Each workspace's share of the stack's one work queue, for its backpressure (`rules/backpressure.py`).

A workspace's backpressure measures the fleet's pace as what left the queue of what it expected there; read against
the whole queue, every other workspace's messages look like work its fleet never drained, so one busy workspace would
starve the quiet ones. So the queue's backlog is attributed to the workspaces in proportion to what each has waiting
there (what it queued, less its share of what the fleet took since): a workspace paces on its own messages, as if it
had a stack of its own, and the fleet's pace is shared in proportion to what each asks of it. The queue does not say
whose messages it holds; the proportion is the estimate, and every tick scales it back to the measured total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class BacklogShares:
    _waiting: dict[str, float] = field(default_factory=dict)
    _known: bool = False

    def measured(self, backlog: int | None, workspaces: Sequence[str]) -> None:
        """The stack's queue holds `backlog` messages (None: unknown) as the `workspaces` tick."""
        if backlog is None or not workspaces:
            self._waiting, self._known = {}, False  # as a backlog unknown to one stack: nothing is limited
            return
        held = {workspace: self._waiting.get(workspace, 0.0) for workspace in workspaces}
        total = sum(held.values())
        if total > 0:
            self._waiting = {workspace: waiting * backlog / total for workspace, waiting in held.items()}
        else:  # nothing queued by this poller yet (a fresh one): the backlog is everyone's alike
            self._waiting = dict.fromkeys(workspaces, backlog / len(workspaces))
        self._known = True

    def of(self, workspace: str) -> int | None:
        """`workspace`'s share of the backlog last measured, with what it queued since (None: unknown)."""
        return round(self._waiting.get(workspace, 0.0)) if self._known else None

    def queued(self, workspace: str, count: int) -> None:
        if self._known:
            self._waiting[workspace] = self._waiting.get(workspace, 0.0) + count
