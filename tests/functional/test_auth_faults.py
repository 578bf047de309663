"""Genviral refusing the key, and the key itself unreadable, through the real handlers.

The token is cached inside a function (Powertools parameters, per execution environment). The runner
gives each function a fresh environment whenever another function ran in between, so a warm worker
is kept by sending check requests to the work queue directly (no poller tick in between), and a
cold one by ticking first. Secrets Manager reads are counted on the SDK calls themselves.

The emulator and the stack are shared by the module's tests, reset between them (`SharedRig`).

The last tests prove the autouse secret sentinel of `tests/conftest.py` (no key in any log record).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from genviral_relay import factories
from genviral_relay.clock import utc_now
from genviral_relay.observability import logger as relay_logger
from genviral_relay.settings import WorkerSettings
from local.emulator import DEFAULT_TOKEN, GenviralEmulator
from local.runner import LocalRunner
from local.stack import ACCOUNT, MotoStack
from tests.conftest import SECRETS, SYNC, TOKEN, SecretSentinel
from tests.functional.shared_rig import SharedRig, stored_item
from tests.functional.subscribers import drain, transitions
from tests.functional.test_relay_flow import publishing_now

ROTATED = "gva_live_test.rotated-5f0e1d2c3b4a6978"


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


def register(emulator: GenviralEmulator, runner: LocalRunner, count: int) -> list[tuple[str, str]]:
    """`count` watched posts in their publishing window, one account each: [(post id, account id)]."""
    posts = []
    for _ in range(count):
        post_id, (account_id,) = publishing_now(emulator)
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
        posts.append((post_id, account_id))
    return posts


def queue_checks(runner: LocalRunner, stack: MotoStack, *post_ids: str) -> None:
    """Check requests straight to the worker (a warm one if the worker ran last)."""
    sqs = stack.client("sqs")
    for post_id in post_ids:
        sqs.send_message(QueueUrl=stack.ref("WorkQueue"), MessageBody=json.dumps({"post_id": post_id}))
    report = runner.drain_work_queue()
    assert (report.processed, report.failed) == (len(post_ids), 0)


def genviral_log(emulator: GenviralEmulator, since: int) -> list[tuple[str | None, int]]:
    """The post calls since `since` (the account listing an emitting check may add: `accounts_log`)."""
    records = emulator.requests_log[since:]
    return [(record.post_id, record.status) for record in records if not record.path.endswith("/accounts")]


def accounts_log(emulator: GenviralEmulator, since: int) -> list[int]:
    return [record.status for record in emulator.requests_log[since:] if record.path.endswith("/accounts")]


def relay_lines(secret_sentinel: SecretSentinel, message: str) -> list[dict[str, Any]]:
    """The relay's JSON log lines (as Powertools writes them) with this message."""
    return [
        json.loads(line)
        for name, text in secret_sentinel.rendered
        for line in text.splitlines()
        if name == "genviral-relay" and line.startswith('{"') and json.loads(line).get("message") == message
    ]


# ---------------------------------------------------------------- 401 once: the key rotated


def test_worker_recovers_from_one_401_after_rotation_with_one_forced_secret_read(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    secret_reads: list[str],
    secret_sentinel: SecretSentinel,
) -> None:
    (changed, changed_account), (quiet, _) = register(emulator, runner, 2)
    queue_checks(runner, stack, changed)  # a warm worker, holding the old token
    assert secret_reads.count(stack.secret_arn) == 2  # the API function's read, then the worker's

    # When the key is rotated in Genviral and in the secret, and one post changes
    SECRETS.add(ROTATED)
    emulator.tokens = {ROTATED}
    stack.rotate_token(ROTATED)
    emulator.mark_posted(changed, changed_account)
    reads_before, log_start = len(secret_reads), len(emulator.requests_log)
    queue_checks(runner, stack, changed)

    # Then the call gets a 401, the secret is read again once, and the retried call goes through
    assert secret_reads[reads_before:] == [stack.secret_arn]
    assert genviral_log(emulator, log_start) == [(changed, 401), (changed, 200)]
    assert accounts_log(emulator, log_start) == [200]  # naming the event's account: the new token, no 401
    # and the same warm worker keeps the new token: no 401, no read
    queue_checks(runner, stack, quiet)
    assert secret_reads[reads_before:] == [stack.secret_arn]
    assert genviral_log(emulator, log_start)[2:] == [(quiet, 200)]
    received = drain(stack)
    sns_ids, _ = received.event_ids()
    assert len(set(sns_ids)) == 2  # the transition and the post's completion
    assert received.event_ids() == (sns_ids, sns_ids)
    assert [(d["post_id"], d["event_type"]) for d in received.sns_documents()] == [
        (changed, "post.account.posted"),
        (changed, "post.completed"),
    ]
    assert [(d["post_id"], d["status"]) for d in received.sns_transitions()] == [(changed, "posted")]
    assert len(relay_lines(secret_sentinel, "Genviral answered 401; re-reading the token")) == 1
    # No pause: the next tick queues the still-unfinished post as usual (and a new poller's workspace sync).
    assert runner.tick() == {"enqueued": 1 + SYNC}


