"""Message bodies on the work queue (and its dead-letter queue): what the poller asks the workers to do."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from genviral_relay.models.domain import PostId


class SweepRequest(BaseModel):
    """Look for failed posts that Genviral sent back to its scheduler (see `logic/retry_sweep.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep: Literal["retry"]


class DiscoverRequest(BaseModel):
    """List the workspace's posts and watch the new ones (discover mode, see `logic/discover.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    discover: Literal["posts"]


class CheckRequest(BaseModel):
    """Check one post."""

    # Ignores what it does not know: messages queued by 0.3.0 also carry a `reason` nothing read.
    model_config = ConfigDict(extra="ignore", frozen=True)

    post_id: PostId


WorkRequest = CheckRequest | SweepRequest | DiscoverRequest
WORK_MESSAGE: TypeAdapter[WorkRequest] = TypeAdapter(WorkRequest)
"""A message body on the work queue (and on its dead-letter queue)."""
