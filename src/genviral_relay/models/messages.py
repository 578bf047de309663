"""Messages on the work queue and the scheduler's input."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from genviral_relay.models.api import PostId


class SweepRequest(BaseModel):
    """Look for finished posts that Genviral sent back to its scheduler (see `PollingPolicy.awaits_retry`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep: Literal["retry"]


class CheckRequest(BaseModel):
    """Check one post. `reason` is for logs only."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    post_id: PostId
    reason: Literal["due", "manual"] = "due"


WORK_MESSAGE: TypeAdapter[CheckRequest | SweepRequest] = TypeAdapter(CheckRequest | SweepRequest)
"""A message body on the work queue (and on its dead-letter queue)."""
