"""Events for the chat specs: the committed samples of the events about posts (events/outbound), the notices built
from their models, and the same with someone else's text replaced, for the hostile and the property tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from genviral_relay.models.events import parse_event
from genviral_relay.models.webhook_documents import WebhookDocument, parse_webhook_document
from tests.support.notice_samples import NOTICES

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    "<!channel>",
    "<!here>",
    "<@U123>",
    "@everyone",
    "@here",
    "<https://evil.example|ok>",
    "[ok](https://evil.example)",
    "*bold* _italic_ ~strike~ `code` ||spoiler|| > quote",
    "# heading\n- list\n1. one",
    "<@&123> <#456> <t:1700000000:R> :smile:",
    "&amp; &lt; <b>html</b>",
    "{{DATE(2017-02-14T06:08:00Z, SHORT)}}",
    "<at>Someone</at>",
    "https://evil.example/path",
    "\u202eevil\u202c",
    "\ud83d lone surrogate",
)


def sample_document(event_type: str) -> dict[str, Any]:
    if event_type in NOTICES:
        return NOTICES[event_type].model_dump(mode="json")
    path = ROOT / "events" / "outbound" / ("eventbridge-" + event_type.replace(".", "-") + ".json")
    document: dict[str, Any] = json.loads(path.read_text())["detail"]
    return document


def sample(event_type: str) -> WebhookDocument:
    return parse_webhook_document(sample_document(event_type))


def with_text(
    event_type: str,
    *,
    caption: str | None = None,
    username: str | None = None,
    platform: str | None = None,
    error: str | None = None,
    url: str | None = None,
    accounts: int = 2,
) -> WebhookDocument:
    """The sample of `event_type` with someone else's text replaced (every account of a completion, `accounts` of
    them, failed and posted in turn). A notice takes what it has of it: an account's handle, platform, status
    (`error`) and posts at risk (`caption` the first id, `accounts` of them named); the relay's reason (`error`)."""
    document = copy.deepcopy(sample_document(event_type))
    if event_type in NOTICES:
        return _notice_with_text(document, caption, username, platform, error, accounts)
    document["post"]["caption"] = caption

    def account_fields(target: dict[str, Any], status: str) -> None:
        target["account"]["username"] = username
        target["account"]["platform"] = platform
        if status == "failed":
            target["error_message"] = error
            target["error_category"] = "content_rejected"
        if status == "posted":
            target["published_url"] = url

    if event_type == "post.completed":
        template = document["accounts"]
        document["accounts"] = []
        for index in range(accounts):
            account = copy.deepcopy(template[index % 2])
            account["account_id"] = account["account"]["id"] = f"acct-{index}"
            account_fields(account, account["status"])
            document["accounts"].append(account)
        document["posted_count"] = sum(1 for a in document["accounts"] if a["status"] == "posted")
        document["failed_count"] = failed = accounts - document["posted_count"]
        document["outcome"] = "posted" if not failed else "failed" if failed == accounts else "partial"
    else:
        account_fields(document, document["status"])
    return parse_event(document)


def _notice_with_text(
    document: dict[str, Any], caption: str | None, username: str | None, platform: str | None, error: str | None,
    accounts: int,
) -> WebhookDocument:  # fmt: skip
    if "account" in document:
        document["account"]["username"] = username
        document["account"]["platform"] = platform
        document["status"] = error
        ids = [caption or "p-0", *(f"p-{index}" for index in range(1, accounts))]
        document["posts_at_risk"] = {"count": accounts + 3, "post_ids": ids}
    else:
        document["reason"] = error or ""
    return parse_webhook_document(document)
