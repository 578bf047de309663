"""Composition per workspace: each workspace's check path, worker batch and poller tick, built on first use and kept
for the execution environment (as everything in `factories.py`). A workspace's objects are the single-workspace use
cases on its own view of the one table (`DynamoDbStore.in_workspace`) and its own key (`WorkspaceKeys.token_source`):
its pause, discover walk, retry sweep, account directory, backpressure and concurrency cap are its own by
construction. A stack of one workspace builds exactly what 0.4 built, as `default`'s."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from genviral_relay import factories
from genviral_relay.clock import moment_from
from genviral_relay.factories import (
    aws_client,
    build_genviral_client,
    build_relay,
    build_work_queue,
    build_workspace_keys,
    built_once,
    checker_store,
    poller_store,
)
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.settings import checker_settings, poller_settings, worker_settings

if TYPE_CHECKING:
    from genviral_relay.checking.pause import GenviralPause
    from genviral_relay.checking.ports import WorkspaceKeys
    from genviral_relay.polling.ports import WorkQueue
    from genviral_relay.polling.tick import PollTick
    from genviral_relay.polling.work_batch import WorkBatch
    from genviral_relay.polling.workspace_queue import HeldSends, SharedBacklog
    from genviral_relay.polling.workspace_runs import WorkspaceBatches, WorkspaceTicks
    from genviral_relay.relay import Relay


# ---------------------------------------------------------------------- the checks (worker and API)
@built_once
def workspace_keys() -> WorkspaceKeys:
    """The workspaces' keys: one cached read of the secret serves them all."""
    return build_workspace_keys(checker_settings().genviral_secret_arn, aws_client)


@built_once
def relay(workspace: str) -> Relay:
    """`workspace`'s check path: its view of the table, Genviral with its key."""
    from genviral_relay.relay import polling_policy

    settings = checker_settings()
    return build_relay(
        store=checker_store().in_workspace(workspace),
        source=build_genviral_client(str(settings.genviral_api_url), workspace_keys().token_source(workspace)),
        targets=settings.targets,
        topic_arn=settings.topic_arn,
        event_bus_name=settings.event_bus_name,
        events_dlq_url=settings.events_dlq_url,
        policy=polling_policy(
            settings.poll_schedule, settings.failed_retry_window_hours, settings.delayed_after_minutes
        ),
        webhook_fanout_queue_url=settings.webhook_fanout_queue_url,
        account_checks=settings.account_check_minutes > 0,
        workspace=workspace,
    )


@built_once
def work_batch(workspace: str) -> WorkBatch:
    """`workspace`'s dispatcher: its checks, retry sweep and discovery, on at most `threads_per_worker` threads (so
    each workspace keeps within `GenviralMaxConcurrency`, whatever the others do)."""
    from genviral_relay.polling.workspaces import WorkspaceSync

    settings = worker_settings()
    worker = relay(workspace)
    return worker.work_batch(
        discovery=worker.discovery(partial(moment_from, settings.discover_since)),
        threads=settings.threads_per_worker,
        # The stack's own work (it names no workspace) runs on the default workspace's batch: the sync too.
        workspaces=WorkspaceSync(
            keys=workspace_keys(),
            store=checker_store().notices,
            pauses=workspace_pause,
            clock=factories.utc_now,
            default_watched=lambda: next(checker_store().watched_post_ids(limit=1), None) is not None,
        )
        if workspace == DEFAULT_WORKSPACE
        else None,
    )


def workspace_pause(workspace: str) -> GenviralPause:
    """A workspace's pause (the sync pauses every known workspace after a bad secret)."""
    return relay(workspace).pause


@built_once
def workspace_batches() -> WorkspaceBatches:
    from genviral_relay.polling.workspace_runs import WorkspaceBatches

    return WorkspaceBatches(known=workspace_keys().names, batch_of=work_batch)


# ---------------------------------------------------------------------- the poller (it never reads the secret)
@built_once
def work_queue() -> WorkQueue:
    return build_work_queue(poller_settings().work_queue_url)


@built_once
def poll_tick(workspace: str) -> PollTick:
    """`workspace`'s tick: its due shards, pause, discover walk, retry sweep, account checks and backpressure; every
    message it queues names the workspace."""
    from genviral_relay.checking.pause import GenviralPause
    from genviral_relay.polling.account_checks import AccountChecks
    from genviral_relay.polling.bulk_refresh import HotWindows
    from genviral_relay.polling.tick import PollTick
    from genviral_relay.polling.workspace_queue import WorkspaceQueue
    from genviral_relay.rules.backpressure import Backpressure
    from genviral_relay.rules.schedule import tick_of

    settings = poller_settings()
    store = poller_store().in_workspace(workspace)
    discover = settings.watch_mode == "discover"
    return PollTick(
        index=store,
        pause=GenviralPause(store, factories.utc_now),
        queue=WorkspaceQueue(held_sends(), workspace, shared_backlog()),
        clock=factories.utc_now,
        discover=discover,
        backpressure=Backpressure(tick=tick_of(settings.poll_schedule)),
        windows=HotWindows(store=store, index=store, discover=store if discover else None),
        accounts=AccountChecks(
            store=store.notices, index=store, every=timedelta(minutes=settings.account_check_minutes)
        )
        if settings.account_check_minutes
        else None,
    )


def registered_workspaces() -> tuple[str, ...]:
    """The workspaces to tick: the registry's, as the worker last synced it from the secret (one read per tick)."""
    from genviral_relay.polling.workspaces import workspace_registry

    registry, _ = workspace_registry(poller_store().notices)
    return registry.workspaces


@built_once
def shared_backlog() -> SharedBacklog:
    from genviral_relay.polling.workspace_queue import SharedBacklog

    return SharedBacklog(work_queue())


@built_once
def held_sends() -> HeldSends:
    """What the workspaces' ticks queue, sent interleaved once all have ticked (`polling/workspace_queue.py`)."""
    from genviral_relay.polling.workspace_queue import HeldSends

    return HeldSends(work_queue())


@built_once
def workspace_ticks() -> WorkspaceTicks:
    from genviral_relay.polling.stack_work import StackTick
    from genviral_relay.polling.workspace_runs import WorkspaceTicks
    from genviral_relay.polling.workspaces import SYNC_EVERY

    # The stack's own work, queued on its own whatever the workspaces' ticks do (the notices are everyone's).
    stack = StackTick(
        notices=poller_store().notices, sync_every=SYNC_EVERY, queue=work_queue(), clock=factories.utc_now
    )
    return WorkspaceTicks(
        workspaces=registered_workspaces,
        tick_of=poll_tick,
        stack=stack,
        backlog=shared_backlog(),
        held=held_sends(),
    )
