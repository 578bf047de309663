"""The fault matrix: every fault the relay must survive, as repeatable trials with an audit.

Each scenario builds random posts in the Genviral emulator, lets Genviral deliver and fail them,
drives the relay through the fault, then lets it settle (fault cleared, later ticks) and audits
what the subscribers of both targets received against what happened upstream. `make reliability`
runs many trials and prints one row per fault; the test suite runs each scenario once.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from genviral_relay import factories
from local.emulator import Fault, GenviralEmulator
from local.runner import LocalRunner, api_gateway_event
from local.stack import MotoStack
from tests.support.ledger import Audit, Ledger
from tests.support.seams import SEAMS, RelayRig

TOKEN = "gva_live_faults.0123456789abcdef"


class TickingClock:
    """Genviral's clock: a second later at every reading, so every attempt has its own time."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=1)
            return self._now


@dataclass
class Trial:
    rng: random.Random
    emulator: GenviralEmulator
    stack: MotoStack
    rig: RelayRig
    ledger: Ledger = field(default_factory=Ledger)
    posts: list[str] = field(default_factory=list)
    bad_inputs: int = 0

    def new_posts(self, count: int) -> list[str]:
        """Posts in their publishing window with 1-4 accounts, registered with the relay."""
        created = []
        for _ in range(count):
            post_id = self.emulator.create_post(
                accounts=self.rng.randint(1, 4), scheduled_at=datetime.now(UTC) - timedelta(minutes=1)
            )
            self.ledger.observe(self.emulator.post_json(post_id))
            self.rig.check(post_id, trigger="register")
            created.append(post_id)
        self.posts.extend(created)
        return created

    def deliver_some(self, posts: list[str]) -> None:
        """Genviral posts or fails a random subset of the accounts."""
        for post_id in posts:
            for account_id in self.emulator.account_ids(post_id):
                roll = self.rng.random()
                if roll < 0.5:
                    self.emulator.mark_posted(post_id, account_id)
                elif roll < 0.8:
                    self.emulator.mark_failed(post_id, account_id, error_message="rejected by the platform")
            self.ledger.observe(self.emulator.post_json(post_id))

    def tick(self) -> bool:
        return self.rig.tick(ahead=timedelta(minutes=30))

    def finish(self) -> Audit:
        self.emulator.clear_faults()
        self.rig.settle(self.posts)
        self.rig.collect()
        return self.ledger.audit(
            {"sns": self.rig.delivered.sns, "eventbridge": self.rig.delivered.eventbridge}, self.rig.dead_lettered
        )


# ---------------------------------------------------------------------- scenarios
Scenario = Callable[[Trial], None]


def crash_at(seam: str, *, mid_batch: bool = False) -> Scenario:
    def scenario(trial: Trial) -> None:
        posts = trial.new_posts(trial.rng.randint(2, 4))
        trial.deliver_some(posts)
        trial.rig.seams.arm(seam, after=trial.rng.randint(1, len(posts) - 1) if mid_batch else 0)
        trial.tick()
        trial.tick()  # the next tick repairs what the crash left

    return scenario


def late_url(seam: str, *, when: str) -> Scenario:
    """Accounts posted without a URL that the platform gives later, with a crash at `seam` either in the check
    that records the posting (`when="posting"`) or in the one that finds the URL (`when="url"`)."""

    def scenario(trial: Trial) -> None:
        posts = trial.new_posts(trial.rng.randint(1, 3))
        for post_id in posts:
            for account_id in trial.emulator.account_ids(post_id):
                if trial.rng.random() < 0.7:
                    trial.emulator.mark_posted(post_id, account_id, published_url=None)
            trial.ledger.observe(trial.emulator.post_json(post_id))
        if when == "posting":
            trial.rig.seams.arm(seam)
        trial.tick()
        for post_id in posts:
            for state in trial.emulator.post_json(post_id)["accounts"]["states"]:
                if state["status"] == "posted":
                    trial.emulator.resolve_url(post_id, state["account_id"])
            trial.ledger.observe(trial.emulator.post_json(post_id))
        if when == "url":
            trial.rig.seams.arm(seam)
        trial.tick()
        trial.tick()  # the next tick repairs what the crash left

    return scenario


