"""The relay's use cases on the in-memory doubles, for the fast specs: no moto, no emulator, no sockets.

Genviral is a dict of posts (`source`), the store counts the DynamoDB calls the real one would make,
both targets record what they publish, and the clock stands at `tests.builders.NOW` until a spec
moves it (`later`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property

from genviral_relay.checking.check import CheckOutcome, PostCheck
from genviral_relay.models.domain import TARGETS, Target, WatchRecord
from genviral_relay.models.upstream import Post
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.observability import Metric, metrics
from genviral_relay.polling.discover import MAX_LIST_CALLS, Discovery
from genviral_relay.polling.work_batch import WorkBatch
from genviral_relay.relay import Relay, compose_relay
from genviral_relay.rules.schedule import PollingPolicy
from tests.builders import NOW, POST_ID
from tests.support.doubles import (
    InMemoryDeadLetters,
    InMemoryPostSource,
    InMemoryStore,
    RecordingPublisher,
    SteppingClock,
)


class World:
    def __init__(self, *, policy: PollingPolicy | None = None, account_checks: bool = False) -> None:
        """`account_checks`: as `AccountCheckMinutes` above 0 (the checks' listings feed the account health)."""
        self.clock = SteppingClock(NOW)
        self.store = InMemoryStore(clock=self.clock)
        self.source = InMemoryPostSource()
        self.publishers: dict[Target, RecordingPublisher] = {target: RecordingPublisher(target) for target in TARGETS}
        self.dead_letters = InMemoryDeadLetters()
        self.policy = policy or PollingPolicy()
        self.account_checks = account_checks
        self.workspace = DEFAULT_WORKSPACE
        """Whose check path this is (`WorkspaceWorld` in the workspace specs: one workspace of a stack)."""

    @cached_property
    def path(self) -> Relay:
        """The check path on every double, both targets configured (one pause, as a deployment has)."""
        return self.path_with(TARGETS)

    def path_with(self, targets: Sequence[Target]) -> Relay:
        """Another check path on the same doubles, with only these targets configured."""
        return compose_relay(
            store=self.store,
            state=self.store,
            source=self.source,
            publishers=[self.publishers[target] for target in targets],
            dead_letters=self.dead_letters,
            clock=self.clock,
            policy=self.policy,
            feed=self.store.feed,
            account_checks=self.account_checks,
            workspace=self.workspace,
        )

    @property
    def check(self) -> PostCheck:
        return self.path.checker

    def discovery(self, *, max_list_calls: int = MAX_LIST_CALLS) -> Discovery:
        """Discovery with `DiscoverSince` = now: what exists at its first run is the baseline."""
        return self.path.discovery(lambda now: now, max_list_calls=max_list_calls)

    def batch(self, *, threads: int = 1, sweep: bool = True, discovery: bool = True) -> WorkBatch:
        """The worker's dispatcher; `sweep`/`discovery`: whether this worker has them."""
        return self.path.work_batch(discovery=self.discovery() if discovery else None, sweep=sweep, threads=threads)

    def register(self, post: Post) -> CheckOutcome:
        """Genviral now holds `post`, and the relay is asked to watch it."""
        self.source.put(post)
        return self.check.check(post.id, trigger="register")

    def stored(self, post_id: str = POST_ID) -> WatchRecord:
        watch = self.store.get(post_id)
        assert watch is not None, f"{post_id} is not watched"
        return watch

    def published(self, target: Target) -> list[str]:
        """The ids of the events `target` received, in order."""
        return [event.event_id for event in self.publishers[target].published]

    def later(self, delta: timedelta) -> None:
        self.clock.now += delta

    def forget_calls(self) -> None:
        """Start counting Genviral and DynamoDB calls afresh (after a spec's Given)."""
        self.source.calls.clear()
        self.store.calls.clear()


def emitted(metric: Metric) -> list[float]:
    """The values of `metric` this test added (the suite clears the metrics around every test)."""
    recorded = metrics.metric_set.get(metric.value)
    return list(recorded["Value"]) if recorded else []
