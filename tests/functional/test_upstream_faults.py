"""Genviral misbehaving for one post of a worker batch, over the real loopback emulator.

Each test registers three posts in their publishing window (due every tick while unfinished),
lets Genviral finish all of them, and makes Genviral misbehave for one post only. The tick after
must leave that post's stored state untouched and publish nothing for it (above all no false
`failed`), publish the other posts' events normally, and call Genviral a bounded number of times
for it. Once the fault is gone, one more tick publishes the pending transition exactly once, under
one event id on both targets.

The client's backoff `sleep` is replaced by a recorder (no real waiting, and the waits it asked for
can be checked); only the hang test waits for real, with a short read timeout in place of the
production 10 s (both through the client's constructor defaults: the factories build it as deployed).

Speed: one emulator and one moto stack serve the module while its tests pass (each test leaves
every post finished and checks that nothing is due; the table is emptied between tests, since moto
copies the whole table on every transaction), and are rebuilt after any failure; the test side
reuses its AWS clients. The functions still get fresh clients per invocation, as deployed.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from genviral_relay.genviral.client import ClientSettings, GenviralClient
from local.emulator import Fault, GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import SYNC, SecretSentinel
from tests.functional.shared_rig import SharedRig, stored_item
from tests.functional.subscribers import Received, drain, transitions
from tests.functional.test_relay_flow import publishing_now

MAX_ATTEMPTS = ClientSettings().max_attempts  # 3
RETRY_AFTER_CAP = ClientSettings().retry_after_cap  # 5 s
BACKOFF = ((0.0, 0.5), (0.0, 1.0))  # the jittered backoff before attempts 2 and 3
NO_SLEEP: tuple[tuple[float, float], ...] = ()


@pytest.fixture(scope="module")
def shared_rig() -> Iterator[SharedRig]:
    rig = SharedRig()
    yield rig
    rig.close()


@pytest.fixture
def emulator(shared_rig: SharedRig, request: pytest.FixtureRequest) -> GenviralEmulator:
    return shared_rig.get(request.session.testsfailed)[0]


@pytest.fixture
def stack(shared_rig: SharedRig, emulator: GenviralEmulator) -> MotoStack:
    assert shared_rig.stack is not None
    return shared_rig.stack


@pytest.fixture
def runner(stack: MotoStack) -> LocalRunner:
    return LocalRunner(stack)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every backoff the Genviral client asks for, instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setitem(GenviralClient.__init__.__kwdefaults__, "sleep", recorded.append)
    return recorded


@dataclass
class Batch:
    faulty: str
    faulty_account: str
    baseline: dict[str, Any]
    """The faulty post as Genviral answered it at registration (accounts still scheduled)."""
    others: dict[str, str] = field(default_factory=dict)
    """post id -> account id."""


def prepare(emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack) -> Batch:
    """Three watched posts whose accounts have all been `posted` since: any `failed` event would be false.

    (No failed account: a post with one waits for Genviral's retry sweep, which would add a sweep message
    and a list call to each tick.)
    """
    faulty, (faulty_account,) = publishing_now(emulator)
    batch = Batch(faulty, faulty_account, emulator.post_json(faulty))
    for _ in range(2):
        post_id, (account_id,) = publishing_now(emulator)
        batch.others[post_id] = account_id
    for post_id in (faulty, *batch.others):
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    for post_id, account_id in ((faulty, faulty_account), *batch.others.items()):
        emulator.mark_posted(post_id, account_id)
    assert drain(stack).event_ids() == ([], [])
    return batch


def event_keys(documents: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(post, account, status) of each transition among `documents`."""
    return sorted((d["post_id"], d["account_id"], d["status"]) for d in transitions(documents))


