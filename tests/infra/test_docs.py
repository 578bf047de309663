"""The docs show what the project really does: their samples are the committed ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from genviral_relay.models.api import WatchView

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def docs_text() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def test_the_docs_show_each_event_exactly_as_the_samples() -> None:
    event_blocks = re.findall(r"```json\n(\{\n  \"schema_version\".*?)\n```", docs_text(), re.S)
    documents = [json.loads(block) for block in event_blocks]
    samples = [
        json.loads((ROOT / "events" / "outbound" / f"eventbridge-post-account-{status}.json").read_text())["detail"]
        for status in ("posted", "failed")
    ]
    assert documents == samples


def test_the_docs_watch_sample_is_what_the_api_answers() -> None:
    (block,) = re.findall(r"```json\n(\{\n  \"post_id\".*?)\n```", docs_text(), re.S)
    assert WatchView.model_validate_json(block).accounts  # every field the API answers, no other
