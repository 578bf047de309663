"""The webhook faults of the fault matrix: each a repeatable trial with an audit of what the endpoints received.

A trial registers a few loopback endpoints (local/webhook_receiver.py: each delivery verified with the reference
`standardwebhooks` library), builds random posts in the Genviral emulator, lets the relay detect their outcomes
(the API's check) and fan them out, drives the webhook functions through one fault, then settles: the fault
cleared, the relay's clock moved through the whole retry schedule, every queued or delayed message delivered.

The audit, per endpoint: every event the relay stored (what its outbox put on the fan-out queue) of a type the
endpoint takes must have been received, verified and answered 2xx (`lost` otherwise; nothing here must park, so a
parked delivery is lost too); one event's content must never come under two `webhook-id`s; and no verified
delivery may carry a body that is not, byte for byte, a document the relay stored, under that document's id
(`forged signed`). `make reliability` prints one row per fault; the test suite runs each once, small.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError

from genviral_relay import factories, webhook_factories
from genviral_relay.clock import format_ts
from genviral_relay.models.events import parse_event, published_document
from genviral_relay.receivers import sender
from genviral_relay.rules.webhook_retries import RETRY_DELAYS
from local.emulator import GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from local.webhook_receiver import Delivery, WebhookReceiver
from tests.support.doubles import StaticResolver, SteppingClock
from tests.support.fault_matrix import TOKEN, FlakyClient, TickingClock
from tests.support.ledger import Ledger, OutcomeKey, outcome_of

TIMEOUT = 0.5
"""The sender's bound for an attempt in these trials (10 s in a deployment): short, so a trial stays quick."""
PACE = 0.1
"""Seconds between two bytes of a trickled answer: a 50-byte head takes 5 s, ten times the bound."""
HOST = "hooks-{index}.relay-test.invalid"
"""The endpoints' names (resolved by the trial's resolver to 127.0.0.1: no DNS)."""
EVENT_TYPES: list[list[str] | None] = [None, None, ["post.account.failed"], ["post.account.posted", "post.completed"]]

Misbehaviour = Callable[[socket.socket, threading.Event], None]
"""What an endpoint does instead of answering: writes to the connection (until `stopping` is set)."""


