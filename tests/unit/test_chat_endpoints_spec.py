"""Chat endpoints at the registry, on the doubles: the format a URL gets, the pace a format gets, what an edit of
the URL or the format does to them, and the service's limit on an asked pace."""

from __future__ import annotations

from typing import Any

import pytest

from genviral_relay.errors import EndpointRefusedError
from genviral_relay.models.webhook_api import CreateWebhookRequest, EditWebhookRequest, WebhookCreated, WebhookDetail
from tests.support.doubles import RecordingSender
from tests.support.webhook_rig import WebhookRig

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX"
DISCORD = "https://discord.com/api/webhooks/123456/token-abc"
OTHER = "https://hooks.example.com/genviral"


def _rig() -> WebhookRig:
    rig = WebhookRig(RecordingSender())
    rig.resolver.names.update({"hooks.slack.com": ["34.201.1.1"], "discord.com": ["162.159.1.1"]})
    return rig


def _create(rig: WebhookRig, url: str, **fields: Any) -> WebhookCreated:
    return WebhookCreated.with_secret(rig.registry.create(CreateWebhookRequest.model_validate({"url": url, **fields})))


def test_a_slack_or_discord_url_gets_its_format_and_pace_when_none_is_named_and_the_answer_says_which() -> None:
    rig = _rig()
    slack, discord, other = _create(rig, SLACK), _create(rig, DISCORD), _create(rig, OTHER)
    assert (slack.format, slack.rate_limit) == ("slack", 1.0)
    assert (discord.format, discord.rate_limit) == ("discord", 0.5)
    assert (other.format, other.rate_limit) == ("standard", None)
    assert WebhookDetail.of(rig.registry.endpoint(slack.id)).format == "slack"  # stored so, shown so


def test_a_named_format_and_pace_are_kept_and_null_asks_for_no_pacing() -> None:
    rig = _rig()
    standard = _create(rig, SLACK, format="standard")
    teams = _create(rig, OTHER, format="teams")
    unpaced = _create(rig, DISCORD, rate_limit=None, event_types=["post.completed"])
    slower = _create(rig, DISCORD, rate_limit=0.1, event_types=["post.account.failed"])
    assert (standard.format, standard.rate_limit) == ("standard", None)
    assert (teams.format, teams.rate_limit) == ("teams", 1.0)
    assert (unpaced.format, unpaced.rate_limit) == ("discord", None)
    assert slower.rate_limit == 0.1


@pytest.mark.parametrize(
    ("url", "fields", "limit"),
    [(SLACK, {"rate_limit": 2}, "1 per second"), (DISCORD, {"rate_limit": 3}, "0.5 per second"),
     (OTHER, {"format": "teams", "rate_limit": 5}, "1.67 per second")],
)  # fmt: skip
def test_a_chat_pace_above_the_services_published_limit_is_refused_saying_the_limit(
    url: str, fields: dict[str, Any], limit: str
) -> None:
    rig = _rig()
    with pytest.raises(EndpointRefusedError, match=limit):
        _create(rig, url, **fields)
    assert rig.store.items == {}
    assert _create(rig, OTHER, rate_limit=5).rate_limit == 5  # a standard endpoint takes up to MAX_RATE_LIMIT


def test_an_edited_url_brings_its_format_and_pace_only_when_the_endpoint_had_its_old_urls() -> None:
    rig = _rig()
    detected = _create(rig, SLACK).id
    edited = rig.registry.edit(detected, EditWebhookRequest(url=DISCORD))
    assert (edited.format, edited.rate_limit) == ("discord", 0.5)
    edited = rig.registry.edit(detected, EditWebhookRequest(url=OTHER))
    assert (edited.format, edited.rate_limit) == ("standard", None)

    chosen = _create(rig, OTHER, format="slack", event_types=["post.completed"]).id  # a relay in front of Slack
    edited = rig.registry.edit(chosen, EditWebhookRequest(url=OTHER + "/2"))
    assert (edited.format, edited.rate_limit) == ("slack", 1.0)

    paced = _create(rig, SLACK, rate_limit=0.2, event_types=["post.completed"]).id
    edited = rig.registry.edit(paced, EditWebhookRequest(url=DISCORD))
    assert (edited.format, edited.rate_limit) == ("discord", 0.2)  # a chosen pace stays


def test_an_edited_format_brings_its_default_pace_and_a_kept_pace_over_its_limit_is_refused() -> None:
    rig = _rig()
    webhook = _create(rig, OTHER).id
    assert rig.registry.edit(webhook, EditWebhookRequest(format="discord")).rate_limit == 0.5
    assert rig.registry.edit(webhook, EditWebhookRequest(format="standard")).rate_limit is None
    rig.registry.edit(webhook, EditWebhookRequest(rate_limit=10))
    with pytest.raises(EndpointRefusedError, match=r"rate_limit 10 .* slack .*\(1 per second\)"):
        rig.registry.edit(webhook, EditWebhookRequest(format="slack"))
    assert rig.registry.endpoint(webhook).format == "standard"  # nothing changed
    edited = rig.registry.edit(webhook, EditWebhookRequest(format="slack", rate_limit=1))
    assert (edited.format, edited.rate_limit) == ("slack", 1.0)