def test_api_recovers_from_one_401_after_rotation_with_one_forced_secret_read(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack, secret_reads: list[str]
) -> None:
    ((post_id, account_id),) = register(emulator, runner, 1)  # warms the API function's token cache
    SECRETS.add(ROTATED)
    emulator.tokens = {ROTATED}
    stack.rotate_token(ROTATED)
    emulator.mark_posted(post_id, account_id)
    reads_before, log_start = len(secret_reads), len(emulator.requests_log)

    answer = runner.api("POST", f"/watches/{post_id}/check")

    assert answer.status == 200
    assert [t["status"] for t in transitions(answer.body["transitions"])] == ["posted"]
    assert [t["event_type"] for t in answer.body["transitions"]] == ["post.account.posted", "post.completed"]
    assert secret_reads[reads_before:] == [stack.secret_arn]
    assert genviral_log(emulator, log_start) == [(post_id, 401), (post_id, 200)]
    assert accounts_log(emulator, log_start) == [200]  # naming the event's account: the new token, no 401
    assert drain(stack).event_ids() == (sorted(t["event_id"] for t in answer.body["transitions"]),) * 2


# ---------------------------------------------------------------- refusals: no state change, no event, pause


def refuse_401(emulator: GenviralEmulator, stack: MotoStack) -> None:
    emulator.tokens = {"gva_live_test.someone-else"}


def refuse_402(emulator: GenviralEmulator, stack: MotoStack) -> None:
    emulator.plan_error = "subscription_required"


def refuse_403(emulator: GenviralEmulator, stack: MotoStack) -> None:
    emulator.plan_error = "tier_not_allowed"


def secret_json_without_token(emulator: GenviralEmulator, stack: MotoStack) -> None:
    stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString='{"nope": "x"}')


def secret_token_under_another_key(emulator: GenviralEmulator, stack: MotoStack) -> None:
    secret = json.dumps({"api_key": TOKEN})
    stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=secret)


def secret_blank(emulator: GenviralEmulator, stack: MotoStack) -> None:
    stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString="   ")


def secret_deleted(emulator: GenviralEmulator, stack: MotoStack) -> None:
    stack.client("secretsmanager").delete_secret(SecretId=stack.secret_arn, ForceDeleteWithoutRecovery=True)


def fix(emulator: GenviralEmulator, stack: MotoStack) -> None:
    emulator.tokens = {TOKEN}
    emulator.plan_error = None
    stack.rotate_token(TOKEN)


REFUSALS = [
    # (break it, Genviral's answers to each post a thread tries, most secret reads per try, words of the reason)
    pytest.param(refuse_401, [401, 401], 2, ["Genviral refused the key (HTTP 401"], id="401-twice"),
    pytest.param(refuse_402, [402], 1, ["Genviral refused the key", "402 subscription_required"], id="402"),
    pytest.param(refuse_403, [403], 1, ["Genviral refused the key", "403 tier_not_allowed"], id="403"),
    pytest.param(secret_json_without_token, [], 1, ["the Genviral secret", "token"], id="secret-json-no-token"),
    pytest.param(secret_token_under_another_key, [], 1, ["the Genviral secret", "token"], id="secret-wrong-key"),
    pytest.param(secret_blank, [], 1, ["the Genviral secret is empty"], id="secret-blank"),
    pytest.param(
        secret_deleted,
        [],
        1,
        ["the Genviral secret could not be read (ResourceNotFoundException)"],
        id="secret-deleted",
    ),
]
POSTS = 3


