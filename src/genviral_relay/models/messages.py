"""Message bodies on the work queue (and its dead-letter queue): what the poller asks the workers to do."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from genviral_relay.models.domain import PostId
from genviral_relay.models.upstream import PAGE_LIMIT
from genviral_relay.models.workspaces import WorkspaceName, workspace_of


class _InWorkspace(BaseModel):
    """Work for one workspace's key. Absent: `default` (a single-workspace stack's messages carry none, as 0.4's)."""

    workspace: WorkspaceName | None = None


class SweepRequest(_InWorkspace):
    """Look for failed posts that Genviral sent back to its scheduler (see `polling/retry_sweep.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep: Literal["retry"]


class DiscoverRequest(_InWorkspace):
    """List the workspace's posts and watch the new ones (discover mode, see `polling/discover.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    discover: Literal["posts"]


class AccountsRequest(_InWorkspace):
    """List the workspace's accounts and report the ones that left `active` or came back (see
    `checking/account_health.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: Literal["check"]


class NoticesRequest(BaseModel):
    """Publish the notices (`account.*`, `relay.*`) a target has not taken yet (see `notices/outbox.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notices: Literal["flush"]


class WorkspacesRequest(BaseModel):
    """Read the secret afresh and record the workspaces it names (see `polling/workspaces.py`): global, like the
    notices' flush."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workspaces: Literal["sync"]


class CheckRequest(_InWorkspace):
    """Check one post."""

    # shim: work-message-reason (docs/compatibility.md)
    # Ignores what it does not know: messages queued by 0.3.0 also carry a `reason` nothing read.
    model_config = ConfigDict(extra="ignore", frozen=True)

    post_id: PostId
    # shim: work-message-without-queued-at (docs/compatibility.md)
    queued_at: datetime | None = None
    """When the poller queued it (its tick): a check of the post that started later makes this one a
    duplicate (see `polling/in_flight.py`). None: queued by 0.3.0, never skipped."""
    waiting_since: datetime | None = None
    """When the poller first wanted this check: the tick itself, or the first tick that deferred it
    (backpressure). The worker reports how long the check waited (`CheckDelay`)."""


class RefreshRequest(_InWorkspace):
    """Refresh these watched posts, all created in [since, until] (both inclusive), with one list call
    (`GET /posts?since=…&until=…`, see `polling/bulk_refresh.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    refresh: Literal["created"]
    since: datetime
    until: datetime
    post_ids: tuple[PostId, ...] = Field(min_length=2, max_length=PAGE_LIMIT)  # one list call's page
    queued_at: datetime | None = None
    """As `CheckRequest.queued_at`, for each of the posts."""
    waiting_since: datetime | None = None
    """As `CheckRequest.waiting_since`: the longest any of the posts waited."""


WorkRequest = (
    CheckRequest
    | SweepRequest
    | DiscoverRequest
    | RefreshRequest
    | AccountsRequest
    | NoticesRequest
    | WorkspacesRequest
)
WORK_MESSAGE: TypeAdapter[WorkRequest] = TypeAdapter(WorkRequest)
"""A message body on the work queue (and on its dead-letter queue)."""


def for_workspace(request: WorkRequest) -> bool:
    """Whether the work is one workspace's; the stack's own work (the notices flush, the sync) names none."""
    return isinstance(request, _InWorkspace)


def workspace_of_request(request: WorkRequest) -> str:
    """The workspace whose key the work uses; the stack's own work runs on `default`'s batch."""
    return workspace_of(request.workspace if isinstance(request, _InWorkspace) else None)
