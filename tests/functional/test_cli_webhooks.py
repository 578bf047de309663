"""`genviral-relay webhooks list|show|resend|enable|disable` on the moto stack: --json, exit codes, confirmation."""

from __future__ import annotations

import pytest

from genviral_relay.aws.webhook_store import DynamoDbWebhookStore
from genviral_relay.cli.output import Exit
from genviral_relay.clock import utc_now
from genviral_relay.models.webhooks import EndpointFilter, WebhookEndpoint
from local.stack import MotoStack
from tests.functional.test_cli import Cli, cli, deployed  # noqa: F401 - the fixtures

HOOK = WebhookEndpoint(
    id="wh_" + "1" * 32,
    url="https://hooks.example.com/secret-path",
    event_types=("post.account.failed",),
    created_at=utc_now(),
    filter=EndpointFilter(platforms=("tiktok",)),
    rate_limit=3,
)
UNKNOWN = "wh_" + "9" * 32


@pytest.fixture
def hooked(deployed: MotoStack) -> MotoStack:  # noqa: F811 - the imported fixture
    DynamoDbWebhookStore(deployed.client("dynamodb"), deployed.ref("StateTable")).create(HOOK, limit=100)
    return deployed


def test_list_and_show_answer_as_the_api_and_print_only_the_host(hooked: MotoStack, cli: Cli) -> None:  # noqa: F811
    listed = cli("webhooks", "list", "--json")
    assert listed.code == Exit.OK, listed.err
    (view,) = listed.json()["webhooks"]
    assert (view["id"], view["filter"]["platforms"], view["rate_limit"], view["enabled"]) == (
        HOOK.id, ["tiktok"], 3, True
    )  # fmt: skip
    text = cli("webhooks", "list")
    assert "hooks.example.com" in text.out
    assert "secret-path" not in text.out
    shown = cli("webhooks", "show", HOOK.id, "--json")
    assert (shown.code, shown.json()["id"], shown.json()["delivery"]["failing_since"]) == (0, HOOK.id, None)
    text = cli("webhooks", "show", HOOK.id)
    assert "host: hooks.example.com" in text.out
    assert "secret-path" not in text.out
    missing = cli("webhooks", "show", UNKNOWN, "--json")
    assert (missing.code, missing.error()["error"]) == (Exit.FAILED, "not_found")
    bad = cli("webhooks", "show", "wh_nope")
    assert bad.code == Exit.USAGE
    assert "a webhook id looks like wh_" in bad.err


def test_disable_asks_first_and_enable_turns_it_back_on(hooked: MotoStack, cli: Cli) -> None:  # noqa: F811
    declined = cli("webhooks", "disable", HOOK.id, "--json", answer="n\n")
    assert (declined.code, declined.error()["error"]) == (Exit.NOT_CONFIRMED, "not_confirmed")
    assert cli("webhooks", "show", HOOK.id, "--json").json()["enabled"] is True

    off = cli("webhooks", "disable", HOOK.id, "--reason", "maintenance", "--json", answer="y\n")
    assert off.code == Exit.OK, off.err
    assert (off.json()["enabled"], off.json()["disabled_reason"]) == (False, "maintenance")

    refused = cli("webhooks", "resend", HOOK.id, "--event-id", "11111111-1111-1111-1111-111111111111", "--yes",
                  "--json")  # fmt: skip
    assert (refused.code, refused.error()["error"]) == (Exit.FAILED, "conflict")
    assert "enable it first" in refused.error()["message"]

    on = cli("webhooks", "enable", HOOK.id, "--json")  # turning on sends nothing: no question
    assert on.code == Exit.OK, on.err
    assert (on.json()["webhook"]["enabled"], on.json()["queued"]) == (True, 0)


def test_resend_needs_exactly_one_selection_and_a_range_within_the_retention(hooked: MotoStack, cli: Cli) -> None:  # noqa: F811
    assert cli("webhooks", "resend", HOOK.id, "--yes").code == Exit.USAGE
    both = cli("webhooks", "resend", HOOK.id, "--event-id", "11111111-1111-1111-1111-111111111111", "--since", "1h")
    assert both.code == Exit.USAGE
    until_alone = cli("webhooks", "resend", HOOK.id, "--event-id", "11111111-1111-1111-1111-111111111111",
                      "--until", "1h", "--json")  # fmt: skip
    assert (until_alone.code, until_alone.error()["message"]) == (Exit.USAGE, "--until goes with --since")
    old = cli("webhooks", "resend", HOOK.id, "--since", "400d", "--yes", "--json")
    assert (old.code, old.error()["error"]) == (Exit.FAILED, "failed")
    assert "older than the retention: events are kept 30 days" in old.error()["message"]
