"""The failure categories (`rules/failure_categories.py`): every pattern of the table, the order
between rows that could both match, an unknown message and a missing one."""

from __future__ import annotations

import pytest

from genviral_relay.rules.failure_categories import RULES, failure_category
from genviral_relay.rules.transitions import detect_transitions
from tests.builders import NOW, account, outcomes, post


@pytest.mark.parametrize(
    ("message", "category"),
    [
        # account_disconnected
        ("The access token has expired", "account_disconnected"),
        ("Token revoked by the user", "account_disconnected"),
        ("Invalid OAuth token", "account_disconnected"),
        ("Please reconnect your TikTok account", "account_disconnected"),
        ("User must re-authorize the app", "account_disconnected"),
        ("Reauthorization required", "account_disconnected"),
        ("Missing permission: instagram_content_publish", "account_disconnected"),
        # rate_limited (before content: the TikTok code mentions spam)
        ("Rate limit exceeded, try later", "rate_limited"),
        ("rate_limited", "rate_limited"),
        ("Too many requests", "rate_limited"),
        ("Daily posting quota reached", "rate_limited"),
        ("spam_risk_too_many_pending_share", "rate_limited"),
        # media_rejected
        ("Instagram rejected the media: aspect ratio 9:21", "media_rejected"),
        ("Video duration must be at least 3 seconds", "media_rejected"),
        ("Resolution below 540 pixels", "media_rejected"),
        ("File size exceeds 250 MB", "media_rejected"),
        ("Unsupported format: .avi", "media_rejected"),
        ("Unsupported codec HEVC", "media_rejected"),
        ("Video too short", "media_rejected"),
        ("Caption too long", "media_rejected"),
        # content_rejected
        ("Violates our community policy", "content_rejected"),
        ("Content does not meet the guidelines", "content_rejected"),
        ("Marked as spam", "content_rejected"),
        ("Duplicate content is not allowed", "content_rejected"),
        ("Copyright claim on the audio", "content_rejected"),
        # platform_unavailable
        ("Upload timed out", "platform_unavailable"),
        ("Request timeout", "platform_unavailable"),
        ("Service temporarily unavailable", "platform_unavailable"),
        ("Internal error", "platform_unavailable"),
        ("Internal server error", "platform_unavailable"),
        ("Bad gateway", "platform_unavailable"),
        ("Platform answered HTTP 503", "platform_unavailable"),
        ("status: 502", "platform_unavailable"),
        # unknown
        ("Something odd happened", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_each_pattern_of_the_table(message: str | None, category: str) -> None:
    assert failure_category(message) == category


def test_matching_ignores_case() -> None:
    assert failure_category("TOO MANY REQUESTS") == failure_category("too many requests") == "rate_limited"


def test_a_number_that_is_no_http_status_is_no_outage() -> None:
    assert failure_category("Width 500 is below the minimum") == "unknown"


def test_the_table_covers_every_category_but_unknown() -> None:
    assert {category for category, _ in RULES} == {
        "account_disconnected",
        "media_rejected",
        "content_rejected",
        "rate_limited",
        "platform_unavailable",
    }


def test_only_failed_events_carry_a_category() -> None:
    detection = detect_transitions(
        None,
        post(
            account("a", status="posted", error_message="Upload timed out before a retry"),
            account("b", status="failed", error_message="Upload timed out"),
        ),
        NOW,
    )
    by_status = {event.status: event for event in outcomes(detection.events)}
    assert by_status["posted"].error_category is None
    assert by_status["failed"].error_category == "platform_unavailable"
    assert by_status["failed"].error_message == "Upload timed out"  # the raw message stays
    assert by_status["failed"].sns_attributes()["error_category"] == "platform_unavailable"
    assert "error_category" not in by_status["posted"].sns_attributes()
