"""Opaque cursors: a position in one listing (the feed, one endpoint's attempt log), written so that a cursor from
another listing, another endpoint or anywhere else is refused with a clear message, never read as a position."""

from __future__ import annotations

import base64
import binascii
import json
import re

CURSOR_HINT = "pass back the `next` of the previous page unchanged, or leave `after` out to start at the beginning"
MAX_CURSOR_CHARS = 512


class CursorError(ValueError):
    """A cursor that is not one this listing wrote (answered 400)."""


def encode_cursor(scope: str, position: str) -> str:
    """`position` in the listing `scope` (`feed`, `attempts:wh_...`), as a URL-safe token."""
    raw = json.dumps({"s": scope, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(scope: str, cursor: str, position: re.Pattern[str]) -> str:
    """The position `cursor` holds, when it was written for `scope` and its position has the listing's shape."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise CursorError(f"the cursor is over {MAX_CURSOR_CHARS} characters; {CURSOR_HINT}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        raise CursorError(f"the cursor is malformed; {CURSOR_HINT}") from None
    if not isinstance(values, dict) or not isinstance(values.get("p"), str) or not isinstance(values.get("s"), str):
        raise CursorError(f"the cursor is malformed; {CURSOR_HINT}")
    if values["s"] != scope:
        raise CursorError(f"the cursor belongs to another listing; {CURSOR_HINT}")
    if not position.fullmatch(values["p"]):
        raise CursorError(f"the cursor is malformed; {CURSOR_HINT}")
    return str(values["p"])
