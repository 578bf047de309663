"""The notice outbox (`notices/outbox.py`) on the in-memory store: a commit takes at most
`MAX_NOTICES_PER_COMMIT` notices, and a flush never keeps a notice owed for ever (one left with nothing owed by a
crash, or owed to a target the deployment no longer has)."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from genviral_relay.models.domain import Target
from genviral_relay.models.relay_notices import MAX_NOTICES_PER_COMMIT, RelayStateEvent
from genviral_relay.notices.outbox import FLUSH_AFTER, NoticeOutbox
from tests.builders import NOW
from tests.support.doubles import RecordingPublisher
from tests.support.notice_doubles import InMemoryNoticeStore


def paused(n: int = 1) -> RelayStateEvent:
    return RelayStateEvent(
        event_id=f"00000000-0000-5000-8000-{n:012d}",
        event_type="relay.paused",
        detected_at="2025-02-01T15:00:00.000Z",
        reason="402",
        http_status=402,
        until=None,
        paused_at="2025-02-01T15:00:00.000Z",
    )


class Deployment:
    def __init__(self) -> None:
        self.now = NOW
        self.store = InMemoryNoticeStore()
        self.publishers: dict[Target, RecordingPublisher] = {}

    def clock(self) -> datetime:
        return self.now

    def outbox(self, *targets: Target) -> NoticeOutbox:
        publishers = [self.publishers.setdefault(target, RecordingPublisher(target)) for target in targets]
        return NoticeOutbox(store=self.store, publishers=publishers, clock=self.clock)


@pytest.fixture
def deployment() -> Deployment:
    return Deployment()


def test_a_commit_takes_as_many_notices_as_one_transaction_holds_and_refuses_more(deployment: Deployment) -> None:
    outbox = deployment.outbox("sns")
    too_many = [paused(n) for n in range(MAX_NOTICES_PER_COMMIT + 1)]

    with pytest.raises(ValueError, match=f"at most {MAX_NOTICES_PER_COMMIT}"):
        outbox.commit("ACCOUNT_HEALTH", "{}", expected_version=0, notices=too_many)

    assert deployment.store.record("ACCOUNT_HEALTH") is None
    assert deployment.publishers["sns"].calls == 0
    assert outbox.commit("ACCOUNT_HEALTH", "{}", expected_version=0, notices=too_many[:-1]) == 0
    assert len(deployment.publishers["sns"].notices) == MAX_NOTICES_PER_COMMIT


def test_a_notice_left_with_nothing_owed_is_not_flushed(deployment: Deployment) -> None:
    outbox = deployment.outbox("sns")
    deployment.publishers["sns"].failing = True
    outbox.commit("GENVIRAL_PAUSE", "{}", expected_version=0, notices=(paused(),))
    deployment.store.empty(paused().event_id)  # a crash between the two calls of 0.5's acknowledge
    deployment.now += FLUSH_AFTER
    deployment.publishers["sns"].calls = 0

    assert outbox.flush() == 0

    assert deployment.publishers["sns"].calls == 0
    assert deployment.store.pending() == []
    assert deployment.store.any_owed(deployment.now) is False  # so no tick queues a flush for it


def test_a_notice_owed_to_a_target_no_longer_configured_is_done_there_with_a_warning(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    # Given relay.paused owed to SNS only (SNS refused it), then PublishTargets changed to eventbridge
    deployment.publishers["sns"] = RecordingPublisher("sns")
    deployment.publishers["sns"].failing = True
    assert deployment.outbox("sns", "eventbridge").commit("P", "{}", expected_version=0, notices=(paused(),)) == 1
    deployment.now += FLUSH_AFTER

    with caplog.at_level(logging.WARNING):
        assert deployment.outbox("eventbridge").flush() == 0

    assert deployment.store.pending() == []
    (line,) = [record for record in caplog.records if "no longer configured" in record.getMessage()]
    assert (line.target, line.event_id) == ("sns", paused().event_id)  # type: ignore[attr-defined]
    assert deployment.publishers["eventbridge"].notices == [paused()]  # published once, not again
    assert deployment.outbox("eventbridge").flush() == 0


def test_a_notice_still_owed_to_a_configured_target_stays_owed(deployment: Deployment) -> None:
    outbox = deployment.outbox("sns", "eventbridge")
    deployment.publishers["sns"].failing = True
    outbox.commit("P", "{}", expected_version=0, notices=(paused(),))
    deployment.now += FLUSH_AFTER

    assert outbox.flush() == 1

    (pending,) = deployment.store.pending()
    assert pending.owed == {"sns"}
    deployment.publishers["sns"].failing = False
    assert outbox.flush() == 0
    assert deployment.store.pending() == []
