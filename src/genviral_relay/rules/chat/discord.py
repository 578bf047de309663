"""A message as a Discord channel webhook takes it: one embed, coloured by outcome, and `allowed_mentions` that let
nothing ping.

Someone else's text is backslash-escaped wherever Discord reads Markdown (title, description, field names and
values), so it can neither format, link (`[ok](https://evil)`, a bare `https:`), nor show a mention (`<@…>`,
`@everyone`); `allowed_mentions: {"parse": []}` stops a ping even if one formed. A single account's published post
is the title's link; a completion's are `[Open the post](<url>)` links the renderer writes itself, to URLs
`text.link` vetted. Limits (Discord's embed limits): ≤ 10 embeds, title ≤ 256, description ≤ 4,096, ≤ 25 fields,
a field's name ≤ 256 and value ≤ 1,024, footer ≤ 2,048, all of them together ≤ 6,000.
"""

from __future__ import annotations

from typing import Any

from genviral_relay.rules.chat.message import BUDGETS, LOOKS, AccountLine, Budget, ChatMessage
from genviral_relay.rules.chat.text import DISCORD_ESCAPES, NO_ESCAPES, cut, link, units

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
MAX_FIELDS = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
FIELD_LINK_LIMIT = 500
"""The longest URL linked in a field (with the error beside it, the value stays within FIELD_VALUE_LIMIT)."""

Embed = dict[str, Any]


def _escaped(text: str, limit: int) -> str:
    return cut(text, limit, DISCORD_ESCAPES)


def _field(line: AccountLine, budget: Budget) -> dict[str, Any]:
    name = f"{LOOKS[line.tone].emoji} {_escaped(line.platform, 100)} {_escaped(line.handle, 100)}"
    value = _escaped(line.status, 60)
    if line.error_category or line.error_message:
        error = f"{line.error_category or 'unknown'}: {line.error_message}" if line.error_message else ""
        value += "\n" + _escaped(error or line.error_category or "unknown", min(budget.error, 380) + 40)
    url = link(line.url)
    if url is not None and len(url) <= FIELD_LINK_LIMIT:
        value += f"\n[Open the post](<{url}>)"
    elif line.url:  # not a web address (or too long to link): shown, never followed
        value += "\n" + _escaped(f"Published at: {line.url}", 500)
    return {"name": name, "value": value, "inline": False}


def _embed(message: ChatMessage, budget: Budget) -> Embed:
    look = message.look
    description = _escaped(message.summary, 600)
    if message.caption and budget.caption:
        description += f"\n\n**Caption**\n{_escaped(message.caption, budget.caption)}"
    shown = message.accounts[: min(budget.accounts, MAX_FIELDS - 1)]
    fields = [_field(line, budget) for line in shown]
    if len(message.accounts) > len(shown):
        fields.append({"name": "\N{HORIZONTAL ELLIPSIS}", "value": f"and {len(message.accounts) - len(shown)} more"})
    embed: Embed = {
        "title": f"{look.emoji} {_escaped(message.headline, TITLE_LIMIT - units(look.emoji) - 1)}",
        "description": description,
        "color": look.colour,
        "fields": fields,
        "footer": {"text": cut(message.footer, 300, NO_ESCAPES)},  # footers read no Markdown: a backslash would show
    }
    single = link(message.accounts[0].url) if len(message.accounts) == 1 else None
    if single is not None:
        embed["url"] = single
    return embed


def embed_characters(embed: Embed) -> int:
    """What Discord counts toward EMBED_TOTAL_LIMIT: title, description, field names and values, footer, author."""
    texts = [embed.get("title", ""), embed.get("description", ""), embed.get("footer", {}).get("text", "")]
    texts.append(embed.get("author", {}).get("name", ""))
    texts.extend(text for field in embed.get("fields", ()) for text in (field["name"], field["value"]))
    return sum(units(text) for text in texts)


def discord_message(message: ChatMessage) -> dict[str, Any]:
    """The webhook's JSON body for `message`: the roomiest budget whose embed stays within EMBED_TOTAL_LIMIT."""
    for budget in BUDGETS:
        embed = _embed(message, budget)
        if embed_characters(embed) <= EMBED_TOTAL_LIMIT:
            break
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}
