"""Every document about a workspace names it (`workspace`), as its SNS attribute too: the events about posts take it
from the watch, the notices from the workspace whose relay commits them. An endpoint's disabling is about the
deployment and names none. A document stored before workspaces existed reads as `default`'s."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from genviral_relay.checking.pause import PAUSE_AFTER_REFUSAL
from genviral_relay.clock import format_ts
from genviral_relay.errors import GenviralSubscriptionRequiredError
from genviral_relay.models.endpoint_notices import EndpointDisabledEvent
from genviral_relay.models.event_kinds import EVENT_KINDS
from genviral_relay.models.events import WorkspaceEvent, parse_event
from genviral_relay.models.relay_notices import AccountStatusEvent, RelayStateEvent, parse_notice
from genviral_relay.models.webhook_documents import parse_webhook_document
from genviral_relay.relay import Relay, compose_relay
from genviral_relay.rules.account_health import account_event_id
from genviral_relay.rules.endpoint_health import NOTICE_NAMESPACE
from genviral_relay.rules.relay_pause import relay_notice_id
from tests.builders import ACCOUNT_A, NOW, account, one_event_of_each_type, post
from tests.unit.world import World
from tools.event_schema import PUBLISHED_MODELS

REFUSED = GenviralSubscriptionRequiredError("no plan", status=402, error_code="subscription_required")
OUTBOUND = Path(__file__).resolve().parents[2] / "events" / "outbound"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def relay_of(world: World, workspace: str) -> Relay:
    """The check path of one workspace on its view of the world's store (its key is the world's source)."""
    view = world.store.in_workspace(workspace)
    return compose_relay(
        store=view,
        state=view,
        source=world.source,
        publishers=list(world.publishers.values()),
        dead_letters=world.dead_letters,
        clock=world.clock,
        feed=world.store.feed,
        workspace=workspace,
    )


def test_every_published_document_but_an_endpoints_disabling_names_its_workspace() -> None:
    about_a_workspace = {kind for kind, model in PUBLISHED_MODELS.items() if issubclass(model, WorkspaceEvent)}

    assert set(PUBLISHED_MODELS) - about_a_workspace == {"webhook.endpoint.disabled"}
    assert "workspace" not in EndpointDisabledEvent.model_fields


@pytest.mark.parametrize(("stored", "named"), [(None, "default"), ("default", "default"), ("acme", "acme")])
def test_each_event_about_a_post_names_the_workspace_of_its_watch(stored: str | None, named: str) -> None:
    made = one_event_of_each_type(workspace=stored)

    assert set(made) == set(EVENT_KINDS)  # every type, so a new one cannot skip this
    for event in made.values():
        assert event.model_dump(mode="json")["workspace"] == named, event.event_type
        assert event.sns_attributes()["workspace"] == named, event.event_type


def test_a_check_in_a_workspace_publishes_events_naming_it(world: World) -> None:
    acme = relay_of(world, "acme")
    world.source.put(post(account(status="posted")))

    acme.checker.check(post().id, trigger="register")

    published = world.publishers["sns"].published
    assert [event.event_type for event in published] == ["post.account.posted", "post.completed"]
    assert {event.workspace for event in published} == {"acme"}
    assert world.stored().workspace == "acme"


def test_a_pause_and_its_end_name_the_workspace_whose_key_was_refused(world: World) -> None:
    pause = relay_of(world, "acme").pause

    pause.refused(REFUSED)
    world.later(PAUSE_AFTER_REFUSAL + timedelta(seconds=1))
    pause.answered(pause.status())

    paused, resumed = world.publishers["sns"].notices
    assert isinstance(paused, RelayStateEvent)
    assert isinstance(resumed, RelayStateEvent)
    assert [(paused.event_type, paused.workspace), (resumed.event_type, resumed.workspace)] == [
        ("relay.paused", "acme"),
        ("relay.resumed", "acme"),
    ]
    assert paused.sns_attributes()["workspace"] == "acme"


def test_two_workspaces_refused_at_one_moment_are_two_pauses_each_announced() -> None:
    # A bad secret pauses every workspace at once: the same moment must not make the same notice id.
    ids = {relay_notice_id("relay.paused", NOW, workspace) for workspace in ("default", "acme", "beta")}

    assert len(ids) == 3
    # The default workspace's id is the one 0.4 derived (a pause it stored is announced under the same id).
    as_0_4 = uuid.uuid5(NOTICE_NAMESPACE, f"relay.paused#{format_ts(NOW)}")
    assert relay_notice_id("relay.paused", NOW, "default") == str(as_0_4)


def test_an_account_change_names_the_workspace_that_listed_it(world: World) -> None:
    acme = relay_of(world, "acme")
    world.source.set_account(ACCOUNT_A)
    world.source.put(post(account(status="scheduled"), scheduled_at="2025-02-02T10:00:00Z"))
    acme.checker.check(post().id, trigger="register")
    health = acme.account_health()
    health.run()
    world.source.set_account(ACCOUNT_A, status="revoked")
    world.later(timedelta(minutes=15))

    health.run()

    (notice,) = [notice for notice in world.publishers["sns"].notices if isinstance(notice, AccountStatusEvent)]
    assert (notice.event_type, notice.workspace) == ("account.disconnected", "acme")
    assert notice.event_id == account_event_id(ACCOUNT_A, 1, "acme") != account_event_id(ACCOUNT_A, 1)
    assert notice.sns_attributes()["workspace"] == "acme"


def stored_without_workspace() -> list[dict[str, object]]:
    """Every committed sample document (but a disabling's) as a release without workspaces stored it."""
    documents = []
    for path in sorted(OUTBOUND.glob("eventbridge-*.json")):
        detail = dict(json.loads(path.read_text())["detail"])
        if detail["event_type"] != "webhook.endpoint.disabled":
            assert detail.pop("workspace") == "default", path.name
            documents.append(detail)
    return documents


@pytest.mark.parametrize("document", stored_without_workspace(), ids=lambda document: str(document["event_type"]))
def test_a_document_stored_without_a_workspace_reads_as_defaults(document: dict[str, object]) -> None:
    parsed = parse_webhook_document(document)

    assert parsed.workspace == "default"
    assert parsed.sns_attributes()["workspace"] == "default"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("event-0.3.0-*.json")), ids=lambda path: path.name)
def test_a_0_3_document_reads_as_defaults(path: Path) -> None:
    assert parse_event(path.read_text()).workspace == "default"


@pytest.mark.parametrize("name", ["", "Acme", "acme corp", "a" * 41, "acme#1"])
def test_a_workspace_outside_the_names_rule_is_no_document(name: str) -> None:
    paused = json.loads((OUTBOUND / "eventbridge-relay-paused.json").read_text())["detail"]

    with pytest.raises(ValidationError):
        parse_notice({**paused, "workspace": name})
