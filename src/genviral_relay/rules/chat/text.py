"""Someone else's text (captions, errors, handles) made inert and cut to fit, for each chat service.

Lengths are counted in UTF-16 code units (`units`): never fewer than the code points a service may count instead, so
a limit held here holds there too. A cut falls between user-perceived characters (a base and the marks, joiners,
variation selectors and skin tones that extend it; a flag's two regional indicators), so no emoji loses its
modifier and no accent is stripped from its letter; only a cluster longer than the whole room (a letter buried
under a thousand combining marks) is cut inside, between code points, so the text is not lost to a single glyph.
Python strings hold code points, so a cut is never inside a surrogate pair; lone surrogates (which JSON lets a
caption carry) become U+FFFD, as no UTF-8 body could hold them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from genviral_relay.clock import parse_ts

ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"
ZWJ = "\N{ZERO WIDTH JOINER}"
ZWSP = "\N{ZERO WIDTH SPACE}"
LINK_LIMIT = 2000
"""The longest URL made a link (Discord's embed URL limit); a longer one is shown as text."""

_DROPPED = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
"""Bidirectional overrides and marks: they can make a caption display as something it is not."""
_SURROGATE = re.compile("[\ud800-\udfff]")

Escapes = Mapping[int, str]
"""A `str.translate` table: character by character, so escaping never changes where a cluster ends."""

SLACK_ESCAPES: Escapes = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
"""Slack's three control characters (its formatting reference): with them escaped no `<!channel>`, `<!here>`,
`<@U…>` or `<https://evil|ok>` forms."""
DISCORD_ESCAPES: Escapes = str.maketrans({c: "\\" + c for c in "\\*_~`|<>[]()#-+.:@!"})
"""Backslash before every character Discord's Markdown gives a meaning: emphasis, code, spoilers, quotes,
headings, lists, masked links, `<@…>`/`<t:…>` tags, `@everyone`/`@here`, `:emoji:`, and `https:` (so a bare URL is
not linked). Discord shows an escaped character without its backslash."""
TEAMS_ESCAPES: Escapes = str.maketrans({"{": "{" + ZWSP})
"""Teams text goes in Adaptive Card TextRuns, which read no Markdown and form no mention; what is left is
`{{DATE(…)}}` (the card's date functions), kept from forming by a zero-width space."""
NO_ESCAPES: Escapes = {}


def units(text: str) -> int:
    """`text`'s length as the services count it, at most: UTF-16 code units."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def clean(text: str) -> str:
    """`text` with what no chat message should carry taken out: control characters (a tab is a space, a line break
    stays), bidirectional overrides, lone surrogates (U+FFFD)."""
    text = _SURROGATE.sub("\N{REPLACEMENT CHARACTER}", text.replace("\r\n", "\n").replace("\t", " "))
    text = _DROPPED.sub("", text)
    return "".join(char for char in text if char == "\n" or unicodedata.category(char) != "Cc")


def _extends(char: str, previous: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char == ZWJ
        or previous == ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0xE0020 <= code <= 0xE007F  # tag sequences (subdivision flags)
        or 0xE0100 <= code <= 0xE01EF
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def clusters(text: str) -> Iterator[str]:
    """`text` as user-perceived characters, near enough for cutting (no full UAX #29: no I/O rule needs it)."""
    current = ""
    for char in text:
        pair = _regional(char) and len(current) == 1 and _regional(current)
        if current and (pair or _extends(char, current[-1])):
            current += char
            continue
        if current:
            yield current
        current = char
    if current:
        yield current


def cut(text: str, limit: int, escapes: Escapes = NO_ESCAPES) -> str:
    """`text` cleaned and escaped, in at most `limit` units: whole when it fits, else its start and an ellipsis."""
    pieces = [piece.translate(escapes) for piece in clusters(clean(text))]
    if sum(units(piece) for piece in pieces) <= limit:
        return "".join(pieces)
    room = limit - units(ELLIPSIS)
    kept: list[str] = []
    used = 0
    for piece in pieces:
        size = units(piece)
        if used + size <= room:
            kept.append(piece)
            used += size
            continue
        if size > room:  # a cluster that could never fit (a letter under a thousand marks): cut inside it
            for char in clusters_split(piece, escapes):
                if used + units(char) > room:
                    break
                kept.append(char)
                used += units(char)
        break
    return "".join(kept) + ELLIPSIS


def clusters_split(escaped: str, escapes: Escapes) -> Iterator[str]:
    """An escaped cluster as pieces that each keep an escape whole: a backslash or entity is never cut off."""
    if not escapes:
        yield from escaped
        return
    entities = sorted({value for value in escapes.values() if len(value) > 1}, key=len, reverse=True)
    at = 0
    while at < len(escaped):
        match = next((entity for entity in entities if escaped.startswith(entity, at)), escaped[at])
        yield match
        at += len(match)


def link(url: str | None) -> str | None:
    """`url` when it may be a link in a message: http(s) to a host, printable ASCII with no whitespace and none of the
    characters that close a link's markup (`<>|"\\` and backticks), at most LINK_LIMIT long; else None (then it is
    shown as text, never linked)."""
    if url is None or len(url) > LINK_LIMIT or not url.isascii() or re.search(r"[\s<>|\"\\`{}^]", url):
        return None
    if not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def utc_time(value: str | None) -> str | None:
    """A moment as people read it in a channel: `2025-02-01 15:00 UTC`; None when absent or unreadable."""
    moment = parse_ts(value)
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
