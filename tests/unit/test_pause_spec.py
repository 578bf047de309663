"""The pause rule (`checking/pause.py`): a refused key stops every call to Genviral for a while, stored
once per pause with its notice (`relay.paused`); the first answer after it closes it (`relay.resumed`).
The check, the retry sweep and discovery each report a refusal through it."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from genviral_relay.checking.pause import PAUSE_AFTER_REFUSAL, GenviralPause, describe_refusal
from genviral_relay.clock import format_ts
from genviral_relay.errors import (
    GenviralAuthError,
    GenviralConfigError,
    GenviralSubscriptionRequiredError,
    GenviralTierNotAllowedError,
    TokenUnavailableError,
)
from genviral_relay.models.domain import TARGETS, CreatedWindow
from genviral_relay.models.messages import CheckRequest, NoticesRequest
from genviral_relay.models.pause import PauseRecord, PauseStatus
from genviral_relay.models.relay_notices import RelayStateEvent
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.outbox import FLUSH_AFTER, NoticeOutbox
from genviral_relay.observability import Metric
from genviral_relay.polling.discover import CLOCK_SKEW, HISTORY_START
from genviral_relay.polling.stack_work import StackTick
from genviral_relay.polling.tick import PollTick
from genviral_relay.polling.work_batch import WorkItem
from genviral_relay.polling.workspace_runs import WorkspaceTicks
from tests.builders import NOW, POST_ID, account, post
from tests.support.doubles import InMemoryStore, InMemoryWorkQueue
from tests.unit.world import World, emitted

REFUSED_402 = GenviralSubscriptionRequiredError("no plan", status=402, error_code="subscription_required")
REASON_402 = (
    "Genviral refused the key for want of a plan with the Partner API (HTTP 402 subscription_required): no plan"
)
PAUSED_AT_NOW = PauseRecord(
    paused_at=NOW,
    until=NOW + PAUSE_AFTER_REFUSAL,
    reason=REASON_402,
    http_status=402,
    error_code="subscription_required",
)
"""The pause a refusal at NOW stores."""


def pause(world: World) -> GenviralPause:
    return world.path.pause


def notices(world: World, target: str = "sns") -> list[RelayStateEvent]:
    published = world.publishers[target].notices  # type: ignore[index]
    assert all(isinstance(notice, RelayStateEvent) for notice in published)
    return published  # type: ignore[return-value]


def kinds(world: World) -> list[tuple[str, str]]:
    """(type, paused_at) of every notice the topic received, in order."""
    return [(notice.event_type, notice.paused_at) for notice in notices(world)]


def test_a_refused_key_pauses_calls_says_why_and_publishes_relay_paused(world: World) -> None:
    reason = pause(world).refused(REFUSED_402)

    assert reason == REASON_402
    assert pause(world).reason() == reason
    assert world.store.stored_pause == PAUSED_AT_NOW
    assert emitted(Metric.GENVIRAL_PAUSES) == [1]
    (paused,) = notices(world)
    assert paused.model_dump() == {
        "schema_version": "1",
        "event_id": paused.event_id,
        "event_type": "relay.paused",
        "detected_at": format_ts(NOW),
        "workspace": "default",
        "reason": REASON_402,
        "http_status": 402,
        "until": format_ts(NOW + PAUSE_AFTER_REFUSAL),
        "paused_at": format_ts(NOW),
    }
    assert all(world.publishers[target].notices == [paused] for target in TARGETS)  # every target, and the feed
    assert [entry.event_id for entry in world.store.feed.entries.values()] == [paused.event_id]
    assert world.store.notices.pending() == []  # every target took it


def test_later_refusals_within_the_pause_store_nothing_more(world: World) -> None:
    pause(world).refused(REFUSED_402)
    stored = world.store.calls["transact_write_items"]

    for _ in range(3):
        world.later(timedelta(minutes=1))
        pause(world).refused(GenviralAuthError("revoked", status=401, error_code="unauthorized"))

    assert world.store.calls["transact_write_items"] == stored == 1
    assert world.store.calls["put_item"] == 0
    assert emitted(Metric.GENVIRAL_PAUSES) == [1]
    assert pause(world).reason() == REASON_402  # the first refusal's reason stands
    assert world.store.stored_pause == PAUSED_AT_NOW  # and its end
    assert len(notices(world)) == 1


def test_calls_go_again_when_the_pause_ends_but_it_stays_open_until_an_answer(world: World) -> None:
    pause(world).refused(REFUSED_402)

    world.later(PAUSE_AFTER_REFUSAL - timedelta(seconds=1))
    assert pause(world).reason() == REASON_402
    world.later(timedelta(seconds=1))
    status = pause(world).status()
    assert (status.reason, status.open) == (None, True)  # the probe may call; nothing resumed yet
    assert world.store.stored_pause == PAUSED_AT_NOW  # ended by the clock, not removed
    assert kinds(world) == [("relay.paused", format_ts(NOW))]


def test_a_probe_refused_again_extends_the_pause_without_a_new_notice(world: World) -> None:
    pause(world).refused(REFUSED_402)
    world.later(PAUSE_AFTER_REFUSAL)

    pause(world).refused(
        GenviralSubscriptionRequiredError("plan lapsed", status=402, error_code="subscription_required")
    )

    assert world.store.stored_pause == PAUSED_AT_NOW.model_copy(update={"until": NOW + 2 * PAUSE_AFTER_REFUSAL})
    assert (world.store.calls["transact_write_items"], world.store.calls["put_item"]) == (1, 1)
    assert pause(world).reason() == REASON_402  # the pause's reason: the refusal that opened it
    assert kinds(world) == [("relay.paused", format_ts(NOW))]
    assert emitted(Metric.GENVIRAL_PAUSES) == [1, 1]


@pytest.mark.parametrize(
    "later_refusal",
    [
        pytest.param(GenviralAuthError("revoked", status=401, error_code="unauthorized"), id="another-status"),
        pytest.param(GenviralSubscriptionRequiredError("x", status=402, error_code="plan_expired"), id="another-code"),
        pytest.param(TokenUnavailableError("the Genviral secret is empty"), id="secret-unreadable"),
    ],
)
def test_a_refusal_with_another_cause_after_an_unclosed_pause_is_a_new_pause(
    world: World, later_refusal: GenviralConfigError
) -> None:
    # Monday's 402; the plan was renewed but nothing was due, so no answer closed the pause
    pause(world).refused(REFUSED_402)
    world.later(timedelta(days=3))

    reason = pause(world).refused(later_refusal)  # Thursday: another cause

    thursday = NOW + timedelta(days=3)
    assert kinds(world) == [("relay.paused", format_ts(NOW)), ("relay.paused", format_ts(thursday))]  # no resume
    first, second = notices(world)
    assert (second.reason, second.http_status, second.until) == (
        reason,
        later_refusal.status,
        format_ts(thursday + PAUSE_AFTER_REFUSAL),
    )
    assert second.event_id != first.event_id
    assert world.store.stored_pause == PauseRecord(
        paused_at=thursday,
        until=thursday + PAUSE_AFTER_REFUSAL,
        reason=reason,
        http_status=later_refusal.status,
        error_code=later_refusal.error_code,
    )
    assert pause(world).reason() == reason
    assert emitted(Metric.GENVIRAL_PAUSES) == [1, 1]


def test_a_refusal_with_another_cause_while_the_pause_runs_is_part_of_it(world: World) -> None:
    pause(world).refused(REFUSED_402)
    world.later(PAUSE_AFTER_REFUSAL - timedelta(seconds=1))

    pause(world).refused(GenviralAuthError("revoked", status=401, error_code="unauthorized"))  # an in-flight call

    assert kinds(world) == [("relay.paused", format_ts(NOW))]
    assert world.store.stored_pause == PAUSED_AT_NOW


def test_a_pause_that_could_not_be_stored_is_stored_by_the_next_refusal(world: World) -> None:
    world.store.notices.failing_commits = 1
    with pytest.raises(RuntimeError):
        pause(world).refused(REFUSED_402)
    assert notices(world) == []

    world.later(timedelta(seconds=10))
    pause(world).refused(REFUSED_402)

    # the pause runs from the refusal that stored it
    later = NOW + timedelta(seconds=10)
    assert world.store.stored_pause == PAUSED_AT_NOW.model_copy(
        update={"paused_at": later, "until": later + PAUSE_AFTER_REFUSAL}
    )
    assert kinds(world) == [("relay.paused", format_ts(later))]


def another_process(world: World) -> GenviralPause:
    """A second worker's pause on the same table and targets."""
    outbox = NoticeOutbox(
        store=world.store.notices, publishers=list(world.publishers.values()), clock=world.clock, feed=world.store.feed
    )
    return GenviralPause(world.store, world.clock, notices=outbox)


