"""`python -m bench.webhooks`: webhook deliveries per second per invocation, the AWS cost per 1,000 deliveries,
and the cost of a resend (`--resend N`, 1,000 by default, scaled to the 10,000 one resend takes at most).

The template's two webhook functions run on moto in-process (local/runner.py) against loopback endpoints that
verify every delivery with `standardwebhooks` (local/webhook_receiver.py). EVENTS event documents are put on the
fan-out queue, as the outbox's webhooks target puts them, for ENDPOINTS endpoints that take every type; then:

1. the dispatcher's invocations (batches of 10 events): deliveries queued per second of invocation;
2. the delivery function's invocations (batches of 10 deliveries, attempted side by side): deliveries per second;
3. every AWS request the two functions make, counted at botocore, and the Lambda time, priced at us-east-1
   on-demand rates (arm64, no free tier) per 1,000 deliveries, the outbox's SendMessageBatch included.

Figures are of this machine and moto, not of AWS: the request counts are exact, the times are an upper bound of
the relay's own work (moto's SQS walks every message of a queue on each call, so its figures fall as the queue
grows), and an endpoint that takes longer to answer lengthens the delivery function's invocations (the second
cost figure assumes 1 s). The fan-out is timed once more on the in-memory doubles: the relay's own work, no I/O;
so is the delivery function's, plain, for an endpoint with a `rate_limit` (each delivery over the rate queued again
at its slot) and for one whose `filter` leaves the events out (each dropped, its state recorded). The cost counts
the attempt log's writes: one BatchWriteItem of two items (the entry and the delivery's state) per attempt.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from genviral_relay.aws.dynamodb_items import event_to_item
from genviral_relay.aws.publishers import WebhookFanoutPublisher
from genviral_relay.models.events import RelayEvent, parse_event
from genviral_relay.models.webhooks import WebhookEndpoint
from genviral_relay.webhooks.resend import RESEND_LIMIT
from local.runner import WEBHOOK_DELIVERY, WEBHOOK_DISPATCHER, LocalRunner
from local.stack import MotoStack
from local.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "outbound" / "eventbridge-post-account-failed.json"
TOKEN = "gva_live_bench.0123456789abcdef"  # noqa: S105 - the local stack's fake key

# us-east-1 on-demand, as docs/reliability-and-cost.md prices the rest of the relay
LAMBDA_GB_SECOND = 0.0000133334  # arm64
LAMBDA_REQUEST = 0.20 / 1e6
SQS_REQUEST = 0.40 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
MEMORY_GB = 0.25  # the template's MemorySize: 256


def events(count: int) -> list[RelayEvent]:
    template = json.loads(SAMPLE.read_text())["detail"]
    return [parse_event({**template, "event_id": f"00000000-0000-5000-8000-{n:012d}"}) for n in range(count)]


class Calls:
    """Every AWS request made through boto3's default session (the functions' clients), by service and operation."""

    def __init__(self) -> None:
        self.counted: Counter[tuple[str, str]] = Counter()
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call.*.*", self._count)

        boto3.DEFAULT_SESSION.events.register("before-parameter-build.dynamodb.BatchWriteItem", self._count_items)

    def _count(self, model: Any, **_: Any) -> None:
        self.counted[(model.service_model.service_name, model.name)] += 1

    def _count_items(self, params: dict[str, Any], **_: Any) -> None:
        """A batch write costs a write unit per item (each under 1 KB), not per call."""
        self.counted[("dynamodb", "BatchWriteItem items")] += sum(len(v) for v in params["RequestItems"].values())

    def take(self) -> Counter[tuple[str, str]]:
        taken, self.counted = self.counted, Counter()
        return taken


def timed_drain(runner: LocalRunner, function: str) -> list[float]:
    """The seconds of each invocation (inside the handler) that drained the function's queue."""
    durations: list[float] = []
    original = runner.invoke

    def timing(logical_id: str, event: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            return original(logical_id, event)
        finally:
            durations.append(time.perf_counter() - start)

    runner.invoke = timing  # type: ignore[method-assign]
    try:
        runner.drain_queue(function)
    finally:
        runner.invoke = original  # type: ignore[method-assign]
    return durations


def fanout_on_doubles(endpoints: int, batches: int = 200) -> float:
    """Deliveries per second of the dispatcher's own work (batches of 10 events; the store and queue in memory)."""
    from genviral_relay.webhooks.fanout import FanoutItem, WebhookFanout
    from tests.support.doubles import InMemoryDeliveryQueue, InMemoryWebhookStore
    from tests.support.event_log_doubles import InMemoryDeliveryLog

    store, queue = InMemoryWebhookStore(), InMemoryDeliveryQueue()
    now = datetime.now(UTC)
    for n in range(endpoints):
        store.add_04(WebhookEndpoint(id=f"wh_{n:032x}", url="https://hooks.example.com/", created_at=now))
    fanout = WebhookFanout(store=store, queue=queue, log=InMemoryDeliveryLog(), clock=lambda: now)
    post_id = json.loads(SAMPLE.read_text())["detail"]["post_id"]
    batch = [FanoutItem(f"m{n}", f"e{n}", "post.account.failed", post_id) for n in range(10)]
    start = time.perf_counter()
    for _ in range(batches):
        fanout.run(batch)
        queue.take()
    return batches * 10 * endpoints / (time.perf_counter() - start)


def resend_figures(count: int) -> None:
    """One `POST /webhooks/{id}/resend` of `count` deliveries (a range of the feed, every event taken), as the API
    function runs it on moto: the table's reads of the feed, the SQS requests that queue the deliveries, the wall
    time, and what they cost. The read units are estimated from the items' size (moto reports none): strongly
    consistent, as an upper bound."""
    from genviral_relay.models.event_log import FeedEntry
    from genviral_relay.models.events import published_document
    from genviral_relay.models.webhooks import WebhookEndpoint
    from genviral_relay.webhook_factories import (
        build_delivery_queue,
        build_event_log,
        build_stored_events,
        build_webhook_store,
    )
    from genviral_relay.webhooks.registry import WebhookRegistry
    from tests.support.doubles import InMemorySecretBox, StaticResolver

    stack = MotoStack(genviral_api_url="http://127.0.0.1:9", token=TOKEN).start()
    try:
        calls = Calls()
        table, retention, now = stack.ref("StateTable"), timedelta(days=30), datetime.now(UTC)

        def client(service: str) -> Any:
            return boto3.client(service)  # type: ignore[call-overload]  # the default session: counted

        feed = build_event_log(table, retention, client=client)
        documents = events(count)
        entries = [
            FeedEntry(committed_at=now - timedelta(hours=1) + timedelta(milliseconds=n), event_id=event.event_id,
                      event_type=event.event_type, post_id=event.post_id, document=published_document(event).decode())
            for n, event in enumerate(documents)
        ]  # fmt: skip
        feed.append(entries)
        endpoint = WebhookEndpoint(id="wh_" + "1" * 32, url="https://hooks.example.com/", created_at=now)
        build_webhook_store(table, client=client).create(endpoint, limit=100)
        registry = WebhookRegistry(
            store=build_webhook_store(table, client=client), secrets=InMemorySecretBox(),
            queue=build_delivery_queue(stack.ref("WebhookDeliveryQueue"), "", client=client),
            events=build_stored_events(table, client=client), feed=feed, resolver=StaticResolver(),
            clock=lambda: datetime.now(UTC), allow_private=False, event_retention=retention,
        )  # fmt: skip
        calls.take()
        start = time.perf_counter()
        queued = registry.resend_between(endpoint.id, now - timedelta(hours=2), None)
        seconds = time.perf_counter() - start
        made = calls.take()
    finally:
        stack.stop()
    assert queued == count, f"{queued} of {count} queued"
    item_bytes = sum(len(entry.document) + 200 for entry in entries)  # the document and the keys and attributes
    reads = item_bytes / 4096
    sqs = sqs_requests(made)
    cost = reads * DYNAMODB_READ_UNIT + sqs * SQS_REQUEST
    print(f"resend of {count:,} deliveries: {seconds:.1f} s on moto (wall time of the use case)")
    print(f"  AWS requests: {dict(sorted(made.items()))}")
    print(f"  about {reads:,.0f} read units (strongly consistent; half that eventually consistent), {sqs} SQS "
          f"requests: ${cost:.6f}, before the deliveries themselves (see the cost per 1,000 above)")  # fmt: skip
    scale = RESEND_LIMIT / count  # reads and batches grow with the deliveries, one for one
    print(f"  a resend of {RESEND_LIMIT:,} (the most one takes): about {reads * scale:,.0f} read units and "
          f"{sqs * scale:,.0f} SQS requests, ${cost * scale:.5f} before the deliveries")  # fmt: skip


def attempts_on_doubles(mode: str, deliveries: int = 2000) -> float:
    """Deliveries per second of the delivery function's own work on the doubles (batches of 10, one thread: the
    store, the queue, the log and the pacer in memory, an endpoint answering at once). `mode`: plain, rate_limit (5
    a second: all but the first go back to the queue at their slots) or filter (every event left out)."""
    from genviral_relay.models.webhooks import EndpointFilter, WebhookDelivery
    from genviral_relay.webhooks.attempts import DeliveryItem
    from tests.builders import relay_event
    from tests.support.doubles import RecordingSender
    from tests.support.webhook_rig import WebhookRig

    rig = WebhookRig(RecordingSender(), threads=1)
    rig.store.add_04(WebhookEndpoint(id="wh_" + "a" * 32, url="https://hooks.example.com/", created_at=rig.now))
    changes: dict[str, dict[str, Any]] = {
        "rate_limit": {"rate_limit": 5.0},
        "filter": {"filter": EndpointFilter(platforms=("tiktok",))},  # the sample is an instagram failure
    }
    endpoint = rig.store.items["wh_" + "a" * 32].model_copy(update=changes.get(mode, {}))
    rig.store.items[endpoint.id] = endpoint
    stored = [relay_event("post.account.failed", f"e{n}") for n in range(deliveries)]
    for event in stored:
        rig.events.add(event)
    items = [
        DeliveryItem(f"m{n}", WebhookDelivery(webhook_id=endpoint.id, event_id=event.event_id,
                     event_type=event.event_type, attempt=1, due_at=rig.now, post_id=event.post_id))
        for n, event in enumerate(stored)
    ]  # fmt: skip
    start = time.perf_counter()
    for first in range(0, len(items), 10):
        rig.attempts.run(items[first : first + 10])
    return deliveries / (time.perf_counter() - start)


def feed_page_figures(count: int = 300) -> None:
    """The table's requests and read units of `GET /events` pages (100 documents each) and of one event's story, on
    moto: `count` events stored as the check commits them, read by the API's reader. Read units are estimated from
    the items' size (moto reports none): strongly consistent, 1 per 4 KB of the page's items."""
    from genviral_relay.rules.event_feed import FEED_SETTLE, feed_entries
    from genviral_relay.webhook_factories import build_event_feed, build_event_log

    stack = MotoStack(genviral_api_url="http://127.0.0.1:9", token=TOKEN).start()
    try:
        table, retention = stack.ref("StateTable"), timedelta(days=30)
        calls = Calls()  # first: it makes the default session the clients below come from

        def client(service: str) -> Any:
            return boto3.client(service)  # type: ignore[call-overload]  # the default session: counted

        documents = events(count)
        entries = feed_entries(documents, datetime.now(UTC) - FEED_SETTLE - timedelta(minutes=1))
        build_event_log(table, retention, client=client).append(entries)
        feed = build_event_feed(table, retention, client=client)
        calls.take()
        pages, after = 0, None
        while True:
            page = feed.page(after=after, limit=100)
            if not page.entries:
                break
            pages, after = pages + 1, page.next
        page_calls = calls.take()
        feed.story(documents[0].event_id)
        story_calls = calls.take()
    finally:
        stack.stop()
    units = sum(len(entry.document) + 200 for entry in entries) / 4096 / pages  # the document, keys and attributes
    print(f"feed: {pages} full pages of 100 and one empty, {dict(sorted(page_calls.items()))}, about {units:.0f} read "
          f"units a full page (${units * DYNAMODB_READ_UNIT:.7f}), no writes; one event's story: "
          f"{dict(sorted(story_calls.items()))}")  # fmt: skip


def sqs_requests(calls: Counter[tuple[str, str]]) -> int:
    return sum(count for (service, _), count in calls.items() if service == "sqs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--feed", type=int, default=300, help="events in the feed whose pages are read (0: none)")
    # moto's SQS walks its whole queue on each call: 10,000 take it many minutes; the figures scale one for one
    parser.add_argument("--resend", type=int, default=1_000, help="deliveries of the resend measured (0: none)")
    args = parser.parse_args()

    receivers = [WebhookReceiver().start() for _ in range(args.endpoints)]
    stack = MotoStack(
        genviral_api_url="http://127.0.0.1:9", token=TOKEN, parameters={"AllowPrivateWebhookUrls": "true"}
    ).start()
    try:
        runner = LocalRunner(stack)
        for receiver in receivers:
            answer = runner.api("POST", "/webhooks", {"url": receiver.url})
            receiver.trust(answer.body["secret"])
        documents = events(args.events)
        kept_until = int(time.time()) + 86400
        for event in documents:  # stored, as the check stores them: a delivery signs only what the relay stored
            stack.client("dynamodb").put_item(TableName=stack.ref("StateTable"), Item=event_to_item(event, kept_until))
        calls = Calls()
        outbox = WebhookFanoutPublisher(boto3.client("sqs"), stack.ref("WebhookFanoutQueue"))
        published = outbox.publish(documents)
        assert len(published.published) == args.events
        outbox_calls = calls.take()

        dispatch_times = timed_drain(runner, WEBHOOK_DISPATCHER)
        dispatcher_calls = calls.take()
        attempt_times = timed_drain(runner, WEBHOOK_DELIVERY)
        delivery_calls = calls.take()
    finally:
        stack.stop()
        for receiver in receivers:
            receiver.stop()

    deliveries = args.events * args.endpoints
    received = [delivery for receiver in receivers for delivery in receiver.received]
    assert len(received) == deliveries, f"{len(received)} of {deliveries} delivered"
    assert all(delivery.verified for delivery in received)

    dispatches, dispatch_seconds = len(dispatch_times), sum(dispatch_times)
    attempts, attempt_seconds = len(attempt_times), sum(attempt_times)
    per_thousand = 1000 / deliveries
    sqs = sqs_requests(outbox_calls) + sqs_requests(dispatcher_calls) + sqs_requests(delivery_calls)
    # The event sources' own requests: a ReceiveMessage and a DeleteMessageBatch per batch (Lambda polls as well
    # while the queues are empty: a fixed cost of the event source, not of a delivery).
    sqs += 2 * (dispatches + attempts)
    reads = dispatcher_calls[("dynamodb", "Query")] * 0.5 + delivery_calls[("dynamodb", "GetItem")]
    # The endpoint's health (UpdateItem) and the attempt log (two items a BatchWriteItem)
    writes = delivery_calls[("dynamodb", "UpdateItem")] + delivery_calls[("dynamodb", "BatchWriteItem items")]
    lambda_seconds = dispatch_seconds + attempt_seconds
    lambda_cost = (dispatches + attempts) * LAMBDA_REQUEST + lambda_seconds * MEMORY_GB * LAMBDA_GB_SECOND
    slow_cost = (dispatches + attempts) * LAMBDA_REQUEST + (
        dispatch_seconds + attempt_seconds + attempts * 1.0
    ) * MEMORY_GB * LAMBDA_GB_SECOND
    sqs_cost, dynamodb_cost = sqs * SQS_REQUEST, reads * DYNAMODB_READ_UNIT + writes * DYNAMODB_WRITE_UNIT

    print(f"{args.events} events x {args.endpoints} endpoints = {deliveries} deliveries, all verified")
    for name, times in (("dispatcher", dispatch_times), ("delivery", attempt_times)):
        each = deliveries / len(times)
        warm = statistics.median(times[1:] or times)  # the first one imports and builds its clients
        print(
            f"{name}: {len(times)} invocations of {each:.0f} deliveries; warm median {warm * 1000:.1f} ms = "
            f"{each / warm:,.0f} deliveries/s per invocation; first (cold) {times[0] * 1000:.0f} ms"
        )
    print(f"dispatcher on the doubles (its own work): {fanout_on_doubles(args.endpoints):,.0f} deliveries/s")
    for mode, what in (("plain", "sent"), ("rate_limit", "paced: queued again at their slots"),
                       ("filter", "filtered: dropped, state recorded")):  # fmt: skip
        print(f"delivery function on the doubles, {mode} ({what}): {attempts_on_doubles(mode):,.0f} deliveries/s")
    print("AWS requests:", dict(sorted((outbox_calls + dispatcher_calls + delivery_calls).items())))
    log_writes = delivery_calls[("dynamodb", "BatchWriteItem items")]
    print(f"attempt log: {log_writes * per_thousand:.0f} write units per 1,000 deliveries (entry and state)")
    print(
        f"per 1,000 deliveries: {sqs * per_thousand:.0f} SQS requests ${sqs_cost * per_thousand:.5f}, "
        f"{reads * per_thousand:.0f} read + {writes * per_thousand:.0f} write units "
        f"${dynamodb_cost * per_thousand:.5f}, Lambda ${lambda_cost * per_thousand:.5f}"
    )
    total = (sqs_cost + dynamodb_cost + lambda_cost) * per_thousand
    slow_total = (sqs_cost + dynamodb_cost + slow_cost) * per_thousand
    print(f"AWS cost per 1,000 deliveries: ${total:.4f} (endpoints answering in 1 s: ${slow_total:.4f})")
    if args.feed:
        feed_page_figures(args.feed)
    if args.resend:
        resend_figures(args.resend)


if __name__ == "__main__":
    main()