def worker_threads(stack: MotoStack) -> int:
    return WorkerSettings.model_validate(stack.function_env("WorkerFunction")).threads_per_worker


@pytest.mark.parametrize(("break_it", "statuses", "reads", "words"), REFUSALS)
def test_refused_or_unreadable_key_changes_nothing_and_pauses_genviral_calls(
    emulator: GenviralEmulator,
    runner: LocalRunner,
    stack: MotoStack,
    secret_reads: list[str],
    secret_sentinel: SecretSentinel,
    monkeypatch: pytest.MonkeyPatch,
    break_it: Any,
    statuses: list[int],
    reads: int,
    words: list[str],
) -> None:
    threads = worker_threads(stack)
    assert threads < POSTS, "the batch must be larger than the worker's threads to show the skipped rest"
    posts = register(emulator, runner, POSTS)
    for post_id, account_id in posts:
        emulator.mark_posted(post_id, account_id)
    before = {post_id: stored_item(stack, post_id) for post_id, _ in posts}
    break_it(emulator, stack)
    reads_before, log_start = len(secret_reads), len(emulator.requests_log)

    # A tick: a cold worker reads the secret, tries at most one post per thread, is refused, skips the rest (then
    # syncs the workspaces, reading the secret once more)
    assert runner.tick() == {"enqueued": POSTS + SYNC}
    report = runner.drain_work_queue()

    assert (report.processed, report.failed) == (POSTS + SYNC, 0)
    calls = genviral_log(emulator, log_start)
    tried = sorted({post_id for post_id, _ in calls})
    assert len(tried) <= threads
    for post_id in tried:
        assert [status for called, status in calls if called == post_id] == statuses, calls
    new_reads = secret_reads[reads_before:-SYNC]
    assert set(secret_reads[reads_before:]) == {stack.secret_arn}
    attempts = len(tried) if statuses else len(new_reads)  # without a token no call is made: a try is a read
    assert 1 <= attempts <= threads
    # Threads starting together may each read the secret once; a 401 forces one more read per try.
    assert attempts * (reads - 1) + 1 <= len(new_reads) <= attempts * reads, new_reads
    assert {post_id: stored_item(stack, post_id) for post_id, _ in posts} == before
    # No event about a post; one relay.paused, with Genviral's status (none when the secret was unreadable)
    paused = drain(stack)
    (notice,) = paused.sns_documents()
    assert paused.eventbridge_documents() == [notice]
    assert (notice["event_type"], notice["http_status"]) == ("relay.paused", statuses[-1] if statuses else None)
    assert all(word in notice["reason"] for word in words), notice
    for aws_words in ("arn:", ACCOUNT, "GetSecretValue"):  # what AWS's error text would add
        assert aws_words not in notice["reason"]
    (message,) = paused.sns
    attributes = {name: value["Value"] for name, value in message["MessageAttributes"].items()}
    assert attributes.get("http_status") == (str(statuses[-1]) if statuses else None)
    (pause_line,) = relay_lines(secret_sentinel, "Genviral refused the key; pausing calls")
    assert pause_line["level"] == "ERROR"
    assert all(word in pause_line["reason"] for word in words), pause_line

    # The next tick queues nothing and says why; a check that reaches a worker anyway is not sent to Genviral
    tick = runner.tick()
    assert tick["enqueued"] == SYNC
    assert all(word in tick["paused"] for word in words), tick
    assert runner.drain_work_queue().failed == 0
    queue_checks(runner, stack, posts[0][0])
    assert genviral_log(emulator, log_start) == calls

    # The API answers 502 genviral_refused, with the reason and without the token; still nothing changes
    answer = runner.api("POST", f"/watches/{posts[0][0]}/check")
    assert answer.status == 502, answer.body
    assert answer.body["error"] == "genviral_refused"
    assert all(word in answer.body["message"] for word in words), answer.body
    for secret in (TOKEN, DEFAULT_TOKEN, "arn:", ACCOUNT):  # nor AWS's words about the secret
        assert secret not in json.dumps(answer.body)
    assert {post_id: stored_item(stack, post_id) for post_id, _ in posts} == before
    assert drain(stack).event_ids() == ([], [])  # nor a second relay.paused: the pause is the same

    if break_it is secret_deleted:
        return  # a force-deleted secret cannot come back under the same ARN
    # Once fixed and the pause is over, one tick delivers every pending transition exactly once.
    fix(emulator, stack)
    later = utc_now() + timedelta(minutes=6)
    monkeypatch.setattr(factories, "utc_now", lambda: later)  # the clock every function's use cases get
    assert runner.tick() == {"enqueued": POSTS + SYNC}
    runner.drain_work_queue()
    received = drain(stack)
    assert sorted(d["post_id"] for d in received.sns_transitions()) == sorted(post_id for post_id, _ in posts)
    resumed = [document for document in received.sns_documents() if document["event_type"] == "relay.resumed"]
    assert [(document["paused_at"], document["until"]) for document in resumed] == [(notice["paused_at"], None)]
    assert sorted(received.sns_event_types()) == sorted(
        ["post.account.posted", "post.completed"] * POSTS + ["relay.resumed"]
    )
    sns_ids, eventbridge_ids = received.event_ids()
    assert sns_ids == eventbridge_ids
    assert len(set(sns_ids)) == len(sns_ids) == 2 * POSTS + 1  # a transition and a completion per post, the resume


