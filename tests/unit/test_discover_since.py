"""`DiscoverSince`: what the template accepts is what the worker understands."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from genviral_relay.clock import moment_from
from genviral_relay.errors import ConfigurationError
from genviral_relay.settings import worker_settings
from local.template import load_template

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("90m", NOW - timedelta(minutes=90)),
        ("12h", NOW - timedelta(hours=12)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("0d", NOW),
        ("2026-01-15T08:30:00Z", datetime(2026, 1, 15, 8, 30, tzinfo=UTC)),
        ("2026-01-15T10:30:00.250+02:00", datetime(2026, 1, 15, 8, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_moment_from_reads_now_durations_and_iso_times(spec: str, expected: datetime) -> None:
    assert moment_from(spec, NOW) == expected


@pytest.mark.parametrize("spec", ["", "yesterday", "7", "7y", "-7d", "2026-13-45T00:00:00Z", "15/01/2026"])
def test_moment_from_rejects_anything_else(spec: str) -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        moment_from(spec, NOW)


def _template_pattern() -> re.Pattern[str]:
    return re.compile(load_template()["Parameters"]["DiscoverSince"]["AllowedPattern"])


@pytest.mark.parametrize("spec", ["now", "90m", "7d", "2w", "2026-01-15T08:30:00Z", "2026-01-15T10:30:00.250+02:00"])
def test_the_template_accepts_what_the_worker_reads(spec: str) -> None:
    assert _template_pattern().match(spec)


@pytest.mark.parametrize("spec", ["yesterday", "7y", "2026-01-15", "2026-01-15T08:30:00"])
def test_the_template_refuses_what_the_worker_would_misread(spec: str) -> None:
    # A time without a zone would be read as UTC silently: the template insists on one
    assert not _template_pattern().match(spec)


def test_a_malformed_discover_since_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCOVER_SINCE", "last tuesday")
    with pytest.raises(ConfigurationError, match=r"DISCOVER_SINCE.*not 'now', a duration"):
        worker_settings()
