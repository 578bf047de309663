"""HTTP API bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from genviral_relay.clock import format_ts, format_ts_or_none
from genviral_relay.models.domain import AccountSnapshot, PostId, WatchRecord
from genviral_relay.models.events import EventDocument
from genviral_relay.models.workspaces import WorkspaceName, workspace_of


class RegisterWatchRequest(BaseModel):
    """The body of a registration (`POST /watches`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    post_id: PostId = Field(description="The Genviral post id, a UUID in its hyphenated form (any case).")
    workspace: WorkspaceName | None = Field(
        default=None,
        description="The workspace whose Genviral key checks the post: one the secret names (`[a-z0-9-]{1,40}`). "
        "Required when the secret names several; a post already watched stays in its own.",
    )


class AccountView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str
    status: str
    published_at: str | None
    error_message: str | None
    last_attempted_at: str | None
    published_url: str | None

    @classmethod
    def of(cls, account_id: str, state: AccountSnapshot) -> AccountView:
        # The relay's own bookkeeping (outcome_event_id, retry_seen_at) stays out of the API.
        return cls(account_id=account_id, **state.model_dump(include=set(cls.model_fields) - {"account_id"}))


class WatchView(BaseModel):
    """The last-seen state of a watched post."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    post_id: str
    workspace: str = Field(
        description="The workspace whose Genviral key checks the post (`default` in a stack of one)."
    )
    watching: bool
    ended_reason: str | None
    status: str | None = Field(description="The post's status as last seen; null before the first check.")
    scheduled_at: str | None
    accounts: list[AccountView]
    next_check_at: str | None
    last_changed_at: str | None
    registered_at: str
    pending_deliveries: int

    @classmethod
    def of(cls, record: WatchRecord) -> WatchView:
        return cls(
            post_id=record.post_id,
            workspace=workspace_of(record.workspace),
            watching=record.watching,
            ended_reason=record.ended_reason,
            status=record.post_status,
            scheduled_at=record.scheduled_at,
            accounts=[AccountView.of(account_id, state) for account_id, state in sorted(record.accounts.items())],
            next_check_at=format_ts_or_none(record.next_check_at),
            last_changed_at=format_ts_or_none(record.changed_at),
            registered_at=format_ts(record.registered_at),
            pending_deliveries=record.pending_deliveries,
        )


class CheckResponse(BaseModel):
    """The answer of a registration or a check-now: the state and the transitions this check found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    result: str = Field(
        description="`changed` or `unchanged`; `deferred` (Genviral gave no usable answer), `conflict` (another check "
        "committed first; its result stands), `flushed` (an ended watch only had events to publish)."
    )
    watch: WatchView | None = Field(description="The watch as this check left it; null when it is not stored.")
    transitions: list[EventDocument] = Field(
        description="The events this check found: transitions, and from 0.4 delays and completions."
    )
    message: str | None = Field(default=None, description="Why the check was deferred.")


class UnwatchResponse(BaseModel):
    """The answer of `DELETE /watches/{post_id}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    post_id: str
    watching: bool
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer of the relay (API Gateway's own refusals are `GatewayRefusal`s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: str = Field(description="A stable code, e.g. `bad_request`, `not_watched`, `post_not_found`.")
    message: str = Field(description="What went wrong, for a person.")
    webhook_id: str | None = Field(
        default=None, description="`webhook_exists`: the endpoint that has this URL and these event types; else null."
    )


class GatewayRefusal(BaseModel):
    """API Gateway's own answer to a request it refuses before the relay sees it (an unsigned request: 403)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: str = Field(description="API Gateway's words, e.g. `Missing Authentication Token`.")