# ---------------------------------------------------------------- the log sentinel itself

UNPREFIXED = "sk-other-vendor.0f1e2d3c4b5a6978"  # a key without Genviral's prefix, known only through SECRETS
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda token: relay_logger.info(f"calling with {token}"), id="relay-message"),
        pytest.param(
            lambda token: relay_logger.info("calling", extra={"authorization": f"Bearer {token}"}), id="extra"
        ),
        pytest.param(lambda token: relay_logger.warning("calling %s", token), id="relay-args"),
        pytest.param(lambda token: logging.getLogger("urllib3.example").info("header %s", token), id="other-logger"),
        pytest.param(lambda token: logging.getLogger().error("root: %s", token), id="root-logger"),
    ],
)
@pytest.mark.parametrize("token", [TOKEN, DEFAULT_TOKEN, ROTATED, UNPREFIXED, WEBHOOK_SECRET])
def test_secret_sentinel_detects_a_planted_key(secret_sentinel: SecretSentinel, plant: Any, token: str) -> None:
    SECRETS.add(UNPREFIXED)
    secret_sentinel.check()  # clean so far

    plant(token)

    with pytest.raises(AssertionError, match="1 log record"):
        secret_sentinel.check()
    assert all(token not in leak for leak in secret_sentinel.leaks)  # reported masked
    secret_sentinel.clear()
    secret_sentinel.check()


def test_secret_sentinel_sees_appended_keys_and_exceptions(secret_sentinel: SecretSentinel) -> None:
    relay_logger.append_keys(authorization=f"Bearer {TOKEN}")
    try:
        relay_logger.info("a line with an appended key")  # the key is only in the Powertools JSON line
    finally:
        relay_logger.remove_keys(["authorization"])
    try:
        raise RuntimeError(f"token {TOKEN}")
    except RuntimeError:
        relay_logger.exception("failed")

    assert len(secret_sentinel.leaks) == 2
    secret_sentinel.clear()
    relay_logger.info("a line without any key", extra={"token_hint": "gva_live...cdef"})
    assert secret_sentinel.leaks == []
    assert [name for name, _ in secret_sentinel.rendered] == ["genviral-relay"]  # INFO records reach it


def test_secret_sentinel_knows_unprefixed_keys_only_through_secrets(secret_sentinel: SecretSentinel) -> None:
    relay_logger.info("unrelated %s", UNPREFIXED)
    assert secret_sentinel.leaks == []
    SECRETS.add(UNPREFIXED)
    relay_logger.info("now known %s", UNPREFIXED)
    assert len(secret_sentinel.leaks) == 1
    secret_sentinel.clear()