def two_workers_race(trial: Trial) -> None:
    posts = trial.new_posts(trial.rng.randint(1, 3))
    trial.deliver_some(posts)
    _concurrently([lambda: trial.rig.work(posts), lambda: trial.rig.work(list(reversed(posts)))])


def same_message_twice(trial: Trial) -> None:
    posts = trial.new_posts(trial.rng.randint(1, 3))
    trial.deliver_some(posts)
    trial.rig.work(posts)
    trial.rig.work(posts)


def account_listing_fails(trial: Trial) -> None:
    # A listing that fails is no listing: nothing is announced, however it fails, and the next good one neither.
    trial.new_posts(2)
    trial.rig.check_accounts()
    for fault in (Fault.server_error(), Fault.truncated_json(), Fault.html(502), Fault.not_ok()):
        trial.emulator.inject(fault, accounts=True)
        trial.rig.check_accounts()
        trial.bad_inputs += 1
    trial.rig.check_accounts()


def account_crash(seam: str) -> Scenario:
    # An account watched posts target is revoked: the check that finds it dies after its commit, or between the
    # targets; later listings and the flush publish it under its one id.
    def scenario(trial: Trial) -> None:
        posts = trial.new_posts(2)
        trial.rig.check_accounts()
        victim = trial.emulator.account_ids(posts[0])[0]
        trial.emulator.list_inactive_accounts = True
        trial.emulator.set_account(victim, status="revoked")
        trial.ledger.expect_account_change(victim, "account.disconnected", "revoked")
        trial.rig.seams.arm(seam)
        trial.rig.check_accounts()
        trial.rig.check_accounts()

    return scenario


def tick_overlaps_check_now(trial: Trial) -> None:
    posts = trial.new_posts(2)
    trial.deliver_some(posts)
    _concurrently([trial.tick, lambda: [trial.rig.check(post_id, trigger="manual") for post_id in posts]])


class FlakyClient:
    """A boto3 client whose publish calls fail in a chosen way a number of times, then behave."""

    def __init__(self, inner: Any, operation: str, failure: Callable[[dict[str, Any]], dict[str, Any]], times: int):
        self._inner = inner
        self._operation = operation
        self._failure = failure
        self.remaining = times

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._inner, name)
        if name != self._operation:
            return real

        def call(**kwargs: Any) -> Any:
            if self.remaining > 0:
                self.remaining -= 1
                return self._failure(kwargs)
            return real(**kwargs)

        return call


def _throttled_entries(request: dict[str, Any]) -> dict[str, Any]:
    codes = ["ThrottlingException", "InternalFailure"]
    return {
        "FailedEntryCount": len(request["Entries"]),
        "Entries": [{"ErrorCode": codes[i % 2], "ErrorMessage": "try again"} for i, _ in enumerate(request["Entries"])],
    }


def _sns_failed_entries(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "Successful": [],
        "Failed": [
            {"Id": entry["Id"], "Code": "InternalError", "SenderFault": False}
            for entry in request["PublishBatchRequestEntries"]
        ],
    }


def _unavailable(request: dict[str, Any]) -> dict[str, Any]:
    raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "PutEvents")


def flaky_target(target: str, failure: Callable[[dict[str, Any]], dict[str, Any]], times: int) -> Scenario:
    def scenario(trial: Trial) -> None:
        stack = trial.stack
        if target == "sns":
            trial.rig = RelayRig(
                stack,
                trial.emulator.base_url,
                sns_client=FlakyClient(stack.client("sns"), "publish_batch", failure, times),
            )
        else:
            trial.rig = RelayRig(
                stack,
                trial.emulator.base_url,
                events_client=FlakyClient(stack.client("events"), "put_events", failure, times),
            )
        posts = trial.new_posts(trial.rng.randint(1, 3))
        trial.deliver_some(posts)
        for _ in range(3):
            trial.tick()

    return scenario