class FaultyEndpoint(WebhookReceiver):
    """A receiver that, for its next requests, misbehaves as told once it has read and verified the request; a
    request it misbehaved on is recorded with the answer "reset" (the relay got no usable answer)."""

    def __init__(self, *, clock: Callable[[], datetime], path: str) -> None:
        super().__init__(clock=clock, path=path)
        self._misbehaviours: deque[Misbehaviour] = deque()

    def misbehave(self, *misbehaviours: Misbehaviour) -> None:
        with self._lock:
            self._misbehaviours.extend(misbehaviours)

    def misbehave_no_more(self) -> None:
        with self._lock:
            self._misbehaviours.clear()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            misbehaviour = self._misbehaviours.popleft() if self._misbehaviours else None
        if misbehaviour is None:
            super()._handle(request)
            return
        body = request.rfile.read(int(request.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in request.headers.items()}
        delivery = Delivery(headers=headers, body=body, answer="reset", path=request.path)
        self._verify(delivery)
        with self._lock:
            self.received.append(delivery)
        request.close_connection = True
        try:
            misbehaviour(request.connection, self._release)
        except OSError:  # the sender gave up and closed the connection: what the fault is about
            return


def trickled(head: bytes, body: bytes = b"", *, fast: int = 0) -> Misbehaviour:
    """`head` and `body` one byte every PACE seconds, from the byte `fast` on (those before at once)."""

    def write(connection: socket.socket, stopping: threading.Event) -> None:
        answer = head + body
        connection.sendall(answer[:fast])
        for index in range(fast, len(answer)):
            if stopping.wait(PACE):
                return
            connection.sendall(answer[index : index + 1])

    return write


def reset_after(prefix: bytes) -> Misbehaviour:
    """`prefix` of an answer, then a connection reset (SO_LINGER 0, then close: an RST)."""

    def write(connection: socket.socket, _: threading.Event) -> None:
        connection.sendall(prefix)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    return write


SLOW_HEAD = trickled(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-slow: " + b"a" * 20 + b"\r\n\r\n")
_OK_60 = b"HTTP/1.1 200 OK\r\ncontent-length: 60\r\n\r\n"
SLOW_BODY = trickled(_OK_60, b"x" * 60, fast=len(_OK_60))
RESET_IN_HEAD = reset_after(b"HTTP/1.1 200 OK\r\ncontent-le")
RESET_IN_BODY = reset_after(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")


# ---------------------------------------------------------------------- the trial
@dataclass(frozen=True)
class Scale:
    """How many endpoints and posts (of 1-3 accounts) a trial makes, at random within these bounds."""

    endpoints: tuple[int, int]
    posts: tuple[int, int]


BENCH = Scale(endpoints=(2, 4), posts=(1, 3))
SMALL = Scale(endpoints=(2, 2), posts=(1, 1))
"""The test suite's: quick."""


@dataclass
class Endpoint:
    receiver: FaultyEndpoint
    webhook_id: str
    event_types: list[str] | None

    def takes(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


@dataclass
class WebhookTrial:
    rng: random.Random
    emulator: GenviralEmulator
    stack: MotoStack
    runner: LocalRunner
    clock: SteppingClock
    resolver: StaticResolver
    patches: ExitStack
    scale: Scale = BENCH
    endpoints: list[Endpoint] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    posts: list[str] = field(default_factory=list)
    bad_inputs: int = 0
    clearing: list[Callable[[], None]] = field(default_factory=list)
    """What clears the fault before the trial settles."""
    secrets: set[str] = field(default_factory=set)
    """Where each registration's signing secret is added (the test suite's log sentinel)."""

    def register(self, count: int) -> None:
        for _ in range(count):
            index = len(self.endpoints)
            receiver = FaultyEndpoint(clock=self.clock, path=f"/hooks/{index}")
            self.patches.enter_context(receiver)
            port = int(receiver.url.split(":")[2].split("/")[0])
            self.resolver.names[HOST.format(index=index)] = ["127.0.0.1"]
            event_types = self.rng.choice(EVENT_TYPES)
            url = f"http://{HOST.format(index=index)}:{port}/hooks/{index}"
            answer = self.runner.api("POST", "/webhooks", {"url": url, "event_types": event_types})
            if answer.status != 201:
                raise AssertionError(f"registration answered {answer.status} {answer.body}")
            self.secrets.add(answer.body["secret"].removeprefix("whsec_"))
            receiver.trust(answer.body["secret"])
            self.endpoints.append(Endpoint(receiver, answer.body["id"], event_types))

    def new_events(self, posts: int) -> None:
        """Watched posts of 1-3 accounts, some posted and some failed, then checked: the relay's events."""
        for _ in range(posts):
            post_id = self.emulator.create_post(
                accounts=self.rng.randint(1, 3), scheduled_at=factories.utc_now() - timedelta(minutes=1)
            )
            self._api("POST", "/watches", {"post_id": post_id}, 201)
            self.ledger.observe(self.emulator.post_json(post_id))
            for account_id in self.emulator.account_ids(post_id):
                if self.rng.random() < 0.5:
                    self.emulator.mark_posted(post_id, account_id, published_url="https://social.example/p/1")
                else:
                    self.emulator.mark_failed(post_id, account_id, error_message="Media rejected by platform")
            self.ledger.observe(self.emulator.post_json(post_id))
            self._api("POST", f"/watches/{post_id}/check", None, 200)
            self.posts.append(post_id)

    def _api(self, method: str, path: str, body: Any, status: int) -> None:
        answer = self.runner.api(method, path, body)
        if answer.status != status:
            raise AssertionError(f"{method} {path} answered {answer.status} {answer.body}")

    def deliver(self) -> None:
        self.runner.deliver_webhooks()

    def settle(self) -> None:
        """The fault cleared (by the caller), the clock moved through the whole schedule, everything delivered."""
        self.deliver()
        for wait in RETRY_DELAYS:
            self.clock.now += wait
            self.deliver()
        self.clock.now += timedelta(hours=1)
        self.stack.release_delayed("WebhookDeliveryQueue", lambda _: True)
        self.deliver()

    def stored_documents(self) -> dict[str, bytes]:
        """Every event the relay stored, by id, as endpoints receive it (what the outbox put on the fan-out)."""
        dynamodb = self.stack.client("dynamodb")
        request: dict[str, Any] = {
            "TableName": self.stack.ref("StateTable"),
            "FilterExpression": "begins_with(sk, :events)",
            "ExpressionAttributeValues": {":events": {"S": "EVENT#"}},
        }
        documents: dict[str, bytes] = {}
        while True:
            answer = dynamodb.scan(**request)
            for item in answer.get("Items", []):
                event = parse_event(item["document"]["S"])
                documents[event.event_id] = published_document(event)
            if "LastEvaluatedKey" not in answer:
                return documents
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def queued(self, logical_id: str) -> int:
        self.stack.release_delayed(logical_id, lambda _: True)
        answer = self.stack.client("sqs").get_queue_attributes(
            QueueUrl=self.stack.ref(logical_id), AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(answer["Attributes"]["ApproximateNumberOfMessages"])

    def health_off(self, endpoint: Endpoint, *, delivered: bool) -> bool:
        """Whether the endpoint's health, once everything was delivered, is not: nothing pending, not failing,
        and a success recorded if anything was `delivered` to it."""
        health = self.runner.api("GET", f"/webhooks/{endpoint.webhook_id}").body["delivery"]
        success = health["last_success_at"] is not None
        return (health["attempts_pending"], health["failing_since"], success) != (0, None, delivered)

    def finish(self) -> WebhookAudit:
        for endpoint in self.endpoints:
            endpoint.receiver.misbehave_no_more()
        for clear in self.clearing:
            clear()
        self.settle()
        return audit(self)


@dataclass
class WebhookAudit:
    events: int
    expected: int
    received: int
    lost: int
    twice_under_different_ids: int
    forged_signed: int
    requests: int
    parked: int
    unverified: int
    health_off: int


def audit(trial: WebhookTrial) -> WebhookAudit:
    stored = trial.stored_documents()
    outcomes = {outcome_of(json.loads(body)): event_id for event_id, body in stored.items()}
    not_stored = [outcome for outcome in trial.ledger.expected if outcome not in outcomes]
    expected = lost = twice = forged = requests = unverified = received = health_off = 0
    for endpoint in trial.endpoints:
        deliveries = list(endpoint.receiver.received)
        requests += len(deliveries)
        unverified += sum(not delivery.verified for delivery in deliveries)
        verified = [delivery for delivery in deliveries if delivery.verified]
        forged += sum(stored.get(delivery.webhook_id) != delivery.body for delivery in verified)
        ids: dict[OutcomeKey, set[str]] = {}
        for delivery in verified:
            ids.setdefault(outcome_of(json.loads(delivery.body)), set()).add(delivery.webhook_id)
        twice += sum(len(found) > 1 for found in ids.values())
        taken = {delivery.webhook_id for delivery in verified if _accepted(delivery)}
        wanted = {event_id for event_id, body in stored.items() if endpoint.takes(json.loads(body)["event_type"])}
        expected += len(wanted)
        received += len(wanted & taken)
        health_off += trial.health_off(endpoint, delivered=bool(taken))
        lost += len(wanted - taken) + sum(endpoint.takes(_event_type(outcome)) for outcome in not_stored)
    return WebhookAudit(
        events=len(stored),
        expected=expected,
        received=received,
        lost=lost,
        twice_under_different_ids=twice,
        forged_signed=forged,
        requests=requests,
        parked=trial.queued("WebhookDLQ"),
        unverified=unverified,
        health_off=health_off,
    )


def _accepted(delivery: Delivery) -> bool:
    return isinstance(delivery.answer, int) and 200 <= delivery.answer < 300


def _event_type(outcome: OutcomeKey) -> str:
    return "post.completed" if outcome[2] == "completed" else f"post.account.{outcome[2]}"


# ---------------------------------------------------------------------- scenarios
WebhookScenario = Callable[[WebhookTrial], None]


def _first_attempts(trial: WebhookTrial) -> None:
    """Events, their first attempts, and the first two retries (5 s and 5 min later): the fault's time."""
    trial.new_events(trial.rng.randint(*trial.scale.posts))
    trial.deliver()
    for wait in RETRY_DELAYS[:2]:
        trial.clock.now += wait
        trial.deliver()


def misbehaving(*choices: Misbehaviour) -> WebhookScenario:
    """Each endpoint misbehaves on its first 1-3 requests, in one of these ways."""

    def scenario(trial: WebhookTrial) -> None:
        for endpoint in trial.endpoints:
            endpoint.receiver.misbehave(*(trial.rng.choice(choices) for _ in range(trial.rng.randint(1, 3))))
        _first_attempts(trial)

    return scenario


class Countdown:
    """How many more times a fault strikes; shared by the threads of a batch's attempts."""

    def __init__(self, times: int) -> None:
        self.left = times
        self._lock = threading.Lock()

    def strike(self) -> int:
        """The strike's number (1, 2, ...), or 0 once the fault is spent."""
        with self._lock:
            if self.left <= 0:
                return 0
            self.left -= 1
            return self.left + 1

    def clear(self) -> None:
        with self._lock:
            self.left = 0


class RaisingSender(sender.HttpWebhookSender):
    """The real sender, raising while `countdown` strikes: every other time before the request, else once the
    endpoint has answered it (the endpoint has the delivery; the relay does not know)."""

    def __init__(self, countdown: Countdown) -> None:
        super().__init__()
        self._countdown = countdown

    def post(self, *args: Any, **kwargs: Any) -> Any:
        strike = self._countdown.strike()
        if not strike:
            return super().post(*args, **kwargs)
        if strike % 2:
            super().post(*args, **kwargs)
        raise RuntimeError("the sender crashed mid-attempt")


class RaisingResolver(StaticResolver):
    def __init__(self, inner: StaticResolver, countdown: Countdown) -> None:
        super().__init__()
        self.names = inner.names
        self._countdown = countdown

    def addresses(self, host: str, port: int) -> list[str]:
        if self._countdown.strike():
            raise RuntimeError("the resolver crashed")
        return super().addresses(host, port)


def raising(part: str) -> WebhookScenario:
    """The sender's post or the resolver raises an unexpected exception for the first 2-5 attempts."""

    def scenario(trial: WebhookTrial) -> None:
        countdown = Countdown(trial.rng.randint(2, 5))
        trial.clearing.append(countdown.clear)
        if part == "sender":
            replacement: Any = lambda: RaisingSender(countdown)  # noqa: E731  # what webhook_attempts builds
            trial.patches.enter_context(mock.patch.object(sender, "HttpWebhookSender", replacement))
        else:
            resolver = RaisingResolver(trial.resolver, countdown)
            trial.patches.enter_context(mock.patch.object(sender, "SystemResolver", return_value=resolver))
        _first_attempts(trial)

    return scenario


def _refusal(codes: list[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    turn = iter(range(1_000_000))

    def refuse(_: dict[str, Any]) -> dict[str, Any]:
        code = codes[next(turn) % len(codes)]
        raise ClientError({"Error": {"Code": code, "Message": "refused for now"}}, code)

    return refuse


def kms_refuses(trial: WebhookTrial) -> None:
    """Decrypt refused (KMSInternalException, AccessDeniedException) 3-6 times, the SDK's retries spent."""
    flaky = FlakyClient(
        trial.stack.client("kms"),
        "decrypt",
        _refusal(["KMSInternalException", "AccessDeniedException"]),
        trial.rng.randint(3, 6),
    )
    real = factories.aws_client
    client = lambda service: flaky if service == "kms" else real(service)  # noqa: E731
    trial.patches.enter_context(mock.patch.object(webhook_factories, "aws_client", client))
    trial.clearing.append(lambda: setattr(flaky, "remaining", 0))
    _first_attempts(trial)


def table_throttles(trial: WebhookTrial) -> None:
    """UpdateItem on the endpoint items (the attempts' records) throttled 2-4 times, the SDK's retries spent, while
    each endpoint also refuses its first 0-2 requests (so records that count pending retries are among them)."""
    flaky = FlakyClient(
        trial.stack.client("dynamodb"),
        "update_item",
        _refusal(["ProvisionedThroughputExceededException"]),
        trial.rng.randint(2, 4),
    )
    build = webhook_factories.build_webhook_store

    def throttled_store(table_name: str, client: Callable[[str], Any] = factories.aws_client) -> Any:
        return build(table_name, client=lambda service: flaky if service == "dynamodb" else client(service))

    trial.patches.enter_context(mock.patch.object(webhook_factories, "build_webhook_store", throttled_store))
    trial.clearing.append(lambda: setattr(flaky, "remaining", 0))
    for endpoint in trial.endpoints:
        endpoint.receiver.answer(*[503] * trial.rng.randint(0, 2))
    _first_attempts(trial)


def _attributes(values: dict[str, str | None], due_at: datetime) -> dict[str, Any]:
    """A message's attributes as the relay writes them (a delivery's also carry `attempt` and `due_at`)."""
    attributes = {name: {"DataType": "String", "StringValue": value} for name, value in values.items() if value}
    if "webhook_id" in values:
        attributes["attempt"] = {"DataType": "Number", "StringValue": "1"}
        attributes["due_at"] = {"DataType": "String", "StringValue": format_ts(due_at)}
    return attributes


def forged(kind: str) -> WebhookScenario:
    """Messages sent straight to the webhook queues (as anyone allowed to send there could), among real events."""

    def scenario(trial: WebhookTrial) -> None:
        trial.new_events(trial.rng.randint(*trial.scale.posts))
        real = [json.loads(body) for body in trial.stored_documents().values()]
        sqs = trial.stack.client("sqs")
        for endpoint in trial.endpoints:
            for body, attributes, queue in _forgeries(kind, trial, endpoint, trial.rng.choice(real)):
                sqs.send_message(QueueUrl=trial.stack.ref(queue), MessageBody=body, MessageAttributes=attributes)
                trial.bad_inputs += 1
        trial.deliver()

    return scenario


def _forgeries(
    kind: str, trial: WebhookTrial, endpoint: Endpoint, document: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any], str]]:
    made_up = {**document, "event_id": str(uuid.uuid4()), "event_type": "post.account.posted", "status": "posted"}
    tampered = json.dumps({**document, "error_message": "Send your password to https://phish.example"})
    now = trial.clock.now
    if kind == "delivery":  # naming no stored event, with or without a post
        for post_id in (document["post_id"], None, str(uuid.uuid4())):
            values = {"webhook_id": endpoint.webhook_id, "event_id": made_up["event_id"], "post_id": post_id}
            yield json.dumps(made_up), _attributes({**values, "event_type": "post.account.posted"}, now), DELIVERIES
    elif kind == "tampered":  # naming a stored event, its body tampered with
        values = {"webhook_id": endpoint.webhook_id, "event_id": document["event_id"], "post_id": document["post_id"]}
        yield tampered, _attributes({**values, "event_type": document["event_type"]}, now), DELIVERIES
    else:  # fan-out messages: a made-up event, a stored one tampered with, a stored one under another post
        for body, event in ((json.dumps(made_up), made_up), (tampered, document)):
            yield body, _attributes({"event_id": event["event_id"], "event_type": event["event_type"]}, now), FANOUT
        moved = json.dumps({**document, "post_id": trial.rng.choice([*trial.posts, str(uuid.uuid4())])})
        yield moved, _attributes({"event_id": document["event_id"], "event_type": document["event_type"]}, now), FANOUT


DELIVERIES = "WebhookDeliveryQueue"
FANOUT = "WebhookFanoutQueue"

WEBHOOK_SCENARIOS: dict[str, WebhookScenario] = {
    "endpoint trickles its headers past the bound": misbehaving(SLOW_HEAD),
    "endpoint trickles its body past the bound": misbehaving(SLOW_BODY),
    "endpoint resets mid-answer": misbehaving(RESET_IN_HEAD, RESET_IN_BODY),
    "sender raises mid-attempt": raising("sender"),
    "resolver raises": raising("resolver"),
    "forged delivery naming no stored event": forged("delivery"),
    "forged delivery with a tampered body": forged("tampered"),
    "forged fan-out messages": forged("fanout"),
    "KMS refuses Decrypt for a while": kms_refuses,
    "table throttles the attempt record": table_throttles,
}


# ---------------------------------------------------------------------- running
@dataclass
class WebhookRow:
    fault: str
    trials: int = 0
    events: int = 0
    expected: int = 0
    received: int = 0
    lost: int = 0
    twice_under_different_ids: int = 0
    forged_signed: int = 0
    requests: int = 0
    parked: int = 0
    unverified: int = 0
    health_off: int = 0
    bad_inputs: int = 0

    def add(self, audit: WebhookAudit, bad_inputs: int) -> None:
        self.trials += 1
        self.bad_inputs += bad_inputs
        for name, value in vars(audit).items():
            setattr(self, name, getattr(self, name) + value)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.twice_under_different_ids or self.forged_signed or self.unverified)

    @property
    def healthy(self) -> bool:
        return self.health_off == 0


def run_webhook_trial(
    name: str, seed: int, *, scale: Scale = BENCH, secrets: set[str] | None = None
) -> tuple[WebhookAudit, int]:
    """One trial of one fault: (its audit, the bad inputs it tried). `secrets` gets each signing secret made."""
    factories.reset()
    rng = random.Random(seed)
    with ExitStack() as patches:
        emulator = patches.enter_context(GenviralEmulator(tokens=[TOKEN], clock=TickingClock()))
        stack = patches.enter_context(
            MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters={"AllowPrivateWebhookUrls": "true"})
        )
        clock = SteppingClock(datetime.now(UTC).replace(microsecond=0))
        resolver = StaticResolver()
        patches.enter_context(mock.patch.object(factories, "utc_now", clock))
        patches.enter_context(mock.patch.object(sender, "TIMEOUT_SECONDS", TIMEOUT))
        patches.enter_context(mock.patch.object(sender, "SystemResolver", return_value=resolver))
        trial = WebhookTrial(rng, emulator, stack, LocalRunner(stack), clock, resolver, patches, scale)
        if secrets is not None:
            trial.secrets = secrets
        trial.register(rng.randint(*scale.endpoints))
        WEBHOOK_SCENARIOS[name](trial)
        result = trial.finish()
    factories.reset()  # nothing built on the trial's stack or patches outlives them
    return result, trial.bad_inputs


def run_webhook_matrix(
    trials: int, names: list[str] | None = None, seed: int = 0, *, scale: Scale = BENCH
) -> list[WebhookRow]:
    rows = []
    for name in names or list(WEBHOOK_SCENARIOS):
        row = WebhookRow(name)
        for index in range(trials):
            row.add(*run_webhook_trial(name, seed * 100_003 + index, scale=scale))
        rows.append(row)
    return rows


def format_webhook_table(rows: list[WebhookRow]) -> str:
    header = (
        "| webhook fault | trials | events | deliveries expected | received | lost | twice under different ids "
        "| forged bodies signed | unverified | requests to endpoints | parked | endpoints with health off "
        "| forged messages sent |"
    )
    lines = [header, "|" + "---|" * 13]
    lines.extend(
        f"| {row.fault} | {row.trials} | {row.events} | {row.expected} | {row.received} | {row.lost} "
        f"| {row.twice_under_different_ids} | {row.forged_signed} | {row.unverified} | {row.requests} "
        f"| {row.parked} | {row.health_off} | {row.bad_inputs} |"
        for row in rows
    )
    return "\n".join(lines)
