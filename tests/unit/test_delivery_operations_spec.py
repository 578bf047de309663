"""The delivery function's records, health and pacing (issue 22, items 3, 6, 7 and 8): every attempt is logged
with the delivery's state; a disabled endpoint, or an event its filter leaves out, gets nothing; an endpoint
failing for `WebhookDisableAfterHours` is disabled and announced once; `rate_limit` paces without dropping or
counting a failure."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from genviral_relay.errors import WebhookNotFoundError
from genviral_relay.feed.reader import EventFeed
from genviral_relay.models.endpoint_notices import EndpointDisabledEvent
from genviral_relay.models.webhooks import EndpointFilter, WebhookDelivery
from genviral_relay.observability import Metric
from genviral_relay.rules.cursors import CursorError, encode_cursor
from genviral_relay.rules.endpoint_health import disable_after, due_for_disabling, notice_event_id
from genviral_relay.rules.webhook_retries import MAX_ATTEMPTS, RETRY_DELAYS
from genviral_relay.webhooks.attempt_log import AttemptLog
from genviral_relay.webhooks.attempts import DeliveryItem
from genviral_relay.webhooks.endpoint_health import EndpointDisabler
from genviral_relay.webhooks.ports import AttemptRecord, WebhookAnswer
from tests.builders import relay_event
from tests.support.doubles import RecordingSender
from tests.support.event_log_doubles import InMemoryDeliveryLog, RecordingNotices
from tests.support.webhook_rig import RETENTION
from tests.unit.test_webhooks_spec import START, URL, Rig
from tests.unit.world import emitted

FAILED = WebhookAnswer(status=503, reason="Service Unavailable")
DISABLE_AFTER = timedelta(hours=120)


def items(rig: Rig, deliveries: list[WebhookDelivery] | None = None) -> list[DeliveryItem]:
    """Deliveries as SQS hands them to the function: those given, else everything queued."""
    chosen = deliveries if deliveries is not None else rig.queue.take()
    return [DeliveryItem(f"d{index}", delivery) for index, delivery in enumerate(chosen)]


def flushed(capsys: pytest.CaptureFixture[str], metric: Metric) -> list[float]:
    """The values of `metric` written at once, each in an EMF document of its own (not at the handler's return)."""
    lines = capsys.readouterr().out.splitlines()
    documents = [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]
    return [float(value) for document in documents for value in document.get(metric.value, [])]


def edit(rig: Rig, webhook_id: str, **fields: object) -> None:
    rig.store.items[webhook_id] = rig.store.items[webhook_id].model_copy(update=fields)


# ---------------------------------------------------------------- the attempt log and the delivery's state
def test_every_attempt_is_logged_with_its_status_duration_and_reason_and_the_delivery_state_follows() -> None:
    rig = Rig(FAILED)
    webhook_id = rig.register()
    rig.event()

    class Slow(RecordingSender):
        def post(self, *args: object) -> WebhookAnswer:  # type: ignore[override]
            rig.now += timedelta(milliseconds=250)  # the attempts' clock moves while the endpoint answers
            return super().post(*args)  # type: ignore[arg-type]

    rig.attempts._sender = Slow(FAILED)
    rig.run_due()
    rig.now = START + RETRY_DELAYS[0] + timedelta(seconds=1)
    rig.run_due()

    page = rig.delivery_log.attempts(webhook_id, before=None, limit=10)
    assert [(e.attempt, e.outcome, e.status, e.duration_ms) for e in page.entries] == [
        (2, "delivered", 200, 250),
        (1, "failed", 503, 250),
    ]
    assert page.entries[1].reason == "HTTP 503: Service Unavailable"
    assert page.entries[0].reason is None
    (state,) = rig.delivery_log.deliveries("e1")
    assert (state.state, state.attempts, state.last_status, state.next_attempt_at) == ("delivered", 2, 200, None)


def test_a_failed_attempt_leaves_the_delivery_retrying_with_its_next_attempt_then_parked() -> None:
    rig = Rig(*[FAILED] * MAX_ATTEMPTS)
    rig.register()
    rig.event()
    rig.run_due()
    (state,) = rig.delivery_log.deliveries("e1")
    assert (state.state, state.attempts, state.next_attempt_at) == ("retrying", 1, START + RETRY_DELAYS[0])
    for wait in RETRY_DELAYS:
        rig.now += wait
        rig.run_due()
    (state,) = rig.delivery_log.deliveries("e1")
    assert (state.state, state.attempts, state.last_status) == ("parked", MAX_ATTEMPTS, 503)


class BrokenLog(InMemoryDeliveryLog):
    def record_attempt(self, *args: object) -> None:  # type: ignore[override]
        raise RuntimeError("table down")


def test_a_log_that_cannot_be_written_neither_fails_nor_repeats_the_delivery() -> None:
    rig = Rig(FAILED)
    rig.attempts._records._log = BrokenLog()
    webhook_id = rig.register()
    rig.event()
    assert rig.attempts.run(items(rig)) == []  # nothing comes back from SQS
    (retry,) = rig.queue.sent  # one retry, as without the log
    assert retry.attempt == 2
    assert len(rig.sender.posts) == 1
    assert rig.store.items[webhook_id].health.attempts_pending == 1  # the health is written still


# ---------------------------------------------------------------- dropped unsent
def test_a_delivery_for_a_disabled_endpoint_is_dropped_unsent_and_recorded_disabled() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.store.set_enabled(webhook_id, False, at=START, reason="by hand")
    rig.event()
    rig.run_due()
    assert rig.sender.posts == []
    assert rig.queue.sent == []
    assert emitted(Metric.WEBHOOK_MESSAGES_REJECTED) == []  # the relay made it: dropped, not rejected
    (state,) = rig.delivery_log.deliveries("e1")
    assert (state.state, state.attempts) == ("disabled", 0)


def test_an_endpoint_whose_filter_was_edited_after_the_fanout_does_not_get_what_it_leaves_out() -> None:
    rig = Rig()
    webhook_id = rig.register()
    rig.event()  # an instagram failure, queued for the endpoint
    edit(rig, webhook_id, filter=EndpointFilter(platforms=("tiktok",)))
    rig.run_due()
    assert rig.sender.posts == []
    (state,) = rig.delivery_log.deliveries("e1")
    assert state.state == "filtered"


def test_a_filter_that_matches_lets_the_delivery_go() -> None:
    rig = Rig()
    webhook_id = rig.register()
    edit(rig, webhook_id, filter=EndpointFilter(platforms=("instagram",), error_categories=("media_rejected",)))
    rig.event()
    rig.run_due()
    assert len(rig.sender.posts) == 1


# ---------------------------------------------------------------- endpoint health
def failing_for(rig: Rig, webhook_id: str, hours: float) -> None:
    """The endpoint's every delivery has failed for `hours` (its health as the store keeps it)."""
    health = rig.store.items[webhook_id].health.model_copy(update={"failing_since": rig.now - timedelta(hours=hours)})
    edit(rig, webhook_id, health=health)


def test_the_rule_disables_after_the_hours_and_never_for_zero() -> None:
    assert disable_after(0) is None
    assert not due_for_disabling(START - timedelta(days=365), START, None)
    assert not due_for_disabling(None, START, DISABLE_AFTER)
    assert not due_for_disabling(START - DISABLE_AFTER + timedelta(seconds=1), START, DISABLE_AFTER)
    assert due_for_disabling(START - DISABLE_AFTER, START, DISABLE_AFTER)


def test_an_endpoint_failing_for_the_hours_is_disabled_announced_once_and_its_retry_not_queued(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rig = Rig(WebhookAnswer(status=410, reason="Gone"))
    webhook_id = rig.register(url="https://hooks.example.com/genviral/t0ken?key=s3cret")
    edit(rig, webhook_id, description="ops alerts")
    failing_for(rig, webhook_id, 120)
    rig.event()
    rig.run_due()

    endpoint = rig.store.items[webhook_id]
    assert (endpoint.enabled, endpoint.disabled_at) == (False, START)
    assert endpoint.disabled_reason is not None
    assert "120 hours" in endpoint.disabled_reason
    assert rig.queue.sent == []  # no retry
    (state,) = rig.delivery_log.deliveries("e1")
    assert state.state == "disabled"
    assert flushed(capsys, Metric.WEBHOOK_ENDPOINTS_DISABLED) == [1]
    (notice,) = rig.notices.published
    assert isinstance(notice, EndpointDisabledEvent)
    assert notice.event_id == notice_event_id(webhook_id, START)
    assert (notice.host, notice.description, notice.last_failure_status) == ("hooks.example.com", "ops alerts", 410)
    assert notice.last_failure_reason == "HTTP 410: Gone"
    assert notice.sns_attributes() == {"event_type": "webhook.endpoint.disabled", "webhook_id": webhook_id}
    assert notice.detail_type == "Webhook Endpoint Disabled"
    document = json.loads(notice.model_dump_json())
    assert "t0ken" not in json.dumps(document)
    assert "s3cret" not in json.dumps(document)
    (entry,) = rig.feed.entries.values()
    assert (entry.event_id, entry.post_id, json.loads(entry.document)) == (notice.event_id, None, document)


def test_an_endpoint_failing_for_less_is_retried_and_zero_hours_never_disables() -> None:
    rig = Rig(FAILED)
    webhook_id = rig.register()
    failing_for(rig, webhook_id, 119.9)
    rig.event()
    rig.run_due()
    assert rig.store.items[webhook_id].enabled
    assert len(rig.queue.sent) == 1

    never = Rig(FAILED)
    never.attempts._disabler = EndpointDisabler(
        store=never.store,
        publishers=[never.notices],
        feed=lambda: never.feed,
        disable_after=disable_after(0),
        clock=lambda: never.now,
    )
    other = never.register()
    failing_for(never, other, 24 * 365)
    never.event()
    never.run_due()
    assert never.store.items[other].enabled
    assert never.notices.published == []


def test_two_failures_disabling_at_once_announce_it_once(capsys: pytest.CaptureFixture[str]) -> None:
    rig = Rig(FAILED, FAILED)
    webhook_id = rig.register()
    failing_for(rig, webhook_id, 200)
    rig.event("post.account.failed", "e1")
    rig.event("post.account.posted", "e2")
    stale = rig.store.items[webhook_id]  # both attempts read the endpoint before either disabled it
    reads = iter([stale, stale])
    current = rig.store.endpoint  # the loser's read after its switch lost sees it off
    rig.store.endpoint = lambda key: next(reads, None) or current(key)  # type: ignore[method-assign]
    rig.run_due()
    assert len(rig.notices.published) == 1
    assert flushed(capsys, Metric.WEBHOOK_ENDPOINTS_DISABLED) == [1]
    assert rig.queue.sent == []
    assert {s.state for e in ("e1", "e2") for s in rig.delivery_log.deliveries(e)} == {"disabled"}


def test_a_switch_that_cannot_be_written_leaves_the_endpoint_on_and_the_delivery_retried() -> None:
    rig = Rig(FAILED)
    webhook_id = rig.register()
    failing_for(rig, webhook_id, 200)

    def down(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("table down")

    rig.store.set_enabled = down  # type: ignore[method-assign]
    rig.event()
    assert rig.attempts.run(items(rig)) == []
    (retry,) = rig.queue.sent
    assert retry.attempt == 2
    assert rig.notices.published == []


def test_a_retry_dropped_unsent_is_no_longer_counted_pending() -> None:
    rig = Rig(FAILED, FAILED)
    disabled, filtered = rig.register(), rig.register(url=URL + "/filtered")
    rig.event()
    rig.run_due()
    assert [rig.store.items[w].health.attempts_pending for w in (disabled, filtered)] == [1, 1]
    rig.registry.disable(disabled)
    edit(rig, filtered, filter=EndpointFilter(platforms=("tiktok",)))
    rig.now += RETRY_DELAYS[0] + timedelta(seconds=1)
    rig.run_due()  # both retries dropped unsent
    health = [rig.store.items[w].health for w in (disabled, filtered)]
    assert [h.attempts_pending for h in health] == [0, 0]
    assert [h.last_failure_at for h in health] == [START, START]  # no attempt was made


def test_the_disabled_notice_is_not_missed_by_a_consumer_following_next() -> None:
    rig = Rig(FAILED)
    webhook_id = rig.register()
    failing_for(rig, webhook_id, 120)
    rig.event()
    reader = EventFeed(
        log=rig.feed, deliveries=rig.delivery_log, webhooks=rig.store, clock=lambda: rig.now, event_retention=RETENTION
    )
    polled: dict[str, str | None] = {}

    class Unanswering(RecordingSender):
        def post(self, *args: object) -> WebhookAnswer:  # type: ignore[override]
            rig.now += timedelta(seconds=11)  # the sender's timeout runs out
            polled["next"] = reader.page(after=None, limit=100).next  # a consumer polls meanwhile
            return super().post(*args)  # type: ignore[arg-type]

    rig.attempts._sender = Unanswering(FAILED)
    rig.run_due()
    assert not rig.store.items[webhook_id].enabled
    rig.now += timedelta(minutes=5)
    later = reader.page(after=polled["next"], limit=100)
    assert "webhook.endpoint.disabled" in [json.loads(entry.document)["event_type"] for entry in later.entries]


def test_an_endpoint_that_delivered_during_the_failed_send_is_not_disabled() -> None:
    rig = Rig(FAILED)
    webhook_id = rig.register()
    failing_for(rig, webhook_id, 200)
    rig.event()

    class RecoversMeanwhile(RecordingSender):
        def post(self, *args: object) -> WebhookAnswer:  # type: ignore[override]
            # another delivery to the endpoint, on another thread, succeeds during this send
            rig.store.record_attempt(webhook_id, AttemptRecord(at=rig.now, succeeded=True, status=200))
            return super().post(*args)  # type: ignore[arg-type]

    rig.attempts._sender = RecoversMeanwhile(FAILED)
    rig.run_due()
    assert rig.store.items[webhook_id].enabled
    assert rig.notices.published == []
    assert [d.attempt for d in rig.queue.sent] == [2]  # retried as any failure


def test_an_operator_enable_during_a_stale_failed_send_is_not_undone() -> None:
    rig = Rig(FAILED)
    webhook_id = rig.register()
    failing_for(rig, webhook_id, 200)
    rig.event()

    class DisabledAndEnabledMeanwhile(RecordingSender):
        def post(self, *args: object) -> WebhookAnswer:  # type: ignore[override]
            rig.store.set_enabled(webhook_id, False, at=rig.now, reason="another attempt disabled it")
            rig.registry.enable(webhook_id)  # the operator fixed it and turned it back on
            return super().post(*args)  # type: ignore[arg-type]

    rig.attempts._sender = DisabledAndEnabledMeanwhile(FAILED)
    rig.run_due()
    assert rig.store.items[webhook_id].enabled


def test_a_notice_no_target_takes_still_disables_the_endpoint_and_reaches_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rig = Rig(FAILED)
    bus = RecordingNotices("eventbridge")
    rig.notices.failing = True
    rig.attempts._disabler = EndpointDisabler(
        store=rig.store,
        publishers=[rig.notices, bus],
        feed=lambda: rig.feed,
        disable_after=DISABLE_AFTER,
        clock=lambda: rig.now,
    )
    webhook_id = rig.register()
    failing_for(rig, webhook_id, 200)
    rig.event()
    rig.run_due()
    assert not rig.store.items[webhook_id].enabled
    assert len(bus.published) == 1
    assert len(rig.feed.entries) == 1
    assert flushed(capsys, Metric.WEBHOOK_ENDPOINTS_DISABLED) == [1]  # the alarm hears of it whatever the targets do


# ---------------------------------------------------------------- pacing
def test_a_rate_limit_paces_deliveries_without_dropping_or_failing_any() -> None:
    rig = Rig()
    webhook_id = rig.register()
    edit(rig, webhook_id, rate_limit=1.0)
    for number in range(3):
        rig.event("post.account.failed", f"e{number}")
    rig.run_due()
    assert len(rig.sender.posts) == 1
    paced = sorted(rig.queue.sent, key=lambda d: d.due_at)
    assert [(d.due_at - START, d.paced, d.attempt) for d in paced] == [
        (timedelta(seconds=1), True, 1),
        (timedelta(seconds=2), True, 1),
    ]
    assert emitted(Metric.WEBHOOK_DELIVERY_FAILURES) == []
    assert rig.store.items[webhook_id].health.attempts_pending == 0
    assert [s.state for e in ("e1", "e2") for s in rig.delivery_log.deliveries(e)] == []  # no attempt yet

    rig.queue.sent.clear()
    for second in (1, 2):
        rig.now = START + timedelta(seconds=second)
        rig.attempts.run(items(rig, [d for d in paced if d.due_at == rig.now]))
    assert len(rig.sender.posts) == 3  # each at its slot, none reserving a second one
    assert rig.queue.sent == []
    assert rig.pacer.next_slot[webhook_id][0] == START + timedelta(seconds=3)


def test_a_raised_rate_limit_is_not_held_back_by_slots_reserved_at_the_old_one() -> None:
    rig = Rig()
    webhook_id = rig.register()
    edit(rig, webhook_id, rate_limit=1 / 60)  # one a minute
    for number in range(4):
        rig.event("post.account.failed", f"e{number}")
    rig.run_due()
    waiting = rig.queue.take()
    assert [d.due_at - START for d in sorted(waiting, key=lambda d: d.due_at)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=3),
    ]
    edit(rig, webhook_id, rate_limit=100.0)  # the operator raises it: the far slots are given up
    rig.now = START + timedelta(seconds=1)
    rig.attempts.run(items(rig, waiting))
    assert len(rig.sender.posts) == 4  # sent now, each reserving a slot at the new rate, none waiting an hour
    assert rig.queue.sent == []


def test_a_paced_delivery_that_fails_reserves_a_slot_again_for_its_retry() -> None:
    rig = Rig(FAILED)
    webhook_id = rig.register()
    edit(rig, webhook_id, rate_limit=2.0)
    rig.event()
    rig.run_due()
    (retry,) = rig.queue.sent
    assert (retry.attempt, retry.paced) == (2, False)
    assert URL in rig.store.items[webhook_id].url


# ---------------------------------------------------------------- reading the attempt log
def test_the_attempt_log_pages_newest_first_behind_a_cursor_of_its_own_endpoint() -> None:
    rig = Rig(*[FAILED] * 3)
    webhook_id = rig.register()
    other = rig.register()
    for number in range(3):
        rig.event("post.account.failed", f"e{number}")
        rig.now += timedelta(seconds=1)
    rig.queue.take()
    log = AttemptLog(store=rig.store, log=rig.delivery_log)
    for number in range(3):  # one attempt each to the first endpoint, a second apart
        rig.attempts.attempt(WebhookDelivery(webhook_id=webhook_id, event_id=f"e{number}",
                             event_type="post.account.failed", attempt=1, due_at=rig.now,
                             post_id=relay_event("post.account.failed", "e0").post_id))  # fmt: skip
        rig.now += timedelta(seconds=1)

    first = log.page(webhook_id, after=None, limit=2)
    assert [e.event_id for e in first.entries] == ["e2", "e1"]
    assert first.next is not None
    rest = log.page(webhook_id, after=first.next, limit=2)
    assert [e.event_id for e in rest.entries] == ["e0"]
    assert rest.next is None
    assert log.page(webhook_id, after=None, outcome="delivered").entries == []

    with pytest.raises(CursorError, match="another listing"):
        log.page(other, after=first.next)  # another endpoint's cursor
    with pytest.raises(CursorError, match="malformed"):
        log.page(webhook_id, after="not-a-cursor")
    with pytest.raises(CursorError, match="malformed"):
        log.page(webhook_id, after=encode_cursor(f"attempts:{webhook_id}", "x#y"))
    with pytest.raises(WebhookNotFoundError):
        log.page("wh_" + "0" * 32, after=None)
