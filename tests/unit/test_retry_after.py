"""`Retry-After` read once for the Genviral client and the webhook attempts: seconds, or a moment (an HTTP date)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from genviral_relay.genviral import client
from genviral_relay.rules.retry_after import parse_retry_after, read_retry_after, seconds_until

NOW = datetime(2025, 2, 1, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 7 ", 7.0), ("1.5", 1.5), ("0", 0.0), ("-5", 0.0), ("-0", 0.0), ("99999", 99999.0)],
)
def test_delay_seconds_are_read_as_seconds_and_a_negative_one_as_none(value: str, expected: float) -> None:
    assert read_retry_after(value) == expected


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("Sat, 01 Feb 2025 15:02:00 GMT", datetime(2025, 2, 1, 15, 2, tzinfo=UTC)),  # IMF-fixdate
        ("Sat, 01 Feb 2025 16:00:00 +0100", NOW),
        ("Sat, 01 Feb 2025 15:00:10 -0000", NOW + timedelta(seconds=10)),  # parses as naive: read as UTC
    ],
)
def test_an_http_date_is_read_as_its_moment_timezone_aware(value: str, moment: datetime) -> None:
    read = read_retry_after(value)
    assert isinstance(read, datetime)
    assert read.tzinfo is not None
    assert read == moment


@pytest.mark.parametrize(
    "value", [None, "", "   ", "soon", "nan", "inf", "1e2", "+5", "0x10", "2 seconds", "Sat, 99 Foo"]
)
def test_what_is_neither_delay_seconds_nor_an_http_date_is_unusable(value: str | None) -> None:
    assert read_retry_after(value) is None


def test_a_moment_is_a_wait_against_the_readers_clock_and_none_once_past() -> None:
    moment = NOW + timedelta(seconds=45)
    assert seconds_until(moment, NOW) == 45.0
    assert seconds_until(moment, NOW + timedelta(seconds=40)) == 5.0
    assert seconds_until(moment, NOW + timedelta(hours=1)) == 0.0
    assert seconds_until(12.5, NOW) == 12.5


def test_the_genviral_client_reads_it_with_the_same_rule() -> None:
    assert client.parse_retry_after is parse_retry_after
    assert parse_retry_after("Sat, 01 Feb 2025 15:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("soon", NOW) is None
