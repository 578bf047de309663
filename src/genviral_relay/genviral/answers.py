"""Reading Genviral's answers: the envelope and the post list, with what does not parse said briefly.

Upstream text is never trusted to be small or sane: the error text it echoes is cut (`errors.echoed`), a
validation problem names where and what but never the value, and JSON nested beyond the parser's depth is an
answer that does not parse, not a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from genviral_relay.checking.ports import PostPage
from genviral_relay.errors import GenviralContractError, echoed
from genviral_relay.models.upstream import Envelope, Post
from genviral_relay.observability import logger


@dataclass(frozen=True)
class Parsed:
    """An answer's body as read: its envelope (None: not one), and whether JSON nesting was too deep to read."""

    envelope: Envelope | None
    too_deep: bool = False

    @property
    def message(self) -> str | None:
        """Genviral's text, cut to what the relay repeats."""
        return echoed(self.envelope.message) if self.envelope and self.envelope.message else None

    @property
    def error_code(self) -> str | None:
        return echoed(self.envelope.error_code) if self.envelope and self.envelope.error_code else None


def parse_body(body: bytes) -> Parsed:
    try:
        return Parsed(Envelope.model_validate(json.loads(body)))
    except RecursionError:  # the parser recurses per nesting level: a deep document is unreadable, not a crash
        return Parsed(None, too_deep=True)
    except (ValueError, ValidationError):
        return Parsed(None)


def brief(error: ValidationError) -> str:
    """Where and what, without the offending values (they are upstream data, possibly large)."""
    problems = [f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}" for issue in error.errors()[:5]]
    more = error.error_count() - len(problems)
    return echoed("; ".join(problems) + (f" (and {more} more)" if more > 0 else ""))


def post_of(data: Any, what: str) -> Post:
    """`data` as a post, or GenviralContractError naming `what`. A post is also one the relay can write again: an
    unknown media object passes into events, and one nested too deep to serialize would fail every write."""
    try:
        post = Post.model_validate(data)
        post.model_dump_json()
    except ValidationError as error:
        raise GenviralContractError(f"{what} does not match the documented shape: {brief(error)}") from None
    except (ValueError, RecursionError):
        raise GenviralContractError(f"{what} is nested too deeply to write again") from None
    return post


def page(items: list[Any]) -> PostPage:
    """A list answer as posts; an item that does not match the documented shape is kept by its id."""
    posts: list[Post] = []
    unreadable: list[str] = []
    for item in items:
        try:
            posts.append(post_of(item, "a listed post"))
        except GenviralContractError as error:
            post_id = item.get("id") if isinstance(item, dict) else None
            logger.warning(
                "A listed post does not match the documented shape",
                extra={"post_id": echoed(post_id) if isinstance(post_id, str) else None, "problem": str(error)},
            )
            if isinstance(post_id, str) and post_id:
                unreadable.append(post_id)
    return PostPage(posts=tuple(posts), unreadable_ids=tuple(unreadable), size=len(items))
