"""`make demo` (`python -m local demo`): the whole relay on a laptop, no AWS account and no Docker.

A Genviral emulator (HTTP on 127.0.0.1) and moto (as an HTTP server on 127.0.0.1, reached
through AWS_ENDPOINT_URL) stand in for the remote services; the real handlers named in
template.yaml run in-process with the event shapes AWS sends; events are printed as the two
subscribers receive them: an SQS queue subscribed to the SNS topic and an EventBridge rule
targeting an SQS queue. A webhook endpoint on 127.0.0.1 (local/webhook_receiver.py) receives the
failures, verifying each delivery with the `standardwebhooks` library; it refuses the first one, which
is delivered again on the retry schedule (the demo moves the relay's clock the 5 seconds ahead). Two more, standing
in for a Slack and a Discord webhook, take the completions as chat messages (unsigned, paced at their formats'
default rate: the clock's 5 seconds let the paced ones go too), printed as a person reads them in the channel. Then
an account is disconnected in the emulator while a post waits for it: the relay's account checks (the clock moved
through them) announce `account.disconnected` with the post at risk, and `account.reconnected` once it is back.
Last, an agency's second Genviral workspace joins through the secret alone, publishes beside the first, and is paused
alone when its key is refused (local/demo_workspaces.py).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from genviral_relay import factories
from genviral_relay.models.chat import ChatFormat
from genviral_relay.observability import logs_to
from genviral_relay.rules.event_feed import FEED_SETTLE
from genviral_relay.rules.webhook_retries import RETRY_DELAYS
from local.demo_workspaces import several_workspaces
from local.emulator import DEFAULT_TOKEN, GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from local.webhook_receiver import Reply, WebhookReceiver
from tools.chat_examples import as_read


class Demo:
    def __init__(self, runner: LocalRunner, emulator: GenviralEmulator, log: TextIO) -> None:
        self.runner = runner
        self.stack = runner.stack
        self.emulator = emulator
        self.log = log
        self.received: Counter[str] = Counter()
        self.event_ids: dict[str, set[str]] = {"sns": set(), "eventbridge": set()}

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        """Handler logs and metrics go to the log file, not the screen."""
        with contextlib.redirect_stdout(self.log), logs_to(self.log):
            yield

    def api(self, method: str, path: str, body: Any = None) -> Any:
        with self.quietly():
            answer = self.runner.api(method, path, body)
        print(f"  {method} {path} -> {answer.status}")
        return answer

    @staticmethod
    @contextlib.contextmanager
    def ahead(delta: timedelta) -> Iterator[None]:
        """The relay's clock `delta` ahead of the wall clock (the functions' use cases take it when built)."""
        real_clock = factories.utc_now
        factories.utc_now = lambda: real_clock() + delta
        factories.reset()
        try:
            yield
        finally:
            factories.utc_now = real_clock
            factories.reset()

    def show_attempts(self, webhook_id: str) -> None:
        answer = self.api("GET", f"/webhooks/{webhook_id}/attempts")
        for attempt in answer.body["data"]:
            status = attempt["status"] if attempt["status"] is not None else "no answer"
            print(
                f"    {attempt['at']} attempt {attempt['attempt']} of {attempt['event_type']} "
                f"{attempt['event_id'][:8]}: {attempt['outcome']} (HTTP {status}, {attempt['duration_ms']} ms)"
            )

    def tick_and_work(self) -> None:
        with self.quietly():
            tick = self.runner.tick()
            report = self.runner.drain_work_queue()
        print(f"  scheduler tick: {tick['enqueued']} check(s) queued; worker: {report.processed} message(s) handled")

    def deliver_webhooks(self, receiver: WebhookReceiver) -> None:
        seen = len(receiver.received)
        with self.quietly():
            report = self.runner.deliver_webhooks()
        print(f"  webhook functions: {report.processed} message(s) handled")
        for delivery in receiver.received[seen:]:
            document = json.loads(delivery.body)
            verified = (
                "signature verified by standardwebhooks" if delivery.verified else f"NOT VERIFIED: {delivery.problem}"
            )
            print(
                f"  [webhook endpoint] {document['event_type']:<20} webhook-id={delivery.webhook_id} "
                f"webhook-timestamp={delivery.headers['webhook-timestamp']} -> answered {delivery.answer}; {verified}"
            )

    def show_chat(self, name: str, chat_format: ChatFormat, receiver: WebhookReceiver) -> bool:
        """Each message the stand-in for a chat service took, as its channel shows it; True when each is the
        service's JSON, unsigned."""
        fine = bool(receiver.received)
        for delivery in receiver.received:
            payload = json.loads(delivery.body)
            signed = any(header.startswith("webhook-") for header in delivery.headers)
            fine = fine and not signed and delivery.headers.get("content-type") == "application/json"
            status = delivery.answer.status if isinstance(delivery.answer, Reply) else delivery.answer
            print(f"  [{name} channel] {'SIGNED?! ' if signed else ''}answered {status}:")
            for line in as_read(chat_format, payload):
                for part in line.split("\n"):
                    print(f"      {part}")
        return fine

    def show_received(self) -> int:
        count = 0
        for message in self.stack.received("sns"):
            document = json.loads(message["Message"])
            attributes = {name: value["Value"] for name, value in message.get("MessageAttributes", {}).items()}
            self._record("SNS subscriber", "sns", document)
            self._print_event("SNS subscriber", document, f"attributes={json.dumps(attributes, sort_keys=True)}")
            count += 1
        for event in self.stack.received("eventbridge"):
            self._record("EventBridge rule", "eventbridge", event["detail"])
            self._print_event("EventBridge rule", event["detail"], f'detail-type="{event["detail-type"]}"')
            count += 1
        if not count:
            print("  (subscribers received nothing)")
        return count

    def show_brief(self) -> tuple[list[dict[str, Any]], bool]:
        """What both subscribers received, one line per SNS message with its workspace (the bus's documents are
        counted, not printed again): the documents of both targets, and whether every SNS `workspace` attribute
        names its document's workspace."""
        documents: list[dict[str, Any]] = []
        attributes_agree = True
        for message in self.stack.received("sns"):
            document = json.loads(message["Message"])
            attribute = message.get("MessageAttributes", {}).get("workspace", {}).get("Value")
            attributes_agree = attributes_agree and attribute == document["workspace"]
            self._record("SNS subscriber", "sns", document)
            documents.append(document)
            print(
                f"  [SNS subscriber] workspace={document['workspace']:<8} {document['event_type']:<20} "
                f"{_subject(document)} {_summary(document)}"
            )
        on_bus = [event["detail"] for event in self.stack.received("eventbridge")]
        for document in on_bus:
            self._record("EventBridge rule", "eventbridge", document)
        print(f"  [EventBridge rule] {len(on_bus)} event(s), the same documents")
        return documents + on_bus, attributes_agree

    def _record(self, where: str, target: str, document: dict[str, Any]) -> None:
        """Counted for the Summary, by subscriber and event type, and its id by target."""
        self.received[f"{where}:{document['event_type']}"] += 1
        self.event_ids[target].add(document["event_id"])

    def _print_event(self, where: str, document: dict[str, Any], extra: str) -> None:
        print(f"  [{where}] {document['event_type']:<20} {_subject(document)} {_summary(document)}")
        print(f"      event_id={document['event_id']} {extra}")
        print(f"      {json.dumps(document, sort_keys=True)}")


