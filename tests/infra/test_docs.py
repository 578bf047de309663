"""The README shows what the project really does: its samples are the committed ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from genviral_relay.models.api import WatchView

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_shows_each_event_exactly_as_the_samples() -> None:
    readme = (ROOT / "README.md").read_text()
    event_blocks = re.findall(r"```json\n(\{\n  \"schema_version\".*?)\n```", readme, re.S)
    documents = [json.loads(block) for block in event_blocks]
    samples = [
        json.loads((ROOT / "events" / "outbound" / f"eventbridge-post-account-{status}.json").read_text())["detail"]
        for status in ("posted", "failed")
    ]
    assert documents == samples


def test_the_readmes_watch_sample_is_what_the_api_answers() -> None:
    readme = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"```json\n(\{\n  \"post_id\".*?)\n```", readme, re.S)
    assert WatchView.model_validate_json(block).accounts  # every field the API answers, no other
