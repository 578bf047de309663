"""The relay's own vocabulary: post ids, posting statuses, targets, and what it remembers about a watched post."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

Target = Literal["sns", "eventbridge", "webhooks"]
TARGETS: tuple[Target, ...] = ("sns", "eventbridge", "webhooks")
"""Where the outbox delivers: the topic, the bus, and the webhooks' fan-out queue (each endpoint's deliveries
then retry on their own schedule, `webhooks/`)."""
PUBLISH_TARGETS: tuple[Target, ...] = ("sns", "eventbridge")
"""The targets `PublishTargets` chooses from (`both` is these two); webhooks have a parameter of their own."""
OutboxTarget = Target | Literal["feed"]
"""What an outbox entry is owed to: a target, or the event feed (`FEED_TARGET`: always on, never a publish target)."""
FEED_TARGET: Literal["feed"] = "feed"
OUTBOX_TARGETS: tuple[OutboxTarget, ...] = (*TARGETS, FEED_TARGET)
"""Everything an outbox entry can be owed to."""
PublishChoice = Literal["both", "sns", "eventbridge"]
"""A value of `PublishTargets`."""
PUBLISH_CHOICES: tuple[PublishChoice, ...] = get_args(PublishChoice)


def publish_targets(choice: str, *, webhooks: bool = False) -> tuple[Target, ...]:
    """Where events go for a `PublishTargets` value, plus the webhooks' fan-out queue when one is set
    (`webhooks`); ValueError for a value that is no choice."""
    if choice not in PUBLISH_CHOICES:
        raise ValueError(f"must be {', '.join(PUBLISH_CHOICES[:-1])} or {PUBLISH_CHOICES[-1]}, not {choice!r}")
    published = tuple(target for target in PUBLISH_TARGETS if choice in ("both", target))
    return (*published, "webhooks") if webhooks else published


POSTED = "posted"
FAILED = "failed"
FINAL_STATUSES = frozenset({POSTED, FAILED})
"""An account in one of these has an outcome (Genviral's other statuses are open-ended and kept as strings)."""

POST_ID_HINT = "post_id must be a UUID such as 11111111-1111-1111-1111-111111111111"


def canonical_uuid(value: str, *, hint: str) -> str:
    """A UUID in its hyphenated form (any case), answered in lower case; ValueError(hint) for anything else (the
    other forms `uuid.UUID` takes, braces, a URN, no hyphens, included): every id the relay takes is read so."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValueError(hint) from None
    if str(parsed) != value.lower():
        raise ValueError(hint)
    return str(parsed)


PostId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=64),
    AfterValidator(partial(canonical_uuid, hint=POST_ID_HINT)),
]
"""A Genviral post id as every entry point accepts it: a hyphenated UUID, answered in lower case."""


class AccountSnapshot(BaseModel):
    """The last-seen posting state of one target account, as Genviral gave it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str
    published_at: str | None = None
    error_message: str | None = None
    last_attempted_at: str | None = None
    published_url: str | None = None
    outcome_event_id: str | None = Field(
        default=None,
        description="The event that reported the account's current final status (None: not final, or reported "
        "before 0.4): a post's completion is the set of these.",
    )
    retry_seen_at: str | None = Field(
        default=None,
        description="When the relay saw the account sent back for another attempt (final, then not), while it is "
        "not final again: a delay of the new attempt counts from here.",
    )
    sequence: int | None = Field(
        default=None,
        description="The last `sequence` given to a document about this account (0: none yet; None: stored before "
        "0.5, counted from `occurrences`): committed with the documents, so a detection run again numbers them alike.",
    )
    url_awaited_since: str | None = Field(
        default=None,
        description="When the relay reported the account `posted` without a `published_url`, while it still has "
        "none: the post is checked for it, backing off, for 24 h from here (`rules/late_urls.py`).",
    )


class OutboxEntry(BaseModel):
    """An outbox entry: this event still has to reach this target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    target: OutboxTarget

    def encode(self) -> str:
        return f"{self.target}:{self.event_id}"

    @classmethod
    def decode(cls, value: str) -> OutboxEntry:
        target, _, event_id = value.partition(":")
        return cls(event_id=event_id, target=target)  # type: ignore[arg-type]  # validated by pydantic


class WatchRecord(BaseModel):
    """The stored state of one watched post: last-seen states, outbox and schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    post_id: str
    version: int = Field(ge=0, description="Optimistic lock; 0 means never stored.")
    workspace: str | None = Field(
        default=None,
        description="The workspace whose key checks the post (`models/workspaces.py`); None: `default`.",
    )
    watching: bool = True
    ended_reason: str | None = None
    post_status: str | None = None
    scheduled_at: str | None = None
    created_at: str | None = Field(
        default=None,
        description="When Genviral created the post, as it gave it: the poller groups hot posts created "
        "together so that one list call refreshes them (None: stored by an earlier release, until its next write).",
    )
    accounts: dict[str, AccountSnapshot] = Field(default_factory=dict)
    occurrences: dict[str, int] = Field(
        default_factory=dict,
        description="Outcome key -> how many times that outcome has been seen; numbers the event ids of "
        "repeated outcomes (stored as `emitted`, its 0.3.0 name).",
    )
    outbox: frozenset[OutboxEntry] = frozenset()
    next_check_at: datetime | None = Field(default=None, description="None: not in the due index.")
    settled_next_check_at: datetime | None = Field(
        default=None, description="The schedule to restore once the outbox is empty."
    )
    awaiting_retry: bool = Field(
        default=False,
        description="A failed account inside its retry window: the retry sweep covers the post until the window ends.",
    )
    claimed_at: datetime | None = Field(
        default=None,
        description="When a late check (its message older than half a tick) claimed the post: a check "
        "message queued before this moment is a duplicate and asks Genviral nothing.",
    )
    registered_at: datetime
    changed_at: datetime | None = Field(
        default=None,
        description="When the relay last saw the watched post change (an account state, its end); "
        "the overdue backoff counts from here.",
    )

    @property
    def pending_deliveries(self) -> int:
        """The outbox entries owed to publish targets: the feed's own entry is internal, never shown as a delivery."""
        return sum(entry.target != FEED_TARGET for entry in self.outbox)

    def changed_at_after(self, *, state_changed: bool, now: datetime) -> datetime | None:
        """`changed_at` once a check at `now` is recorded. A first sighting is not a change: a post
        registered long after its time is as overdue as it was."""
        return now if state_changed and self.observed else self.changed_at

    @property
    def observed(self) -> bool:
        """Whether a check has ever recorded the post's state."""
        return self.post_status is not None


class CreatedWindow(BaseModel):
    """Posts created in [since, until] (both inclusive, as Genviral's `GET /posts` filters them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: datetime
    until: datetime


class DirectoryEntry(BaseModel):
    """What `GET /accounts` says of one account (the fields events carry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str | None = None
    username: str | None = None
    display_name: str | None = None
    type: str | None = None


class AccountDirectory(BaseModel):
    """The accounts Genviral listed at the last refresh, kept so events name them without a call each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: dict[str, DirectoryEntry] = Field(default_factory=dict, description="By account id: active ones only.")
    refreshed_at: datetime | None = Field(default=None, description="When `accounts` was listed; None: never.")
    last_attempt_at: datetime | None = Field(
        default=None, description="When a listing was last asked for, answered or not (bounds the refreshes)."
    )


class DiscoverState(BaseModel):
    """How far discover mode has listed the workspace's posts, kept between ticks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=0, description="Optimistic lock; 0 means never stored.")
    baseline_before: datetime = Field(
        description="Posts created before this are recorded silently when first seen (fixed on the first run)."
    )
    listed_until: datetime | None = Field(
        default=None, description="Every post created up to this moment has been listed; None before the first walk."
    )
    walk_started_at: datetime | None = Field(
        default=None, description="When the walk in progress started; once it completes, `listed_until` moves here."
    )
    pending: tuple[CreatedWindow, ...] = Field(
        default=(), description="Windows of the walk in progress still to list, the next one last."
    )
    history_indexed: bool = Field(
        default=False,
        description="A walk over the workspace's whole history completed since 0.4, so every watched post has its "
        "creation moment in the table's created index (the poller then sizes refresh windows by that count alone).",
    )
    walking_history: bool = Field(
        default=False, description="The walk in progress lists the whole history (it sets `history_indexed`)."
    )

    # shim: discover-state-names (docs/compatibility.md)
    @model_validator(mode="before")
    @classmethod
    def _read_0_3_names(cls, stored: Any) -> Any:
        """States stored by 0.3.0 name the two moments `walked_until` and `walk_until`."""
        if isinstance(stored, dict):
            renamed = {"walked_until": "listed_until", "walk_until": "walk_started_at"}
            return {renamed.get(key, key): value for key, value in stored.items()}
        return stored


@dataclass(frozen=True)
class DueWatch:
    """A watch the due index lists: its post, and the moment its next check was due."""

    post_id: str
    next_check_at: datetime
