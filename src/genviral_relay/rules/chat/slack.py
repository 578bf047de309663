"""A message as a Slack incoming webhook takes it: Block Kit blocks and a `text` fallback (notifications, and clients
that show no blocks).

Someone else's text only ever goes in `plain_text` objects (no mrkdwn: no `*bold*`, no `<url|label>`, no mention
forms), escaped for Slack all the same (`& < >`, which Slack decodes back in every text field). The published post is
a button, never a link in text. Limits (Block Kit reference): ≤ 50 blocks, a header ≤ 150 characters, a section's
text ≤ 3,000, a button's label ≤ 75 and its URL ≤ 3,000; each piece is cut to fit here, so any input holds them.
"""

from __future__ import annotations

from typing import Any

from genviral_relay.rules.chat.message import BUDGETS, LOOKS, AccountLine, Budget, ChatMessage
from genviral_relay.rules.chat.text import SLACK_ESCAPES, cut, link, units

MAX_BLOCKS = 50
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
BUTTON_URL_LIMIT = 3000
TEXT_LIMIT = 11_000
"""All the blocks' text together: Slack refuses a message whose blocks hold much more than 12,000 characters
(`msg_blocks_too_long`; the figure is documented for markdown blocks only), a refusal the relay could only park."""
FALLBACK_LIMIT = 500
"""The `text` fallback: the headline, as a notification shows it (Slack's own cap, 40,000, is far)."""

Block = dict[str, Any]


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _escaped(text: str, limit: int) -> str:
    return cut(text, limit, SLACK_ESCAPES)


def _account(line: AccountLine, budget: Budget) -> Block:
    text = f"{LOOKS[line.tone].emoji} {_escaped(line.platform, 100)} {_escaped(line.handle, 100)}: "
    text += _escaped(line.status, 60)
    if line.error_category or line.error_message:
        text += f"\n{_escaped(line.error_category or 'unknown', 40)}"
        text += f": {_escaped(line.error_message, min(budget.error, 2000))}" if line.error_message else ""
    block: Block = {"type": "section", "text": _plain(text)}
    url = link(line.url)
    if url is not None and len(url) <= BUTTON_URL_LIMIT:
        block["accessory"] = {"type": "button", "text": _plain("Open the post"), "url": url}
    elif line.url:  # not a web address: shown, never followed
        block["text"] = _plain(text + f"\nPublished at: {_escaped(line.url, 500)}")
    return block


def _blocks(message: ChatMessage, budget: Budget) -> list[Block]:
    emoji = message.look.emoji
    blocks: list[Block] = [
        {"type": "header", "text": _plain(f"{emoji} {_escaped(message.headline, HEADER_LIMIT - units(emoji) - 1)}")},
        {"type": "section", "text": _plain(_escaped(message.summary, 1000))},
    ]
    shown = message.accounts[: budget.accounts]
    blocks.extend(_account(line, budget) for line in shown)
    if len(message.accounts) > len(shown):
        blocks.append({"type": "context", "elements": [_plain(f"and {len(message.accounts) - len(shown)} more")]})
    if message.caption and budget.caption:
        caption = _escaped(message.caption, min(budget.caption, SECTION_LIMIT - 9))
        blocks.append({"type": "section", "text": _plain(f"Caption: {caption}")})
    blocks.append({"type": "context", "elements": [_plain(_escaped(message.footer, 300))]})
    return blocks


def slack_message(message: ChatMessage) -> dict[str, Any]:
    """The webhook's JSON body for `message`."""
    fallback = f"{message.look.emoji} {_escaped(message.headline, FALLBACK_LIMIT - 2)}"
    # The roomiest budget whose blocks' text fits TEXT_LIMIT (each text is cut to its own limit already; 40 account
    # lines and five more blocks are within MAX_BLOCKS); the last budget always fits.
    for budget in BUDGETS:
        blocks = _blocks(message, budget)
        if block_text_units(blocks) <= TEXT_LIMIT:
            break
    # The fallback is not mrkdwn (a handle of `*x*` stays as it is), and nothing unfurls: a link is a button.
    return {"text": fallback, "mrkdwn": False, "unfurl_links": False, "unfurl_media": False, "blocks": blocks}


def block_text_units(blocks: list[Block]) -> int:
    """The characters of every text object in `blocks` (as Slack counts them: UTF-16 units)."""
    total = 0
    for block in blocks:
        texts = [block.get("text"), *block.get("elements", ()), (block.get("accessory") or {}).get("text")]
        total += sum(units(text["text"]) for text in texts if isinstance(text, dict) and "text" in text)
    return total
