"""An endpoint's `workspaces` filter, on the doubles: only the documents of the workspaces it names go to the
endpoint (the notices of a workspace's key included), beside the other filters; what it leaves out is recorded
`filtered` at the fan-out and dropped at the attempt."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from genviral_relay.models.event_log import DeliveryState, FeedEntry
from genviral_relay.models.events import published_document
from genviral_relay.models.webhook_api import CreateWebhookRequest
from genviral_relay.models.webhook_documents import WebhookDocument
from genviral_relay.models.webhooks import EndpointFilter, given_filter
from genviral_relay.rules.webhook_filters import passes
from genviral_relay.webhooks.attempts import DeliveryItem
from genviral_relay.webhooks.fanout import FanoutItem
from tests.builders import relay_event
from tests.support.doubles import RecordingSender
from tests.support.notice_samples import NOTICES
from tests.support.webhook_rig import WebhookRig

URL = "https://hooks.example.com/genviral"
ACME = EndpointFilter(workspaces=("acme",))


def in_workspace(document: WebhookDocument, workspace: str) -> WebhookDocument:
    return document.model_copy(update={"workspace": workspace})


def every_document() -> list[WebhookDocument]:
    types = ("post.account.posted", "post.account.failed", "post.account.delayed", "post.account.url_resolved")
    return [*(relay_event(kind, f"e-{kind}") for kind in (*types, "post.completed")), *NOTICES.values()]


@pytest.mark.parametrize("document", every_document(), ids=lambda document: document.event_type)
def test_only_the_named_workspaces_documents_pass_notices_of_a_key_included(document: WebhookDocument) -> None:
    assert passes(ACME, in_workspace(document, "acme"))
    assert not passes(ACME, in_workspace(document, "beta"))
    assert not passes(ACME, document)  # `default`'s
    assert passes(EndpointFilter(workspaces=("beta", "default")), document)


def test_workspaces_combine_with_the_other_filters() -> None:
    failed = relay_event("post.account.failed", "e1")  # on Instagram, media rejected
    both = EndpointFilter(workspaces=("acme",), platforms=("instagram",))

    assert passes(both, in_workspace(failed, "acme"))
    assert not passes(both, failed)
    assert not passes(EndpointFilter(workspaces=("acme",), platforms=("tiktok",)), in_workspace(failed, "acme"))
    # A key's pause is about every account of its workspace: only `workspaces` applies to it
    paused = NOTICES["relay.paused"]
    assert passes(EndpointFilter(workspaces=("acme",), platforms=("tiktok",)), in_workspace(paused, "acme"))
    assert not passes(EndpointFilter(workspaces=("acme",), platforms=("tiktok",)), paused)


def test_a_filter_naming_only_workspaces_is_a_filter() -> None:
    assert given_filter(ACME) == ACME
    assert EndpointFilter(workspaces=("acme", "beta", "acme")).workspaces == ("acme", "beta")


@pytest.mark.parametrize(
    ("workspaces", "says"),
    [
        ([], "filter.workspaces must name at least one; leave it out to match any"),
        (["Acme"], "String should match pattern '^[a-z0-9-]{1,40}$'"),
        (["acme corp"], "String should match pattern"),
        (["a" * 41], "String should match pattern"),
        ([f"w{n}" for n in range(101)], "at most 100 items"),
    ],
)
def test_a_workspace_name_outside_the_rule_is_refused_saying_why(workspaces: list[str], says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        CreateWebhookRequest(url=URL, filter={"workspaces": workspaces})  # type: ignore[arg-type]


class Rig(WebhookRig):
    def __init__(self) -> None:
        super().__init__(RecordingSender())

    def register(self, **fields: Any) -> str:
        return self.registry.create(CreateWebhookRequest(url=f"{URL}/{len(self.store.items)}", **fields)).id

    def publish(self, event_id: str, workspace: str) -> None:
        """An event of `workspace` the check committed: stored, in the feed, fanned out."""
        event = relay_event("post.account.failed", event_id).model_copy(update={"workspace": workspace})
        self.events.add(event)
        document = published_document(event).decode()
        self.feed.append([FeedEntry(committed_at=self.now, event_id=event_id, event_type=event.event_type,
                                    post_id=event.post_id, document=document)])  # fmt: skip
        assert self.fanout.run([FanoutItem(f"m-{event_id}", event_id, event.event_type, event.post_id, document)]) == []


def test_the_fan_out_sends_each_workspaces_events_to_its_endpoints_and_records_the_rest_filtered() -> None:
    rig = Rig()
    acme = rig.register(filter=ACME)
    beta = rig.register(filter=EndpointFilter(workspaces=("beta",)))
    every = rig.register()

    rig.publish("00000000-0000-4000-8000-00000000000a", "acme")
    rig.publish("00000000-0000-4000-8000-00000000000b", "beta")

    queued = sorted((one.webhook_id, one.event_id[-1]) for one in rig.queue.sent)
    assert queued == sorted([(acme, "a"), (every, "a"), (beta, "b"), (every, "b")])
    assert rig.delivery_log.deliveries("00000000-0000-4000-8000-00000000000a") == [
        DeliveryState(webhook_id=beta, event_id="00000000-0000-4000-8000-00000000000a", state="filtered")
    ]


def test_an_endpoint_edited_to_another_workspace_after_the_fan_out_is_not_sent_what_it_now_leaves_out() -> None:
    rig = Rig()
    webhook_id = rig.register(filter=ACME)
    rig.publish("00000000-0000-4000-8000-00000000000a", "acme")
    stored = rig.store.items[webhook_id]
    rig.store.items[webhook_id] = stored.model_copy(update={"filter": EndpointFilter(workspaces=("beta",))})

    rig.attempts.run([DeliveryItem(f"d{n}", delivery) for n, delivery in enumerate(rig.queue.take())])

    assert rig.sender.posts == []
    assert [state.state for state in rig.delivery_log.deliveries("00000000-0000-4000-8000-00000000000a")] == [
        "filtered"
    ]
