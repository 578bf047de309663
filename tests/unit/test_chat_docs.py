"""docs/chat.md shows what the renderers write: its examples are regenerated from them, and stale ones fail here."""

from __future__ import annotations

from genviral_relay.models.webhook_documents import SUBSCRIBABLE_TYPES
from tools.chat_examples import DOC_PATH, END, REGENERATE, START, examples, rewritten


def test_the_chat_docs_examples_are_what_the_renderers_write() -> None:
    document = DOC_PATH.read_text()
    assert START in document
    assert END in document
    assert rewritten(document) == document, f"docs/chat.md's examples are stale: run `{REGENERATE}`"


def test_the_examples_show_every_service_for_every_event_type() -> None:
    text = examples()
    for event_type in SUBSCRIBABLE_TYPES:  # the notices too
        assert f"`{event_type}`" in text
    counts = {text.count("Slack:"), text.count("Discord:"), text.count("Microsoft Teams:")}
    assert counts == {len(SUBSCRIBABLE_TYPES)}
