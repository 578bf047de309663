"""docs/chat.md's examples: each sample event (events/outbound) as each chat service shows it, written as text from
the real renderers (`genviral_relay.rules.chat`).

`PYTHONPATH=src:. .venv/bin/python -m tools.chat_examples` rewrites the part of docs/chat.md between the markers; a
test fails when it is stale.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from genviral_relay.models.chat import CHAT_FORMATS, ChatFormat
from genviral_relay.models.webhook_documents import SUBSCRIBABLE_TYPES, parse_webhook_document
from genviral_relay.rules.chat.render import chat_payload

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "chat.md"
START, END = "<!-- chat-examples:start -->", "<!-- chat-examples:end -->"
REGENERATE = "PYTHONPATH=src:. .venv/bin/python -m tools.chat_examples"
SAMPLES = ROOT / "events" / "outbound"
SERVICE_NAMES = {"slack": "Slack", "discord": "Discord", "teams": "Microsoft Teams"}


def _sample(event_type: str) -> Any:
    name = "eventbridge-" + event_type.replace(".", "-") + ".json"
    return parse_webhook_document(json.loads((SAMPLES / name).read_text())["detail"])


def _slack(payload: dict[str, Any]) -> list[str]:
    lines = []
    for block in payload["blocks"]:
        texts = [block["text"]["text"]] if "text" in block else [element["text"] for element in block["elements"]]
        text = " ".join(texts)
        if "accessory" in block:
            text += f"   [{block['accessory']['text']['text']}]"
        lines.append(f"**{text}**" if block["type"] == "header" else text)
    return [line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for line in lines]


def _unescape_discord(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\(<[^>]+>\)", r"[\1]", text)  # our own links: the label, as a person sees it
    return re.sub(r"\\(.)", r"\1", text)


def _discord(payload: dict[str, Any]) -> list[str]:
    embed = payload["embeds"][0]
    lines = [f"▌ colour #{embed['color']:06X}", f"**{_unescape_discord(embed['title'])}**"]
    lines += _unescape_discord(embed["description"]).replace("**", "").split("\n")
    for field in embed["fields"]:
        lines.append(_unescape_discord(field["name"]))
        lines.extend("    " + line for line in _unescape_discord(field["value"]).split("\n"))
    lines.append(embed["footer"]["text"])
    return lines


def _teams(payload: dict[str, Any]) -> list[str]:
    lines = []
    for element in payload["attachments"][0]["content"]["body"]:
        if element["type"] == "ActionSet":
            lines.append("   ".join(f"[{action['title']}]" for action in element["actions"]))
            continue
        text = "".join(run["text"] for run in element["inlines"]).replace("\N{ZERO WIDTH SPACE}", "")
        bold = any(run.get("weight") == "Bolder" and run.get("size") == "Large" for run in element["inlines"])
        lines.append(f"**{text}**" if bold else text)
    return lines


def as_read(chat_format: ChatFormat, payload: dict[str, Any]) -> list[str]:
    """A chat payload as a person reads it in the channel, line by line (the docs' examples, `make demo`)."""
    render = {"slack": _slack, "discord": _discord, "teams": _teams}
    return render[chat_format](payload)


def examples() -> str:
    """The examples' Markdown: per type an endpoint may subscribe to (the notices too), what each service shows."""
    parts = [f"<!-- Written by `{REGENERATE}` from the sample events: do not edit by hand. -->"]
    for event_type in SUBSCRIBABLE_TYPES:
        parts.append(f"\n#### `{event_type}`\n")
        for chat_format in CHAT_FORMATS:
            lines = as_read(chat_format, chat_payload(chat_format, _sample(event_type)))
            parts.append(f"{SERVICE_NAMES[chat_format]}:\n\n```text\n" + "\n".join(lines) + "\n```\n")
    return "\n".join(parts)


def rewritten(document: str) -> str:
    """`document` with its examples as the renderers write them now."""
    before, _, rest = document.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{examples()}\n{END}{after}"


def main() -> int:
    DOC_PATH.write_text(rewritten(DOC_PATH.read_text()))
    print(f"wrote {DOC_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