def event_kinds(documents: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(post, event type) of every document: transitions, completions and anything else."""
    return sorted((d["post_id"], d["event_type"]) for d in documents)


def posted_and_completed(post_ids: Iterable[str]) -> list[tuple[str, str]]:
    """What each of these one-account posts publishes when its account posts: the transition and the completion."""
    return sorted((post_id, kind) for post_id in post_ids for kind in ("post.account.posted", "post.completed"))


def assert_same_events_on_both_targets(received: Received) -> None:
    sns_ids, eventbridge_ids = received.event_ids()
    assert sns_ids == eventbridge_ids
    assert len(set(sns_ids)) == len(sns_ids), "an event id was published twice"
    assert event_keys(received.sns_documents()) == event_keys(received.eventbridge_documents())
    assert event_kinds(received.sns_documents()) == event_kinds(received.eventbridge_documents())


def tick_with_fault(emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, batch: Batch) -> int:
    """One tick over the batch while the fault is injected: answers the faulty post's Genviral calls."""
    before = stored_item(stack, batch.faulty)
    calls_before = {post_id: emulator.calls(post_id) for post_id in (batch.faulty, *batch.others)}

    assert runner.tick()["enqueued"] == 3 + SYNC
    report = runner.drain_work_queue()

    assert (report.batches, report.processed, report.failed) == (1, 3 + SYNC, 0)
    assert stored_item(stack, batch.faulty) == before, "the faulty post's stored state changed"
    received = drain(stack)
    assert_same_events_on_both_targets(received)
    assert event_keys(received.sns_documents()) == sorted(
        (post_id, account_id, "posted") for post_id, account_id in batch.others.items()
    ), "the other posts of the batch did not publish exactly their own transitions (or a false one)"
    assert event_kinds(received.sns_documents()) == posted_and_completed(batch.others)
    for post_id in batch.others:
        assert emulator.calls(post_id) == calls_before[post_id] + 1
    return emulator.calls(batch.faulty) - calls_before[batch.faulty]


def assert_recovers_exactly_once(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, batch: Batch
) -> None:
    """With the fault gone, the next tick publishes the pending transition once; then nothing is due."""
    emulator.clear_faults()
    assert runner.tick()["enqueued"] == 1 + SYNC  # only the faulty post is still due
    runner.drain_work_queue()

    received = drain(stack)
    assert_same_events_on_both_targets(received)
    (document,) = received.sns_transitions()
    assert (document["post_id"], document["account_id"]) == (batch.faulty, batch.faulty_account)
    assert (document["previous_status"], document["status"]) == ("scheduled", "posted")
    assert event_kinds(received.sns_documents()) == posted_and_completed([batch.faulty])
    assert len(received.event_ids()[0]) == 2  # the transition and the completion

    assert runner.tick()["enqueued"] == SYNC
    assert drain(stack).event_ids() == ([], [])


def assert_sleeps(recorded: list[float], expected: tuple[tuple[float, float], ...]) -> None:
    assert len(recorded) == len(expected), recorded
    for slept, (low, high) in zip(recorded, expected, strict=True):
        assert low <= slept <= high, (recorded, expected)


# ---------------------------------------------------------------- transient faults: bounded retries, no state change


def http_date(offset: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + offset, usegmt=True)


# (name, fault builder, Genviral calls for the faulty post, the backoffs asked for, in the batch scenario too)
TRANSIENT: list[tuple[str, Callable[[], Fault], int, tuple[tuple[float, float], ...], bool]] = [
    ("429-retry-after-1", lambda: Fault.rate_limited("1"), MAX_ATTEMPTS, ((1.0, 1.0), (1.0, 1.0)), True),
    (
        "429-retry-after-http-date-3s",
        lambda: Fault.rate_limited(http_date(timedelta(seconds=3))),
        MAX_ATTEMPTS,
        ((1.0, 3.0), (1.0, 3.0)),
        False,
    ),
    ("429-retry-after-0", lambda: Fault.rate_limited("0"), MAX_ATTEMPTS, BACKOFF, False),
    ("429-retry-after-negative", lambda: Fault.rate_limited("-5"), MAX_ATTEMPTS, BACKOFF, False),
    ("429-retry-after-garbage", lambda: Fault.rate_limited("garbage"), MAX_ATTEMPTS, BACKOFF, False),
    # A Retry-After beyond the cap is not slept through: the post is left to the next tick at once.
    ("429-retry-after-99999", lambda: Fault.rate_limited("99999"), 1, NO_SLEEP, True),
    ("429-http-date-past", lambda: Fault.rate_limited(http_date(-timedelta(hours=1))), MAX_ATTEMPTS, BACKOFF, False),
    ("429-http-date-beyond-cap", lambda: Fault.rate_limited(http_date(timedelta(hours=1))), 1, NO_SLEEP, False),
    ("429-retry-after-fraction", lambda: Fault.rate_limited("0.25"), MAX_ATTEMPTS, ((0.25, 0.5), (0.25, 1.0)), False),
    ("429-retry-after-at-cap", lambda: Fault.rate_limited("5"), MAX_ATTEMPTS, ((5.0, 5.0), (5.0, 5.0)), False),
    ("429-retry-after-over-cap", lambda: Fault.rate_limited("5.5"), 1, NO_SLEEP, False),
    ("429-no-retry-after", lambda: Fault.rate_limited(None), MAX_ATTEMPTS, BACKOFF, False),
    ("500-get_failed", Fault.server_error, MAX_ATTEMPTS, BACKOFF, True),
    ("502-html", lambda: Fault.html(502), MAX_ATTEMPTS, BACKOFF, True),
    ("503-html", lambda: Fault.html(503), MAX_ATTEMPTS, BACKOFF, False),
    ("504-html", lambda: Fault.html(504), MAX_ATTEMPTS, BACKOFF, False),
    ("connection-reset", Fault.reset, MAX_ATTEMPTS, BACKOFF, True),
    ("truncated-json", Fault.truncated_json, MAX_ATTEMPTS, BACKOFF, True),
    ("200-ok-false", Fault.not_ok, MAX_ATTEMPTS, BACKOFF, True),
    ("200-empty-body", lambda: Fault.raw(200, b""), MAX_ATTEMPTS, BACKOFF, False),
    ("200-html", lambda: Fault.raw(200, b"<html>maintenance</html>"), MAX_ATTEMPTS, BACKOFF, False),
    ("200-json-not-an-envelope", lambda: Fault.raw(200, b"[1, 2]"), MAX_ATTEMPTS, BACKOFF, False),
    ("418-unexpected-status", lambda: Fault.raw(418, b'{"ok": false}'), MAX_ATTEMPTS, BACKOFF, False),
]


@pytest.mark.parametrize(
    ("make_fault", "calls", "backoffs"),
    [pytest.param(*case[1:4], id=case[0]) for case in TRANSIENT if case[4]],
)
def test_transient_fault_on_one_post_is_retried_within_bounds_and_repaired_next_tick(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    sleeps: list[float],
    make_fault: Callable[[], Fault],
    calls: int,
    backoffs: tuple[tuple[float, float], ...],
) -> None:
    batch = prepare(emulator, runner, stack)
    emulator.inject(make_fault(), post_id=batch.faulty, times=MAX_ATTEMPTS)

    assert tick_with_fault(emulator, runner, stack, batch) == calls
    assert_sleeps(sleeps, backoffs)
    assert_recovers_exactly_once(emulator, runner, stack, batch)


def test_fault_fewer_times_than_the_attempts_is_absorbed_within_the_tick(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, sleeps: list[float]
) -> None:
    batch = prepare(emulator, runner, stack)
    emulator.inject(Fault.server_error(), post_id=batch.faulty, times=MAX_ATTEMPTS - 1)
    calls_before = emulator.calls(batch.faulty)

    assert runner.tick()["enqueued"] == 3 + SYNC
    runner.drain_work_queue()

    received = drain(stack)
    assert_same_events_on_both_targets(received)
    assert [key for key in event_keys(received.sns_documents()) if key[0] == batch.faulty] == [
        (batch.faulty, batch.faulty_account, "posted")
    ]
    assert len(received.sns) == 6  # each post's transition and completion
    assert event_kinds(received.sns_documents()) == posted_and_completed([batch.faulty, *batch.others])
    assert emulator.calls(batch.faulty) - calls_before == MAX_ATTEMPTS
    assert_sleeps(sleeps, BACKOFF)
    assert runner.tick()["enqueued"] == SYNC


def test_hang_beyond_the_read_timeout_is_retried_within_bounds(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = prepare(emulator, runner, stack)
    # The production read timeout is 10 s; the worker built for the faulty tick gets 0.15 s (the same path).
    defaults = GenviralClient.__init__.__kwdefaults__
    monkeypatch.setitem(defaults, "settings", ClientSettings(read_timeout=0.15))
    emulator.inject(Fault.hang(2.0), post_id=batch.faulty, times=MAX_ATTEMPTS)

    assert tick_with_fault(emulator, runner, stack, batch) == MAX_ATTEMPTS
    assert_sleeps(sleeps, BACKOFF)
    monkeypatch.setitem(defaults, "settings", None)  # the deployed settings again for the recovery tick
    assert_recovers_exactly_once(emulator, runner, stack, batch)


# ---------------------------------------------------------------- contract errors: one call, skipped, logged


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation of the post document: set `a.b.0.c` to `value` (`...` deletes it)."""

    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is ...:
            del node[key]
        else:
            node[key] = value

    return mutate


def _duplicate_account(document: dict[str, Any]) -> None:
    states = document["accounts"]["states"]
    failed_twin = {**copy.deepcopy(states[0]), "status": "failed", "error_message": "twin"}
    document["accounts"].update(states=[states[0], failed_twin], total=2)


def _other_post_id(document: dict[str, Any]) -> None:
    document["id"] = "99999999-9999-4999-8999-999999999999"


def _huge(document: dict[str, Any]) -> None:
    document["caption"] = "x" * (2 * 1024 * 1024 + 1)


# (name, the answer's `data`: a literal or a change to the current post document, in the batch scenario too)
CONTRACT_ERRORS: list[tuple[str, Any, bool]] = [
    ("data-null", None, True),
    ("data-list", [], False),
    ("data-string", "post", False),
    ("accounts-missing", _set("accounts", ...), True),
    ("accounts-null", _set("accounts", None), False),
    ("accounts-list", _set("accounts", []), False),
    ("states-missing", _set("accounts.states", ...), False),
    ("states-null", _set("accounts.states", None), False),
    ("states-string", _set("accounts.states", "posted"), False),
    ("total-string", _set("accounts.total", "many"), False),
    ("state-string", _set("accounts.states.0", "posted"), False),
    ("status-missing", _set("accounts.states.0.status", ...), False),
    ("status-null", _set("accounts.states.0.status", None), False),
    ("status-number", _set("accounts.states.0.status", 42), True),
    ("status-list", _set("accounts.states.0.status", ["failed"]), False),
    ("status-empty", _set("accounts.states.0.status", ""), False),
    ("account-id-missing", _set("accounts.states.0.account_id", ...), False),
    ("account-id-null", _set("accounts.states.0.account_id", None), False),
    ("published-at-number", _set("accounts.states.0.published_at", 1_700_000_000), False),
    ("last-attempted-at-object", _set("accounts.states.0.last_attempted_at", {"at": "now"}), False),
    ("post-status-missing", _set("status", ...), False),
    ("post-status-null", _set("status", None), False),
    ("id-missing", _set("id", ...), False),
    ("id-number", _set("id", 123), False),
    ("id-of-another-post", _other_post_id, False),
    ("video-without-url", _set("media", {"type": "video"}), False),
    ("slideshow-urls-string", _set("media", {"type": "slideshow", "urls": "a.jpg"}), False),
    ("duplicate-account-ids", _duplicate_account, True),
    ("body-over-2MiB", _huge, True),
]


def malformed(emulator: GenviralEmulator, post_id: str, change: Any) -> Fault:
    """The current answer for the post (its account already posted), broken by `change`."""
    if callable(change):
        data = emulator.post_json(post_id)
        change(data)
        return Fault.body(data)
    return Fault.body(change)


def deferred_logs(secret_sentinel: SecretSentinel) -> list[dict[str, Any]]:
    """The relay's "Post check deferred" lines, as Powertools writes them (JSON)."""
    return [
        json.loads(line)
        for name, text in secret_sentinel.rendered
        for line in text.splitlines()
        if name == "genviral-relay" and line.startswith('{"') and '"Post check deferred"' in line
    ]


@pytest.mark.parametrize("change", [pytest.param(case[1], id=case[0]) for case in CONTRACT_ERRORS if case[2]])
def test_malformed_post_is_skipped_once_with_a_contract_error(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    sleeps: list[float],
    secret_sentinel: SecretSentinel,
    change: Any,
) -> None:
    batch = prepare(emulator, runner, stack)
    emulator.inject(malformed(emulator, batch.faulty, change), post_id=batch.faulty, times=MAX_ATTEMPTS)
    secret_sentinel.clear()

    assert tick_with_fault(emulator, runner, stack, batch) == 1  # not retried
    assert sleeps == []
    assert [(line["post_id"], line["error_type"], line["level"]) for line in deferred_logs(secret_sentinel)] == [
        (batch.faulty, "GenviralContractError", "ERROR")
    ]
    assert_recovers_exactly_once(emulator, runner, stack, batch)


# ---------------------------------------------------------------- every variant, on one post, through a warm worker


def check_once(runner: LocalRunner, stack: MotoStack, post_id: str) -> None:
    """What a tick does for one due post, without the poller: one check request through the worker."""
    stack.client("sqs").send_message(QueueUrl=stack.ref("WorkQueue"), MessageBody=json.dumps({"post_id": post_id}))
    report = runner.drain_work_queue()
    assert (report.processed, report.failed) == (1, 0)


def test_every_fault_variant_is_bounded_and_changes_nothing(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    sleeps: list[float],
    secret_sentinel: SecretSentinel,
) -> None:
    post_id, (account_id,) = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    emulator.mark_posted(post_id, account_id)
    before = stored_item(stack, post_id)
    secret_sentinel.clear()
    expected_errors: list[str] = []

    for name, make_fault, calls, backoffs, _ in TRANSIENT:
        emulator.inject(make_fault(), post_id=post_id, times=MAX_ATTEMPTS)
        calls_before, sleeps[:] = emulator.calls(post_id), []
        check_once(runner, stack, post_id)
        assert emulator.calls(post_id) - calls_before == calls, name
        assert_sleeps(sleeps, backoffs)
        assert stored_item(stack, post_id) == before, name
        emulator.clear_faults()
        expected_errors.append("transient")
    for name, change, _ in CONTRACT_ERRORS:
        emulator.inject(malformed(emulator, post_id, change), post_id=post_id, times=MAX_ATTEMPTS)
        calls_before, sleeps[:] = emulator.calls(post_id), []
        check_once(runner, stack, post_id)
        assert emulator.calls(post_id) - calls_before == 1, name
        assert sleeps == [], name
        assert stored_item(stack, post_id) == before, name
        emulator.clear_faults()
        expected_errors.append("GenviralContractError")

    assert drain(stack).event_ids() == ([], [])
    logged = deferred_logs(secret_sentinel)
    assert [line["post_id"] for line in logged] == [post_id] * len(expected_errors)
    assert [
        "transient"
        if line["level"] == "WARNING" and line["error_type"] != "GenviralContractError"
        else line["error_type"]
        for line in logged
    ] == expected_errors
    check_once(runner, stack, post_id)
    received = drain(stack)
    assert_same_events_on_both_targets(received)
    assert [(d["post_id"], d["status"]) for d in received.sns_transitions()] == [(post_id, "posted")]
    assert event_kinds(received.sns_documents()) == posted_and_completed([post_id])


# ---------------------------------------------------------------- tolerated oddities: stored, never an event


def test_empty_states_list_keeps_the_known_accounts_and_emits_nothing(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, sleeps: list[float]
) -> None:
    batch = prepare(emulator, runner, stack)
    data = copy.deepcopy(batch.baseline)
    data["accounts"] = {"total": 0, "states": []}
    emulator.inject(Fault.body(data), post_id=batch.faulty, times=MAX_ATTEMPTS)

    assert tick_with_fault(emulator, runner, stack, batch) == 1
    assert sleeps == []
    assert_recovers_exactly_once(emulator, runner, stack, batch)


def test_unknown_account_status_is_stored_as_a_string_and_never_an_event(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    batch = prepare(emulator, runner, stack)
    emulator.set_account_state(batch.faulty, batch.faulty_account, status="deleted_by_platform")

    assert runner.tick()["enqueued"] == 3 + SYNC
    runner.drain_work_queue()

    received = drain(stack)
    assert_same_events_on_both_targets(received)
    assert batch.faulty not in {document["post_id"] for document in received.sns_documents()}
    assert event_kinds(received.sns_documents()) == posted_and_completed(batch.others)
    watch = runner.api("GET", f"/watches/{batch.faulty}").body
    assert [(a["account_id"], a["status"]) for a in watch["accounts"]] == [
        (batch.faulty_account, "deleted_by_platform")
    ]
    assert watch["watching"] is True

    # Still due every tick; a later real outcome is one event, from the unknown status.
    emulator.mark_posted(batch.faulty, batch.faulty_account)
    assert runner.tick()["enqueued"] == 1 + SYNC
    runner.drain_work_queue()
    received = drain(stack)
    assert_same_events_on_both_targets(received)
    assert event_kinds(received.sns_documents()) == posted_and_completed([batch.faulty])
    (document,) = received.sns_transitions()
    assert (document["post_id"], document["previous_status"], document["status"]) == (
        batch.faulty,
        "deleted_by_platform",
        "posted",
    )
    assert runner.tick()["enqueued"] == SYNC


# ---------------------------------------------------------------- the API answers in time, whatever Genviral does


def deferred_registration(runner: LocalRunner, stack: MotoStack, post_id: str) -> dict[str, Any]:
    """POST /watches while Genviral gives no usable answer: 202 `deferred`, the watch stored and due now."""
    answer = runner.api("POST", "/watches", {"post_id": post_id})
    assert answer.status == 202, answer.body
    assert answer.body["result"] == "deferred"
    assert answer.body["watch"]["post_id"] == post_id
    assert stored_item(stack, post_id)["watching"] == {"BOOL": True}
    return dict(answer.body)


def assert_checked_later(emulator: GenviralEmulator, runner: LocalRunner, post_id: str) -> None:
    """Once Genviral answers, the kept watch is checked as any other."""
    emulator.clear_faults()
    emulator.release_hangs()
    answer = runner.api("POST", f"/watches/{post_id}/check")
    assert answer.status == 200, answer.body
    assert [account["status"] for account in answer.body["watch"]["accounts"]] == ["scheduled"]


@pytest.mark.parametrize(
    "make_fault",
    [Fault.hang, lambda: Fault.trickle(0.02), lambda: Fault.trickle(0.05, head=True)],
    ids=["hang", "trickle", "trickled-head"],
)
def test_the_api_answers_202_within_the_calls_deadline_and_keeps_the_watch(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    monkeypatch: pytest.MonkeyPatch,
    make_fault: Callable[[], Fault],
) -> None:
    # Deployed, a call ends within 20 s (three 10 s read timeouts took 30.5 s); here within 0.5 s.
    monkeypatch.setitem(
        GenviralClient.__init__.__kwdefaults__, "settings", ClientSettings(read_timeout=5.0, call_deadline=0.5)
    )
    post_id = emulator.create_post()
    emulator.inject(make_fault(), post_id=post_id, times=MAX_ATTEMPTS)
    started = time.monotonic()

    deferred_registration(runner, stack, post_id)

    assert time.monotonic() - started < 3.0  # 0.5 s and the stack's writes; each missed deadline costs 5 s
    assert emulator.calls(post_id) == 1
    monkeypatch.setitem(GenviralClient.__init__.__kwdefaults__, "settings", None)
    assert_checked_later(emulator, runner, post_id)


def test_the_api_leaves_itself_time_to_answer_from_the_lambda_context(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed client (20 s a call, 10 s a read) in a function with 1 s to spare beyond the time it keeps
    for answering: Genviral is given that second."""
    from genviral_relay.api.watches import ANSWER_MARGIN_SECONDS

    timeout = stack.timeout_seconds
    monkeypatch.setattr(
        stack, "timeout_seconds", lambda logical_id: int(ANSWER_MARGIN_SECONDS) + 1 if logical_id == "ApiFunction"
        else timeout(logical_id),
    )  # fmt: skip
    post_id = emulator.create_post()
    emulator.inject(Fault.hang(), post_id=post_id, times=MAX_ATTEMPTS)
    started = time.monotonic()

    deferred_registration(runner, stack, post_id)

    assert time.monotonic() - started < 4.0  # 1 s and the stack's writes; the read timeout alone is 10 s
    monkeypatch.undo()
    assert_checked_later(emulator, runner, post_id)


@pytest.mark.parametrize("status", [200, 500])
def test_json_nested_100k_deep_defers_the_registration_and_keeps_the_watch(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, sleeps: list[float], status: int
) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.nested(100_000, status=status), post_id=post_id, times=MAX_ATTEMPTS)

    body = deferred_registration(runner, stack, post_id)

    error = "GenviralContractError" if status == 200 else "GenviralServerError"
    assert f"deferred to a later tick: {error}" in body["message"]
    assert_checked_later(emulator, runner, post_id)


def test_a_huge_genviral_error_message_is_cut_in_the_answer_and_every_log_line(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    sleeps: list[float],
    secret_sentinel: SecretSentinel,
) -> None:
    message = "Genviral could not read the post: " + "x" * 1_500_000
    post_id = emulator.create_post()
    emulator.inject(Fault.error(500, message), post_id=post_id, times=MAX_ATTEMPTS)
    secret_sentinel.clear()

    answer = runner.api("POST", "/watches", {"post_id": post_id})

    assert answer.status == 202
    assert len(json.dumps(answer.body)) < 1024
    assert "Genviral could not read the post: xxx" in answer.body["message"]
    lines = [  # as Powertools writes them
        line for name, text in secret_sentinel.rendered if name == "genviral-relay"
        for line in text.splitlines() if line.startswith('{"')
    ]  # fmt: skip
    assert any("Genviral could not read the post: xxx" in line for line in lines)
    assert [len(line) for line in lines if len(line) >= 1200] == []  # its own keys and 500 characters of the message
    assert max(len(text) for _, text in secret_sentinel.rendered) < 3000  # any record, its extras rendered twice
    assert_checked_later(emulator, runner, post_id)
