"""Messages on the work queue and the scheduler's input."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from genviral_relay.models.api import PostId


class SweepRequest(BaseModel):
    """Look for failed posts that Genviral sent back to its scheduler (see `PollingPolicy.awaits_retry`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep: Literal["retry"]


class DiscoverRequest(BaseModel):
    """List the workspace's posts and watch the new ones (discover mode, see `logic/discover.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    discover: Literal["posts"]


class CheckRequest(BaseModel):
    """Check one post. `reason` is for logs only."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    post_id: PostId
    reason: Literal["due", "manual"] = "due"


WorkRequest = CheckRequest | SweepRequest | DiscoverRequest
WORK_MESSAGE: TypeAdapter[WorkRequest] = TypeAdapter(WorkRequest)
"""A message body on the work queue (and on its dead-letter queue)."""