def refused_for_good(trial: Trial) -> None:
    # An event over the targets' size limit: parked in the events DLQ with the reason, never dropped.
    post_id = trial.emulator.create_post(
        accounts=1, caption="x" * 300_000, scheduled_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    trial.posts.append(post_id)
    trial.rig.check(post_id, trigger="register")
    trial.deliver_some([post_id])
    trial.tick()


UPSTREAM_FAULTS: dict[str, Callable[[], Fault]] = {
    "429 Retry-After seconds": lambda: Fault.rate_limited("1"),
    "429 Retry-After HTTP date": lambda: Fault.rate_limited("Wed, 21 Oct 2015 07:28:00 GMT"),
    "429 Retry-After 0": lambda: Fault.rate_limited("0"),
    "429 Retry-After negative": lambda: Fault.rate_limited("-5"),
    "429 Retry-After huge": lambda: Fault.rate_limited("99999"),
    "429 Retry-After garbage": lambda: Fault.rate_limited("soon"),
    "500 get_failed": Fault.server_error,
    "502 HTML": lambda: Fault.html(502),
    "504 HTML": lambda: Fault.html(504),
    "read timeout": lambda: Fault.hang(2.0),
    "connection reset": Fault.reset,
    "truncated JSON": Fault.truncated_json,
    "ok false with 200": Fault.not_ok,
}


def upstream_fault(make_fault: Callable[[], Fault]) -> Scenario:
    def scenario(trial: Trial) -> None:
        posts = trial.new_posts(trial.rng.randint(2, 3))
        trial.deliver_some(posts)
        victim = trial.rng.choice(posts)
        trial.emulator.inject(make_fault(), post_id=victim, times=10)
        before = trial.emulator.pending_faults()
        trial.tick()
        trial.bad_inputs += before - trial.emulator.pending_faults()

    return scenario


def garbage_post(mangle: Callable[[dict[str, Any]], Any]) -> Scenario:
    def scenario(trial: Trial) -> None:
        posts = trial.new_posts(trial.rng.randint(2, 3))
        trial.deliver_some(posts)
        victim = trial.rng.choice(posts)
        trial.emulator.inject(Fault.body(mangle(trial.emulator.post_json(victim))), post_id=victim, times=3)
        trial.tick()
        trial.bad_inputs += 1

    return scenario


def _without(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda post: {k: v for k, v in post.items() if k != key}


def _mistyped(post: dict[str, Any]) -> Any:
    return {**post, "accounts": {"total": "two", "states": "none"}}


def _nulls(post: dict[str, Any]) -> Any:
    return {**post, "status": None, "accounts": None}


def _duplicate_accounts(post: dict[str, Any]) -> Any:
    states = post["accounts"]["states"]
    return {**post, "accounts": {"total": len(states) + 1, "states": [*states, {**states[0], "status": "failed"}]}}


def _huge(post: dict[str, Any]) -> Any:
    return {**post, "caption": "x" * (3 * 1024 * 1024)}


def unknown_status(trial: Trial) -> None:
    posts = trial.new_posts(2)
    for post_id in posts:
        account_id = trial.emulator.account_ids(post_id)[0]
        trial.emulator.set_account_state(post_id, account_id, status="processing-by-provider")
        trial.ledger.observe(trial.emulator.post_json(post_id))
    trial.deliver_some(posts[1:])
    trial.tick()


def empty_states(trial: Trial) -> None:
    posts = trial.new_posts(2)
    trial.deliver_some(posts)
    victim = posts[0]
    trial.emulator.inject(
        Fault.body({**trial.emulator.post_json(victim), "accounts": {"total": 0, "states": []}}), post_id=victim
    )
    trial.tick()
    trial.bad_inputs += 1


def rotated_token(trial: Trial) -> None:
    posts = trial.new_posts(2)
    trial.deliver_some(posts)
    trial.emulator.tokens = {TOKEN + ".rotated"}
    trial.stack.rotate_token(TOKEN + ".rotated")
    trial.tick()


def key_refused(plan_error: str | None) -> Scenario:
    def scenario(trial: Trial) -> None:
        posts = trial.new_posts(2)
        trial.deliver_some(posts)
        if plan_error is None:
            trial.emulator.tokens = {"gva_live_other.revoked"}
        else:
            trial.emulator.plan_error = plan_error
        trial.tick()
        trial.bad_inputs += 1
        trial.emulator.tokens = {TOKEN}
        trial.emulator.plan_error = None

    return scenario


def secret_unreadable(trial: Trial) -> None:
    posts = trial.new_posts(2)
    trial.deliver_some(posts)
    secrets = trial.stack.client("secretsmanager")
    secrets.put_secret_value(SecretId=trial.stack.secret_arn, SecretString='{"not_the_token": 1}')
    trial.rig = RelayRig(trial.stack, trial.emulator.base_url)  # a cold function: no token cached
    trial.tick()
    trial.bad_inputs += 1
    secrets.put_secret_value(SecretId=trial.stack.secret_arn, SecretString=TOKEN)
    trial.rig = RelayRig(trial.stack, trial.emulator.base_url)


HOSTILE_REQUESTS: list[tuple[str, str, str | None]] = [
    ("POST", "/watches", json.dumps({"post_id": "not-a-uuid"})),
    ("POST", "/watches", json.dumps({"post_id": "../../../etc/passwd"})),
    ("POST", "/watches", json.dumps({"post_id": 42})),
    ("POST", "/watches", json.dumps({"post_id": None})),
    ("POST", "/watches", json.dumps([1, 2])),
    ("POST", "/watches", "{not json"),
    ("POST", "/watches", None),
    ("POST", "/watches", json.dumps({"post_id": "x" * 10_000})),
    ("GET", "/watches/%2e%2e%2f%2e%2e", None),
    ("GET", "/watches/" + "9" * 500, None),
    ("POST", "/watches/robert');DROP TABLE posts;--/check", None),
    ("DELETE", "/watches/{11111111-1111-1111-1111-111111111111}", None),
    ("PUT", "/watches", None),
    ("GET", "/admin", None),
]


def hostile_http(trial: Trial) -> None:
    runner = LocalRunner(trial.stack)
    for method, path, body in HOSTILE_REQUESTS:
        answer = runner.invoke("ApiFunction", api_gateway_event(trial.stack.template, method, path, body))
        document = json.loads(answer["body"])
        if not (400 <= answer["statusCode"] < 500 and document.get("error") and document.get("message")):
            raise AssertionError(f"{method} {path} answered {answer['statusCode']} {document}")
        trial.bad_inputs += 1
    factories.reset()


def poison_messages(trial: Trial) -> None:
    runner = LocalRunner(trial.stack)
    posts = trial.new_posts(1)
    trial.deliver_some(posts)
    sqs = trial.stack.client("sqs")
    bodies = ["not json", json.dumps({"unexpected": True}), json.dumps({"post_id": "nope"})]
    for body in [*bodies, json.dumps({"post_id": posts[0]})]:
        sqs.send_message(QueueUrl=trial.stack.ref("WorkQueue"), MessageBody=body)
    receives = trial.stack.template["Resources"]["WorkQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    runner.drain_work_queue(max_batches=receives + 2)
    dead = sqs.receive_message(QueueUrl=trial.stack.ref("WorkDLQ"), MaxNumberOfMessages=10).get("Messages", [])
    if sorted(message["Body"] for message in dead) != sorted(bodies):
        raise AssertionError(f"the work DLQ holds {[m['Body'] for m in dead]}")
    trial.bad_inputs += len(bodies)
    factories.reset()


SCENARIOS: dict[str, Scenario] = {
    **{f"crash {seam.replace('_', ' ')}": crash_at(seam) for seam in SEAMS},
    "crash in the middle of a batch": crash_at("after_commit", mid_batch=True),
    "crash between a posting without URL and its later URL": late_url("after_commit", when="posting"),
    "crash between detecting a late URL and publishing it": late_url("after_commit", when="url"),
    "crash between detecting an account disconnect and publishing it": account_crash("after_notice_commit"),
    "crash between the targets of an account disconnect": account_crash("between_targets"),
    "Genviral account listing fails": account_listing_fails,
    "two workers race on the same posts": two_workers_race,
    "same SQS message delivered twice": same_message_twice,
    "tick overlaps an API check-now": tick_overlaps_check_now,
    "PutEvents entries throttled": flaky_target("eventbridge", _throttled_entries, 2),
    "PublishBatch Failed[] entries": flaky_target("sns", _sns_failed_entries, 2),
    "EventBridge unavailable for a while": flaky_target("eventbridge", _unavailable, 6),
    "event refused for good (oversize)": refused_for_good,
    **{f"Genviral {name}": upstream_fault(make) for name, make in UPSTREAM_FAULTS.items()},
    "Genviral post without accounts": garbage_post(_without("accounts")),
    "Genviral post with null fields": garbage_post(_nulls),
    "Genviral post with mistyped fields": garbage_post(_mistyped),
    "Genviral post with duplicate accounts": garbage_post(_duplicate_accounts),
    "Genviral huge body": garbage_post(_huge),
    "Genviral unknown account status": unknown_status,
    "Genviral empty states list": empty_states,
    "401 once after rotation": rotated_token,
    "401 persistent": key_refused(None),
    "402 subscription_required": key_refused("subscription_required"),
    "403 tier_not_allowed": key_refused("tier_not_allowed"),
    "secret without a token": secret_unreadable,
    "hostile HTTP input": hostile_http,
    "poison SQS messages": poison_messages,
}


# ---------------------------------------------------------------------- running
@dataclass
class Row:
    fault: str
    trials: int = 0
    expected: int = 0
    completions: int = 0
    urls_resolved: int = 0
    delivered_sns: int = 0
    delivered_eventbridge: int = 0
    lost: int = 0
    duplicate_ids: int = 0
    committed_twice: int = 0
    """Transitions written by more than one commit (the conditional transaction lets one check win)."""
    unexpected: int = 0
    dead_lettered: int = 0
    crashes: int = 0
    bad_inputs: int = 0
    genviral_calls: int = 0

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicate_ids == 0 and self.committed_twice == 0 and self.unexpected == 0


def run_trial(name: str, seed: int) -> tuple[Audit, Trial, int]:
    """One trial of one scenario: (audit, the trial, Genviral calls)."""
    factories.reset()
    with (
        GenviralEmulator(tokens=[TOKEN], clock=TickingClock()) as emulator,
        MotoStack(genviral_api_url=emulator.base_url, token=TOKEN) as stack,
    ):
        trial = Trial(random.Random(seed), emulator, stack, RelayRig(stack, emulator.base_url))
        SCENARIOS[name](trial)
        audit = trial.finish()
        return audit, trial, len(emulator.requests_log)


def run_matrix(trials: int, names: list[str] | None = None, seed: int = 0) -> list[Row]:
    rows = []
    for name in names or list(SCENARIOS):
        row = Row(name)
        for index in range(trials):
            audit, trial, calls = run_trial(name, seed * 100_003 + index)
            row.trials += 1
            row.expected += audit.expected
            row.completions += audit.completions
            row.urls_resolved += audit.urls_resolved
            row.delivered_sns += audit.delivered["sns"]
            row.delivered_eventbridge += audit.delivered["eventbridge"]
            row.lost += audit.lost
            row.duplicate_ids += audit.duplicate_ids
            row.committed_twice += sum(1 for commits in trial.rig.store.committed.values() if commits > 1)
            row.unexpected += audit.unexpected
            row.dead_lettered += audit.dead_lettered
            row.bad_inputs += trial.bad_inputs
            row.crashes += len(trial.rig.seams.crashes)
            row.genviral_calls += calls
        rows.append(row)
    return rows


def format_table(rows: list[Row]) -> str:
    header = (
        "| fault | trials | transitions expected | completions expected | late URLs expected | delivered SNS "
        "| delivered EventBridge "
        "| dead-lettered | lost | duplicate ids | committed twice | events without a transition | crashes "
        "| bad inputs tried "
        "| Genviral calls |"
    )
    lines = [header, "|" + "---|" * 15]
    lines.extend(
        f"| {row.fault} | {row.trials} | {row.expected} | {row.completions} | {row.urls_resolved} "
        f"| {row.delivered_sns} | {row.delivered_eventbridge} | {row.dead_lettered} | {row.lost} | {row.duplicate_ids} "
        f"| {row.committed_twice} | {row.unexpected} | {row.crashes} "
        f"| {row.bad_inputs} "
        f"| {row.genviral_calls} |"
        for row in rows
    )
    return "\n".join(lines)


def _concurrently(jobs: list[Callable[[], object]]) -> None:
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], object]) -> None:
        barrier.wait()
        job()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
