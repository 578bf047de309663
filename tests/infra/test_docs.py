"""The docs show what the project really does: their samples are the committed ones, their links resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from genviral_relay.models.api import WatchView

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^ *```.*?^ *```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def docs_text() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def links(markdown: str) -> list[str]:
    """Targets of inline links and images, outside fenced code."""
    return LINK.findall(FENCE.sub("", markdown))


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation but '-' and '_' dropped, spaces to '-', repeats numbered."""
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        repeat = repeats.get(slug, 0)
        repeats[slug] = repeat + 1
        found.add(f"{slug}-{repeat}" if repeat else slug)
    return found


def resolves(page: Path, target: str) -> bool:
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    if not linked.exists():
        return False
    return not anchor or linked.suffix != ".md" or anchor in anchors(linked.read_text())


def broken_links(page: Path) -> list[str]:
    """Relative links of the page that point to no file, or to no heading of a Markdown file."""
    relative = [target for target in links(page.read_text()) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]
    return [target for target in relative if not resolves(page, target)]


def test_the_docs_show_each_event_exactly_as_the_samples() -> None:
    event_blocks = re.findall(r"```json\n(\{\n  \"schema_version\".*?)\n```", docs_text(), re.S)
    documents = [json.loads(block) for block in event_blocks]
    samples = [
        json.loads((ROOT / "events" / "outbound" / f"eventbridge-{kind}.json").read_text())["detail"]
        for kind in (
            "post-account-posted",
            "post-account-failed",
            "post-account-delayed",
            "post-account-url_resolved",
            "post-completed",
            "account-disconnected",
            "account-reconnected",
            "relay-paused",
            "relay-resumed",
            "webhook-endpoint-disabled",
        )
    ]
    assert documents == samples


def test_the_docs_watch_sample_is_what_the_api_answers() -> None:
    (block,) = re.findall(r"```json\n(\{\n  \"post_id\".*?)\n```", docs_text(), re.S)
    assert WatchView.model_validate_json(block).accounts  # every field the API answers, no other


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


def test_a_link_to_a_missing_file_or_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Cost\n\n## Cost\n\n```\n# Not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "## Here\n\n"
        "[ok](other.md) [ok](other.md#cost-1) [ok](#here) [ok](https://example.com/nowhere.md)\n"
        "[gone](missing.md) [gone](other.md#no-such-heading) [gone](other.md#not-a-heading) [gone](#there)\n"
        "  ```\n  [in code](missing-too.md)\n  ```\n"
    )
    assert broken_links(page) == ["missing.md", "other.md#no-such-heading", "other.md#not-a-heading", "#there"]


def test_the_posted_on_account_example_names_an_account_of_the_platform_its_rule_is_named_for() -> None:
    # The docs fill the recipe's placeholder with a sample account; the rule's name says which platform's.
    accounts = {
        document["account_id"]: document["account"]["platform"]
        for path in (ROOT / "events" / "outbound").glob("eventbridge-post-account-*.json")
        for document in [json.loads(path.read_text())["detail"]]
    }
    examples = re.findall(
        r"put-rule --name posted-on-\w+-(\w+) .*?sed 's/GENVIRAL_ACCOUNT_ID/([\w-]+)/'", docs_text(), re.S
    )
    assert examples, "the posted-on-account example is gone"
    assert [(platform, accounts.get(account_id)) for platform, account_id in examples] == [
        (platform, platform) for platform, _ in examples
    ]
