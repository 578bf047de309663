"""A message as a Teams Workflows webhook ("post to a channel when a webhook request is received") takes it: a
`message` with one Adaptive Card attachment, schema version CARD_VERSION (1.5: the newest Teams renders).

Every text is a TextRun of a RichTextBlock: TextRuns read no Markdown (unlike TextBlock and FactSet) and form no
mention (Teams needs an `msteams.entities` entry for that, and the card has none), so someone else's text can neither
format nor notify; what could still form is escaped (`text.TEAMS_ESCAPES`). Published posts are Action.OpenUrl
buttons to URLs `text.link` vetted. Teams takes a card of at most 28 KB: the body is measured as it is sent
(`encoded`), and the roomiest budget that fits is used.
"""

from __future__ import annotations

from typing import Any

from genviral_relay.rules.chat.message import BUDGETS, LOOKS, AccountLine, Budget, ChatMessage, encoded
from genviral_relay.rules.chat.text import TEAMS_ESCAPES, cut, link

CARD_VERSION = "1.5"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SIZE_LIMIT = 28 * 1024
"""Bytes of the whole message body."""

Element = dict[str, Any]


def _escaped(text: str, limit: int) -> str:
    return cut(text, limit, TEAMS_ESCAPES)


def _line(*runs: Element, spacing: str | None = None) -> Element:
    block: Element = {"type": "RichTextBlock", "inlines": list(runs)}
    if spacing:
        block["spacing"] = spacing
    return block


def _run(text: str, **style: Any) -> Element:
    return {"type": "TextRun", "text": text, **style}


def _account(line: AccountLine, budget: Budget) -> list[Element]:
    look = LOOKS[line.tone]
    head = f"{look.emoji} {_escaped(line.platform, 100)} {_escaped(line.handle, 100)}"
    elements = [_line(_run(head, weight="Bolder"), _run(": " + _escaped(line.status, 60)), spacing="Medium")]
    if line.error_category or line.error_message:
        error = _escaped(line.error_category or "unknown", 40)
        error += f": {_escaped(line.error_message, budget.error)}" if line.error_message else ""
        elements.append(_line(_run(error, color="Attention")))
    url = link(line.url)
    if url is not None:
        title = f"Open on {_escaped(line.platform, 40)}"
        elements.append({"type": "ActionSet", "actions": [{"type": "Action.OpenUrl", "title": title, "url": url}]})
    elif line.url:  # not a web address: shown, never followed
        elements.append(_line(_run(f"Published at: {_escaped(line.url, 500)}", isSubtle=True)))
    return elements


def _card(message: ChatMessage, budget: Budget) -> dict[str, Any]:
    look = message.look
    headline = _run(f"{look.emoji} {_escaped(message.headline, 300)}", size="Large", weight="Bolder",
                    color=look.teams_colour)  # fmt: skip
    body: list[Element] = [_line(headline), _line(_run(_escaped(message.summary, 1000)), spacing="Small")]
    shown = message.accounts[: budget.accounts]
    for account in shown:
        body.extend(_account(account, budget))
    if len(message.accounts) > len(shown):
        body.append(_line(_run(f"and {len(message.accounts) - len(shown)} more", isSubtle=True)))
    if message.caption and budget.caption:
        body.append(_line(_run("Caption", weight="Bolder"), spacing="Medium"))
        body.append(_line(_run(_escaped(message.caption, budget.caption), italic=True)))
    body.append(_line(_run(_escaped(message.footer, 300), size="Small", isSubtle=True), spacing="Medium"))
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
    }  # no `msteams.width`: Teams reads it, but the schema the card declares has no such property


def teams_message(message: ChatMessage) -> dict[str, Any]:
    """The webhook's JSON body for `message`."""
    for budget in BUDGETS:
        payload = {
            "type": "message",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": _card(message, budget)}],
        }
        if len(encoded(payload)) <= SIZE_LIMIT:
            break
    return payload