def _subject(document: dict[str, Any]) -> str:
    """What the document is about: a post, or (a notice) an account or the relay."""
    if "post_id" in document:
        return f"post={document['post_id'][:8]}"
    if "account_id" in document:
        return f"account={document['account_id'][:8]}"
    return "relay"


def _summary(document: dict[str, Any]) -> str:
    """One line a person reads: who, what happened, and the detail a consumer would act on."""
    if document["event_type"] == "relay.paused":
        return f"until {document['until']}: {document['reason']}"
    if document["event_type"] == "relay.resumed":
        return f"calls work again (paused at {document['paused_at']})"
    if document["event_type"].startswith("account."):
        at_risk = document["posts_at_risk"]
        change = f"{document['previous_status'] or '(not listed)'} -> {document['status'] or '(not listed)'}"
        return f"{_handle(document['account'])} {change}; posts at risk: {at_risk['count']} {at_risk['post_ids']}"
    if document["event_type"] == "post.completed":
        named = ", ".join(f"{_handle(account['account'])} {account['status']}" for account in document["accounts"])
        return f"outcome={document['outcome']} ({named})"
    who = _handle(document["account"])
    if document["event_type"] == "post.account.delayed":
        return f"{who} still {document['status']} since {document['delayed_since']}"
    change = f"{document['previous_status'] or '(first seen)'} -> {document['status']}"
    if document["status"] == "posted":
        return f"{who} {change} {document['published_url']}"
    return f"{who} {change} [{document['error_category']}] {document['error_message']}"