def test_a_new_refusal_after_another_process_closed_this_process_pause_opens_a_new_one(world: World) -> None:
    worker = pause(world)
    api = another_process(world)
    worker.refused(REFUSED_402)  # the worker opens P1, running for 5 minutes
    world.later(timedelta(minutes=1))
    api.answered(api.status())  # the key was fixed: the API's call was answered and closed P1
    world.later(timedelta(minutes=1))

    worker.refused(REFUSED_402)  # broken again, while P1 would still have run

    again = NOW + timedelta(minutes=2)
    assert worker.reason() == REASON_402
    assert kinds(world) == [
        ("relay.paused", format_ts(NOW)),
        ("relay.resumed", format_ts(NOW)),
        ("relay.paused", format_ts(again)),
    ]
    assert world.store.stored_pause == PAUSED_AT_NOW.model_copy(
        update={"paused_at": again, "until": again + PAUSE_AFTER_REFUSAL}
    )


def test_a_pause_that_is_only_read_neither_opens_nor_closes_the_pause(world: World) -> None:
    reader = GenviralPause(world.store, world.clock)  # the poller's, or the CLI's with a key of its own

    assert reader.refused(REFUSED_402) == REASON_402  # said, not stored
    assert world.store.stored_pause is None
    pause(world).refused(REFUSED_402)
    world.later(PAUSE_AFTER_REFUSAL)
    reader.answered(reader.status())

    assert reader.status().open
    assert kinds(world) == [("relay.paused", format_ts(NOW))]


