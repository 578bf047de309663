"""The Genviral Partner API answers the relay reads: `GET /posts/{id}` (and the list), `GET /accounts`.

Tolerant by design: unknown fields are ignored and unknown status strings are kept as
strings, because Genviral mirrors open-ended provider statuses (`deleted`, `void`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

PAGE_LIMIT = 100
"""The most posts one `GET /posts` answers (Genviral clamps `limit` to 1..100)."""


class _Upstream(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class VideoMedia(_Upstream):
    type: Literal["video"]
    url: str


class SlideshowMedia(_Upstream):
    type: Literal["slideshow"]
    urls: list[str]


class OtherMedia(_Upstream):
    """A media type this version does not know; kept so the post still parses."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str


def _media_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("video", "slideshow") else "other"


# A known type must have its documented shape; an unknown one is kept as it came.
Media = Annotated[
    Annotated[VideoMedia, Tag("video")]
    | Annotated[SlideshowMedia, Tag("slideshow")]
    | Annotated[OtherMedia, Tag("other")],
    Discriminator(_media_kind),
]


class PinterestSettings(_Upstream):
    board_id: str | None = None
    title: str | None = None
    link: str | None = None
    tags: list[str] | None = None


class AccountState(_Upstream):
    account_id: str = Field(min_length=1)
    status: str = Field(min_length=1)
    published_at: str | None = None
    error_message: str | None = None
    last_attempted_at: str | None = None
    published_url: str | None = None


class Accounts(_Upstream):
    total: int = Field(ge=0)
    states: list[AccountState]

    @model_validator(mode="after")
    def _account_ids_are_unique(self) -> Accounts:
        ids = [state.account_id for state in self.states]
        if len(ids) != len(set(ids)):
            raise ValueError("accounts.states lists the same account_id more than once")
        return self


class Post(_Upstream):
    id: str = Field(min_length=1)
    caption: str | None = None
    status: str = Field(min_length=1)
    scheduled_at: str | None = None
    created_at: str | None = None
    media: Media | None = None
    music_url: str | None = None
    tiktok: dict[str, Any] | None = None
    pinterest: PinterestSettings | None = None
    external_id: str | None = None
    """The caller's idempotency key given at creation; not documented as returned, read when it is."""
    accounts: Accounts


class Account(_Upstream):
    """One connected account of `GET /accounts` (only active ones are listed); the fields the relay
    does not use (`capabilities`, ...) are ignored, a missing descriptive field is null."""

    id: str = Field(min_length=1)
    platform: str | None = None
    type: str | None = None
    username: str | None = None
    display_name: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class AccountListing:
    """One answer of `GET /accounts`: what account health needs to tell a vanished account from an incomplete
    answer (an unreadable item, another key scope)."""

    accounts: tuple[Account, ...]
    unreadable_ids: tuple[str, ...] = ()
    """Items that do not match the documented shape but carry an id: listed, status unknown."""
    unidentified: int = 0
    """Items without a readable id: any account missing from the listing may be one of them."""
    scope: str | None = None
    workspace_id: str | None = None


class Envelope(BaseModel):
    """Every Genviral answer: `data` is present only when `ok` is true."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    ok: bool
    code: int | None = None
    message: str | None = None
    error_code: str | None = None
    data: Any = None