def _handle(account: dict[str, Any]) -> str:
    """`tiktok @brand`, as the account block names it (an account Genviral no longer lists: its id)."""
    if account["platform"] is None:
        return f"account {account['id'][:8]}"
    return f"{account['platform']} @{account['username']}"


def run(verbose: bool) -> int:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with contextlib.ExitStack() as resources:
        log: TextIO = sys.stdout
        if not verbose:
            log = resources.enter_context(
                tempfile.NamedTemporaryFile("w", prefix="genviral-relay-demo-", suffix=".log", delete=False)
            )
        return _scenario(log)


def _scenario(log: TextIO) -> int:
    print("python -m local demo")
    with (
        GenviralEmulator(tokens=[DEFAULT_TOKEN]) as emulator,
        MotoStack(
            genviral_api_url=emulator.base_url,
            token=DEFAULT_TOKEN,
            mode="server",
            secret_as_json=True,
            # The webhook endpoint is http:// on 127.0.0.1, which the default refuses
            parameters={"WatchMode": "discover", "AllowPrivateWebhookUrls": "true"},
        ) as stack,
        WebhookReceiver() as receiver,
        WebhookReceiver(path="/services/T0DEMO/B0DEMO/demo-token", chat=True) as slack,
        WebhookReceiver(path="/api/webhooks/1/demo-token", chat=True) as discord,
    ):
        print(f"  Genviral emulator: {emulator.base_url}")
        print(f"  AWS (moto server): {stack.endpoint_url} with the table, queues, topic and bus of template.yaml")
        print("  WatchMode=discover: registered posts and every other post of the workspace are watched")
        demo = Demo(LocalRunner(stack), emulator, log)
        soon = datetime.now(UTC) - timedelta(minutes=1)

        print(f"\n0. A webhook endpoint on {receiver.url} registers for failures (POST /webhooks)")
        created = demo.api("POST", "/webhooks", {"url": receiver.url, "event_types": ["post.account.failed"]})
        receiver.trust(created.body["secret"])
        print(
            f"  id={created.body['id']}; its whsec_ secret is in this answer only. It will refuse the first delivery."
        )
        receiver.answer(503)
        slack.answer(*[Reply(200, body="ok")] * 3)
        discord.answer(*[Reply(204)] * 3)
        print("   and a Slack and a Discord channel (stand-ins on 127.0.0.1) take the completions as chat messages")
        for name, chat, chat_format in (("Slack", slack, "slack"), ("Discord", discord, "discord")):
            body = {"url": chat.url, "format": chat_format, "event_types": ["post.completed"]}
            chat_endpoint = demo.api("POST", "/webhooks", body).body
            print(f"  {name}: format={chat_endpoint['format']} rate_limit={chat_endpoint['rate_limit']}/s, unsigned")

        print("\n1. Four posts are scheduled in Genviral and registered with the relay (POST /watches);")
        print("   one was due 20 minutes ago and is still not delivered: the relay reports it delayed")
        launch = emulator.create_post(accounts=2, scheduled_at=soon, caption="Launch day: meet the new app!")
        retried = emulator.create_post(accounts=1, scheduled_at=soon, caption="Behind the scenes, part 2")
        doomed = emulator.create_post(accounts=1, scheduled_at=soon, caption="Draft that gets deleted")
        late = emulator.create_post(accounts=1, scheduled_at=soon - timedelta(minutes=19), caption="Flash sale")
        emulator.set_account(emulator.account_ids(launch)[0], platform="tiktok", username="brand")
        emulator.set_account(emulator.account_ids(launch)[1], platform="instagram", username="brand.shop")
        emulator.set_account(emulator.account_ids(late)[0], platform="tiktok", username="brand.deals")
        for post_id in (launch, retried, doomed, late):
            demo.api("POST", "/watches", {"post_id": post_id})
        demo.api("POST", "/watches", {"post_id": "not-a-uuid"})
        delays = demo.show_received()

        print("\n2. Genviral publishes: one account posted, one failed; another post fails; the late one posts.")
        print("   Each finished post is also reported completed, with every account's outcome")
        posted_account, failed_account = emulator.account_ids(launch)
        emulator.mark_posted(launch, posted_account, published_url="https://www.tiktok.com/@brand/video/7301")
        emulator.mark_failed(launch, failed_account, error_message="Instagram rejected the media: aspect ratio 9:21")
        emulator.mark_failed(retried, emulator.account_ids(retried)[0], error_message="Upload timed out")
        late_url = "https://www.tiktok.com/@brand.deals/video/7302"
        emulator.mark_posted(late, emulator.account_ids(late)[0], published_url=late_url)
        demo.tick_and_work()
        first_wave = demo.show_received()
        demo.deliver_webhooks(receiver)
        print(f"  {RETRY_DELAYS[0].seconds} s later (the relay's clock moved ahead), the refused delivery is retried:")
        with demo.ahead(RETRY_DELAYS[0]):
            demo.deliver_webhooks(receiver)
        webhook_id = created.body["id"]
        print("  The endpoint's attempt log, newest first (GET /webhooks/{id}/attempts):")
        demo.show_attempts(webhook_id)
        print("  The team resends the failure to the endpoint (POST /webhooks/{id}/resend): the same webhook-id and")
        print("  body, a fresh timestamp and signature")
        resent = demo.api("POST", f"/webhooks/{webhook_id}/resend", {"event_id": receiver.received[0].webhook_id})
        print(f"  queued: {resent.body.get('queued')}")
        demo.deliver_webhooks(receiver)

        print("\n3. The team retries the failed post in Genviral and asks for a check now; the draft is deleted.")
        print("   The retried post completes again: a second completion, under a new id")
        emulator.retry(retried)
        demo.api("POST", f"/watches/{retried}/check")
        emulator.mark_posted(retried, emulator.account_ids(retried)[0], published_url="https://youtube.com/shorts/xyz")
        emulator.delete_post(doomed)
        demo.tick_and_work()
        second_wave = demo.show_received()

        print("\n4. Someone schedules a post in Genviral's dashboard, never registered; it publishes at once")
        unregistered = emulator.create_post(accounts=1, scheduled_at=None, caption="Posted from the dashboard")
        emulator.mark_posted(unregistered, emulator.account_ids(unregistered)[0], published_url="https://x.com/brand/1")
        demo.tick_and_work()
        discovered = demo.show_received()

        print("\n5. Another tick: nothing changed upstream, so nothing is published")
        demo.tick_and_work()
        quiet = demo.show_received()

        print("\n6. The TikTok account @brand.deals is disconnected in Genviral while a post still waits for it.")
        print("   Genviral stops listing it (GET /accounts lists active accounts only); the relay lists the accounts")
        print("   every AccountCheckMinutes (15) and confirms a missing account at the next tick, then announces it")
        print("   with the posts at risk. The demo moves the relay's clock through the checks")
        deals = emulator.account_ids(late)[0]
        upcoming = emulator.create_post(
            accounts=[deals], scheduled_at=datetime.now(UTC) + timedelta(hours=3), caption="Weekend drop"
        )
        demo.api("POST", "/watches", {"post_id": upcoming})
        emulator.set_account(deals, status="revoked")
        for minutes in (16, 17):
            with demo.ahead(timedelta(minutes=minutes)):
                demo.tick_and_work()
        disconnected = demo.show_received()
        print("   The account is reconnected in Genviral; the next check announces it")
        emulator.restore_account(deals)
        with demo.ahead(timedelta(minutes=33)):
            demo.tick_and_work()
        reconnected = demo.show_received()

        print("\n7. A consumer without a public URL follows the event feed (GET /events), in commit order;")
        print(f"   a page serves what was committed {FEED_SETTLE.seconds} s ago or earlier (the demo moves the clock)")
        with demo.ahead(timedelta(minutes=33) + FEED_SETTLE):
            page = demo.api("GET", "/events?limit=100")
        feed_ids = [document["event_id"] for document in page.body["data"]]
        published_by_now = set(demo.event_ids["sns"])
        for document in page.body["data"][:3]:
            print(f"    {document['event_type']:<20} {_subject(document)} event_id={document['event_id']}")
        print(f"    ... {len(feed_ids)} events; next={page.body['next'][:24]}...")

        print("\n8. What the relay remembers (GET /watches/{post_id})")
        for name, post_id in (("launch", launch), ("retried", retried), ("deleted", doomed), ("late", late)):
            with demo.quietly():
                view = demo.runner.api("GET", f"/watches/{post_id}").body
            states = ", ".join(account["status"] for account in view["accounts"])
            print(
                f"  {name:<8} status={view['status']:<8} accounts=[{states}] watching={view['watching']} "
                f"ended_reason={view['ended_reason']}"
            )

        print("\n9. What the chat channels show (the completions of step 2, one message per event)")
        chats_ok = demo.show_chat("Slack", "slack", slack) and demo.show_chat("Discord", "discord", discord)
        chats_ok = chats_ok and len(slack.received) == len(discord.received) == 3

        workspaces = several_workspaces(demo, step=10, default_accounts=emulator.account_ids(launch))

        sns_ids, bus_ids = demo.event_ids["sns"], demo.event_ids["eventbridge"]
        deliveries = receiver.received
        refused = [delivery for delivery in deliveries if delivery.answer != 200]
        redelivered = [d for d in deliveries if refused and d.webhook_id == refused[0].webhook_id and d.answer == 200]
        webhooks_ok = (
            len(deliveries) == 4
            and len(refused) == 1
            and len(redelivered) == 2  # the retry and the resend
            and all(delivery.body == refused[0].body for delivery in redelivered)
            and len({delivery.headers.get("webhook-timestamp") for delivery in redelivered}) == 2
            and all(delivery.verified for delivery in deliveries)
        )
        feed_ok = set(feed_ids) == published_by_now and len(feed_ids) == len(published_by_now)
        # Per target: 1 delay; 3 + 2 + 2 (transitions, completions); 1 + 1; 1 + 1; nothing; 1 disconnect; 1 reconnect.
        expected = (
            (delays, first_wave, second_wave, discovered, quiet, disconnected, reconnected) == (2, 14, 4, 4, 0, 2, 2)
            and sns_ids == bus_ids
            and webhooks_ok
            and feed_ok
            and chats_ok
            and workspaces.as_expected()
        )
        print("\nSummary")
        print(f"  events published: {len(sns_ids)} on SNS, {len(bus_ids)} on EventBridge")
        print(f"  same event ids on both targets: {sns_ids == bus_ids}")
        for key, count in sorted(demo.received.items()):
            print(f"    {key}: {count}")
        print(
            f"  webhook endpoint: {len(deliveries)} request(s), {len({d.webhook_id for d in deliveries})} failure "
            f"event(s), one refused, retried and resent with the same webhook-id and body, all verified: "
            f"{webhooks_ok}"
        )
        print(f"  event feed: the {len(feed_ids)} events SNS received by step 7, each once: {feed_ok}")
        print(
            f"  chat channels: {len(slack.received)} Slack and {len(discord.received)} Discord message(s): {chats_ok}"
        )
        crossed = not workspaces.nothing_crossed()
        print(
            f"  workspaces: {', '.join(f'{name} {status}' for name, status in workspaces.listed.items())} after the "
            f"sync; events crossing workspaces: {'some!' if crossed else 'none'}; acme paused alone: "
            f"{workspaces.paused_alone()}; as expected: {workspaces.as_expected()}"
        )
        by_workspace = ", ".join(f"{name} {count}" for name, count in sorted(emulator.calls_by_workspace().items()))
        print(f"  Genviral calls: {emulator.calls()} GET /posts/{{id}}; by workspace, every route: {by_workspace}")
        if log is not sys.stdout:
            print(f"  handler logs (JSON lines): {log.name}")
        print("  result:", "OK" if expected else "UNEXPECTED (see above)")
        return 0 if expected else 1