def test_a_pause_stored_by_another_process_is_read_and_not_opened_again(world: World) -> None:
    another_process(world).refused(REFUSED_402)

    assert pause(world).reason() == REASON_402
    pause(world).refused(GenviralAuthError("revoked", status=401, error_code="unauthorized"))  # an in-flight call

    assert world.store.calls["transact_write_items"] == 1
    assert world.store.calls["put_item"] == 0  # the other's pause stands as it is
    assert len(notices(world)) == 1
    world.later(PAUSE_AFTER_REFUSAL)
    assert pause(world).reason() is None


class RacingStore(InMemoryStore):
    """Every worker's first read of the pause waits for the others': all of them see no pause, then all commit."""

    def __init__(self, workers: int, world: World) -> None:
        super().__init__(clock=world.clock)
        self._first = threading.Barrier(workers, timeout=10)
        self._seen = threading.local()

    def genviral_pause(self, now: datetime) -> PauseStatus:
        status = super().genviral_pause(now)
        if not getattr(self._seen, "done", False):
            self._seen.done = True
            self._first.wait()
        return status


def test_refusals_in_several_workers_at_once_open_one_pause_and_publish_one_relay_paused(world: World) -> None:
    workers = 5
    store = RacingStore(workers, world)
    world.store = store
    pauses = [another_process(world) for _ in range(workers)]
    errors: list[BaseException] = []

    def refuse(one: GenviralPause) -> None:
        try:
            one.refused(REFUSED_402)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=refuse, args=(one,)) for one in pauses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert store.calls["transact_write_items"] == workers  # each tried to open it: one won the version
    assert kinds(world) == [("relay.paused", format_ts(NOW))]
    assert emitted(Metric.GENVIRAL_PAUSES) == [1]
    assert store.stored_pause == PAUSED_AT_NOW


def test_a_refusal_without_an_http_answer_says_so_and_pauses_with_no_status(world: World) -> None:
    unreadable = TokenUnavailableError(
        "the Genviral secret could not be read",
        aws_error_code="AccessDeniedException",
        detail="User: arn:aws:sts::123456789012:assumed-role/stack-WorkerRole/fn is not authorized",
    )
    assert describe_refusal(unreadable) == "the Genviral secret could not be read (AccessDeniedException)"

    pause(world).refused(unreadable)

    (paused,) = notices(world)
    assert (paused.http_status, paused.reason) == (
        None,
        "the Genviral secret could not be read (AccessDeniedException)",
    )
    assert "http_status" not in paused.sns_attributes()
    assert world.store.stored_pause is not None
    assert "arn:" not in world.store.stored_pause.reason


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(
            GenviralAuthError("Invalid API key", status=401, error_code="unauthorized"),
            "Genviral refused the key (HTTP 401 unauthorized): Invalid API key",
            id="401",
        ),
        pytest.param(
            GenviralTierNotAllowedError("tier", status=403, error_code="tier_not_allowed"),
            "Genviral refused the key as its plan's tier cannot use the Partner API (HTTP 403 tier_not_allowed): tier",
            id="403",
        ),
        pytest.param(
            GenviralAuthError("line one\n  line two", status=401, error_code=None),
            "Genviral refused the key (HTTP 401): line one line two",
            id="no-code-and-lines",
        ),
        pytest.param(TokenUnavailableError("the Genviral secret is empty"), "the Genviral secret is empty", id="blank"),
        pytest.param(
            TokenUnavailableError("the Genviral secret could not be read", aws_error_code="not a code: arn:aws:x"),
            "the Genviral secret could not be read",
            id="odd-aws-code",
        ),
    ],
)
def test_a_refusal_is_published_in_the_relays_words_with_genvirals_status_code_and_message(
    error: GenviralConfigError, reason: str
) -> None:
    assert describe_refusal(error) == reason


