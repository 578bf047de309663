"""Why posting to an account failed, in a form a consumer can route on: one table of patterns over Genviral's
free-text `error_message`.

Genviral passes on each platform's own wording (and sometimes a code such as
`spam_risk_too_many_pending_share`), so the table matches words, not exact messages: case is
ignored, `_` and `-` count as spaces, and the first row that matches decides. The order matters
where a message could match two rows: a rate limit is checked before the content rules (that
code says "spam" but means too many pending posts), and media problems before outages.
Anything unmatched, and a missing message, is `unknown`; the raw `error_message` always travels
beside the category.
"""

from __future__ import annotations

import re

from genviral_relay.models.events import ErrorCategory

_PATTERNS: tuple[tuple[ErrorCategory, str], ...] = (
    (
        "account_disconnected",
        r"\btoken\b.*\b(?:expired|revoked|invalid)\b|\b(?:expired|revoked|invalid)\b.*\btoken\b"
        r"|\breconnect|\bre ?authori[sz]|\bpermission",
    ),
    ("rate_limited", r"\brate ?limit|\btoo many\b|\bquota\b"),
    (
        "media_rejected",
        r"\baspect ratio\b|\bduration\b|\bresolution\b|\bfile size\b|\bformat\b|\bcodec\b|\btoo short\b|\btoo long\b",
    ),
    ("content_rejected", r"\bpolic(?:y|ies)\b|\bguidelines?\b|\bspam\b|\bduplicate content\b|\bcopyright"),
    (
        "platform_unavailable",
        r"\btime ?out\b|\btimed out\b|\bunavailable\b|\binternal (?:server )?error\b|\bserver error\b"
        r"|\bbad gateway\b|\b(?:http|status|error|code)[ :]*5\d\d\b",
    ),
)
RULES: tuple[tuple[ErrorCategory, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern, re.IGNORECASE)) for category, pattern in _PATTERNS
)
"""The table, in order: the first match decides."""


def failure_category(error_message: str | None) -> ErrorCategory:
    """The category of a failure's message: the first rule that matches, else `unknown`."""
    if error_message:
        words = re.sub(r"[_\-]+", " ", error_message)
        for category, pattern in RULES:
            if pattern.search(words):
                return category
    return "unknown"
