"""Back-pressure from the receiver (issue 22, item 8): a `429` or `503` with `Retry-After` puts the next attempt no
earlier than asked, capped at one hour; on any other answer the header means nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest

from genviral_relay.rules.retry_after import read_retry_after
from genviral_relay.rules.webhook_retries import MAX_ATTEMPTS, RETRY_AFTER_CAP, RETRY_DELAYS, next_attempt_due
from genviral_relay.webhooks.ports import WebhookAnswer
from tests.unit.test_webhooks_spec import START, Rig

FIRST_RETRY = RETRY_DELAYS[0]  # 5 s


def answering(status: int, retry_after: str) -> WebhookAnswer:
    """The answer as the sender reads it: the header's text through the shared rule."""
    return WebhookAnswer(status=status, reason="Too Many Requests", retry_after=read_retry_after(retry_after))


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)  # IMF-fixdate


def first_retry_after(answer: WebhookAnswer) -> tuple[Rig, timedelta]:
    """One delivery whose first attempt got `answer`: the rig, and how long after that attempt its retry is due."""
    rig = Rig(answer)
    rig.register()
    rig.event()
    rig.run_due()
    (retry,) = rig.queue.sent
    assert retry.attempt == 2
    return rig, retry.due_at - START


@pytest.mark.parametrize(
    ("status", "header", "wait"),
    [
        pytest.param(429, "120", timedelta(seconds=120), id="429, seconds"),
        pytest.param(503, "120", timedelta(seconds=120), id="503, seconds"),
        pytest.param(429, "7.5", timedelta(seconds=7.5), id="a fraction of a second"),
        pytest.param(429, http_date(START + timedelta(minutes=10)), timedelta(minutes=10), id="HTTP date, future"),
        pytest.param(503, http_date(START - timedelta(minutes=10)), FIRST_RETRY, id="HTTP date, past: schedule"),
        pytest.param(429, "soon", FIRST_RETRY, id="garbage: schedule"),
        pytest.param(429, "-120", FIRST_RETRY, id="negative: schedule"),
        pytest.param(429, "2", FIRST_RETRY, id="sooner than the schedule: schedule"),
        pytest.param(429, "86400", RETRY_AFTER_CAP, id="a day: capped at an hour"),
        pytest.param(503, http_date(START + timedelta(days=3)), RETRY_AFTER_CAP, id="HTTP date in 3 days: capped"),
        pytest.param(429, "1" * 400, RETRY_AFTER_CAP, id="too many digits for a float: capped"),
        pytest.param(500, "120", FIRST_RETRY, id="on a 500: ignored"),
        pytest.param(502, "120", FIRST_RETRY, id="on a 502: ignored"),
        pytest.param(410, "120", FIRST_RETRY, id="on a 410: ignored"),
    ],
)
def test_the_next_attempt_is_no_earlier_than_a_429_or_503_asks_and_at_most_an_hour_later(
    status: int, header: str, wait: timedelta
) -> None:
    rig, due_in = first_retry_after(answering(status, header))
    assert due_in == wait
    health = rig.store.items[next(iter(rig.store.items))].health
    assert (health.attempts_pending, health.last_failure_status) == (1, status)  # a failed attempt as any other


def test_a_retry_after_on_a_success_is_ignored() -> None:
    rig = Rig(answering(200, "120"))
    rig.register()
    rig.event()
    rig.run_due()
    assert rig.queue.sent == []
    assert rig.queue.parked == []


def test_the_retry_is_not_sent_before_the_time_asked() -> None:
    rig, _ = first_retry_after(answering(429, "120"))
    rig.now = START + timedelta(seconds=119)
    (waiting,) = rig.run_due()
    assert len(rig.sender.posts) == 1  # not sent at the schedule's 5 s, nor a second early
    assert rig.queue.sent == [waiting]  # waits again, unchanged
    rig.now = START + timedelta(seconds=120)
    rig.run_due()
    assert len(rig.sender.posts) == 2


def test_a_later_attempt_keeps_the_schedules_longer_wait() -> None:
    # The fourth retry waits two hours: a Retry-After of ten minutes does not bring it forward.
    due = next_attempt_due(4, START, 429, read_retry_after("600"))
    assert due == START + RETRY_DELAYS[3] == START + timedelta(hours=2)


def test_the_last_attempt_parks_the_delivery_as_before_whatever_it_asks() -> None:
    rig = Rig(*[WebhookAnswer(status=503, reason="Service Unavailable")] * (MAX_ATTEMPTS - 1), answering(429, "60"))
    rig.register()
    rig.event()
    for wait in (timedelta(0), *RETRY_DELAYS):
        rig.now += wait
        rig.run_due()
    assert len(rig.sender.posts) == MAX_ATTEMPTS
    ((parked, reason),) = rig.queue.parked
    assert (parked.attempt, reason) == (MAX_ATTEMPTS, "HTTP 429: Too Many Requests")
    assert rig.queue.sent == []