def test_genvirals_message_in_a_reason_is_cut() -> None:
    reason = describe_refusal(GenviralAuthError("x" * 5000, status=401, error_code="y" * 500))

    assert len(reason) < 400
    assert reason.endswith("x" * 199 + "\N{HORIZONTAL ELLIPSIS}")


def refuse(world: World, key: str, error: GenviralConfigError) -> None:
    world.source.fail_next[key] = [error]


def test_a_check_refused_by_genviral_pauses_calls_and_leaves_the_post_due(world: World) -> None:
    world.register(post(account(status="scheduled")))
    before = world.stored()
    refuse(world, POST_ID, GenviralAuthError("revoked", status=401, error_code="unauthorized"))

    outcome = world.check.check(POST_ID)

    assert outcome.result == "refused"
    assert world.store.stored_pause == PauseRecord(
        paused_at=NOW,
        until=NOW + PAUSE_AFTER_REFUSAL,
        reason="Genviral refused the key (HTTP 401 unauthorized): revoked",
        http_status=401,
        error_code="unauthorized",
    )
    assert world.stored() == before
    assert POST_ID in set(world.store.due_post_ids(NOW))


def test_a_retry_sweep_refused_by_genviral_pauses_calls(world: World) -> None:
    refused = GenviralTierNotAllowedError("tier", status=403, error_code="tier_not_allowed")
    refuse(world, "list", refused)

    report = world.path.sweep.run()

    assert (report.refused, report.error, report.outcomes) == (True, refused, ())
    assert world.store.stored_pause == PauseRecord(
        paused_at=NOW,
        until=NOW + PAUSE_AFTER_REFUSAL,
        reason=describe_refusal(refused),
        http_status=403,
        error_code="tier_not_allowed",
    )


def test_a_discover_run_refused_by_genviral_pauses_calls_and_resumes_its_walk_later(world: World) -> None:
    refuse(world, "list", REFUSED_402)
    discovery = world.discovery()

    report = discovery.run()

    assert (report.refused, report.error, report.walk_complete, report.list_calls) == (True, REFUSED_402, False, 0)
    assert world.store.stored_pause == PAUSED_AT_NOW
    state = world.store.discover_state()
    assert state is not None
    # the first walk's one window, which it could not list, is listed next time
    assert state.pending == (CreatedWindow(since=HISTORY_START, until=NOW + CLOCK_SKEW),)
    assert (state.walk_started_at, state.listed_until, state.walking_history) == (NOW, None, True)


def test_the_check_the_sweep_and_discovery_share_one_pause(world: World) -> None:
    world.register(post(account(status="scheduled")))
    refuse(world, POST_ID, REFUSED_402)
    world.check.check(POST_ID)
    refuse(world, "list", REFUSED_402)
    world.path.sweep.run()
    refuse(world, "list", REFUSED_402)
    world.discovery().run()

    assert emitted(Metric.GENVIRAL_PAUSES) == [1]
    assert world.store.stored_pause == PAUSED_AT_NOW
    assert world.source.fail_next == {POST_ID: [], "list": []}  # each of them did meet its refusal
    assert len(notices(world)) == 1


# ---------------------------------------------------------------------- the resume
def due_batch(world: World) -> list[str]:
    return world.batch().run([WorkItem("m1", CheckRequest(post_id=POST_ID))])


def paused_then_over(world: World) -> None:
    """A watched post, a refusal, and the pause's time run out: the next batch is the probe."""
    world.register(post(account(status="scheduled")))
    refuse(world, POST_ID, REFUSED_402)
    world.check.check(POST_ID)
    world.later(PAUSE_AFTER_REFUSAL)


def test_the_first_answered_batch_after_a_pause_publishes_relay_resumed_once(world: World) -> None:
    paused_then_over(world)

    assert due_batch(world) == []
    world.later(timedelta(minutes=1))
    due_batch(world)

    resumed_at = NOW + PAUSE_AFTER_REFUSAL
    assert kinds(world) == [("relay.paused", format_ts(NOW)), ("relay.resumed", format_ts(NOW))]
    paused, resumed = notices(world)
    assert (resumed.detected_at, resumed.until, resumed.reason, resumed.http_status) == (
        format_ts(resumed_at),
        None,
        REASON_402,
        402,
    )
    assert resumed.event_id != paused.event_id
    status = pause(world).status()
    assert (status.reason, status.open) == (None, False)
    assert world.store.stored_pause == PAUSED_AT_NOW.model_copy(update={"resumed_at": resumed_at})


def test_a_batch_that_read_no_open_pause_writes_nothing_for_it(world: World) -> None:
    world.register(post(account(status="scheduled")))
    world.forget_calls()

    due_batch(world)

    assert world.store.calls["get_item"] == 1  # the batch's one read of the pause: nothing more per check
    assert world.store.calls["transact_write_items"] == world.store.calls["put_item"] == 0
    assert notices(world) == []


def test_a_probe_refused_again_resumes_nothing(world: World) -> None:
    paused_then_over(world)
    refuse(world, POST_ID, REFUSED_402)

    due_batch(world)

    assert kinds(world) == [("relay.paused", format_ts(NOW))]
    assert pause(world).status().open
    assert pause(world).reason() == REASON_402  # extended


def test_two_processes_that_both_read_the_pause_open_resume_it_once(world: World) -> None:
    paused_then_over(world)
    open_pause = pause(world).status()
    other = another_process(world)

    other.answered(open_pause)
    pause(world).answered(open_pause)  # its commit meets the other's version, reads the pause closed

    assert [kind for kind, _ in kinds(world)] == ["relay.paused", "relay.resumed"]


def test_a_check_asked_for_now_closes_an_open_pause(world: World) -> None:
    paused_then_over(world)

    world.path.check_now(POST_ID, trigger="manual")

    assert [kind for kind, _ in kinds(world)] == ["relay.paused", "relay.resumed"]


def test_a_check_asked_for_now_whose_resume_cannot_be_stored_still_answers_and_claims(world: World) -> None:
    paused_then_over(world)
    world.store.notices.failing_commits = 1

    outcome = world.path.check_now(POST_ID, trigger="manual")

    assert (outcome.answered, outcome.result) == (True, "unchanged")  # the check's own answer, not an error
    assert world.stored().claimed_at == NOW + PAUSE_AFTER_REFUSAL  # and the queued checks are claimed
    assert pause(world).status().open  # the next answer closes it
    assert kinds(world) == [("relay.paused", format_ts(NOW))]
    world.path.check_now(POST_ID, trigger="manual")
    assert [kind for kind, _ in kinds(world)] == ["relay.paused", "relay.resumed"]


def test_a_pause_published_by_a_process_that_crashed_is_published_once_by_the_flush(world: World) -> None:
    world.register(post(account(status="scheduled")))
    world.publishers["sns"].crashing = True
    refuse(world, POST_ID, REFUSED_402)
    with pytest.raises(SystemExit):  # the process dies after the commit, while publishing
        world.check.check(POST_ID)
    world.publishers["sns"].crashing = False
    assert world.store.stored_pause == PAUSED_AT_NOW
    assert all(world.publishers[target].notices == [] for target in TARGETS)

    queue = InMemoryWorkQueue()
    workspace = PollTick(
        index=world.store, pause=GenviralPause(world.store, world.clock), queue=queue, clock=world.clock, discover=False
    )
    tick = WorkspaceTicks(  # the poller as the deployment composes it: the stack's own work apart
        workspaces=lambda: [DEFAULT_WORKSPACE],
        tick_of=lambda _: workspace,
        stack=StackTick(notices=world.store.notices, sync_every=None, queue=queue, clock=world.clock),
    )
    tick.run()
    assert queue.sent == []  # its own process may still be publishing it
    world.later(FLUSH_AFTER)
    world.store.calls.clear()
    tick.run()
    assert world.store.calls["query"] == 1  # the tick's one look at the pending notices
    (flush,) = [request for request, _ in queue.sent]  # while paused: only the flush
    assert flush == NoticesRequest(notices="flush")

    assert world.batch().run([WorkItem("m1", flush)]) == []  # the worker flushes, paused or not
    world.batch().run([WorkItem("m2", flush)])  # a second flush finds nothing owed

    for target in TARGETS:
        assert [(n.event_type, n.paused_at) for n in world.publishers[target].notices] == [
            ("relay.paused", format_ts(NOW))
        ]
    assert len(world.store.feed.entries) == 1
    assert world.store.notices.pending() == []
