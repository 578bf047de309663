"""The operations CLI in a stack of several Genviral workspaces: `--workspace` where a command acts on posts, and
`genviral-relay workspaces` (moto stack of template.yaml, the emulator with a key per workspace)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from genviral_relay.clock import utc_now
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.workspace_registry import WORKSPACES_RECORD, WorkspaceRegistry
from local.emulator import GenviralEmulator
from local.stack import MotoStack
from tests.conftest import SECRETS
from tests.functional.test_cli import Cli, cli, deployed, store_of  # noqa: F401 - the fixtures

ACME = "gva_live_acme.aaaaaaaaaaaaaaaa"
BETA = "gva_live_beta.bbbbbbbbbbbbbbbb"
GONE = "gva_live_gone.cccccccccccccccc"


@pytest.fixture
def two_workspaces(emulator: GenviralEmulator, deployed: MotoStack) -> MotoStack:  # noqa: F811
    """The deployment's secret names acme and beta; the emulator knows both keys."""
    SECRETS.update({ACME, BETA, GONE})
    emulator.add_workspace("acme", ACME)
    emulator.add_workspace("beta", BETA)
    secret = json.dumps({"workspaces": {"acme": ACME, "beta": BETA}})
    deployed.client("secretsmanager").put_secret_value(SecretId=deployed.secret_arn, SecretString=secret)
    return deployed


def posted(emulator: GenviralEmulator, workspace: str) -> str:
    post_id = emulator.create_post(workspace=workspace, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    (account,) = emulator.account_ids(post_id)
    emulator.mark_posted(post_id, account)
    return post_id


def write_registry(stack: MotoStack, registry: WorkspaceRegistry) -> None:
    notices = store_of(stack).notices
    record = notices.record(WORKSPACES_RECORD)
    notices.commit(
        WORKSPACES_RECORD,
        registry.model_dump_json(),
        expected_version=record.version if record is not None else 0,
        notices=(),
        owed=(),
        committed_at=utc_now(),
    )


def test_watches_add_needs_a_known_workspace_when_the_secret_names_several(
    emulator: GenviralEmulator,
    two_workspaces: MotoStack,
    cli: Cli,  # noqa: F811
) -> None:
    post_id = posted(emulator, "acme")

    unnamed = cli("watches", "add", post_id, "--json")
    unknown = cli("watches", "add", post_id, "--workspace", "gamma", "--json")
    malformed = cli("watches", "add", post_id, "--workspace", "Acme!")

    assert (unnamed.code, unnamed.error()["error"]) == (1, "usage")
    assert "acme, beta" in unnamed.error()["message"]
    assert (unknown.code, unknown.error()["error"]) == (1, "not_found")
    assert "no workspace gamma (it names acme, beta)" in unknown.error()["message"]
    assert malformed.code == 2
    assert "lower-case letters, digits and dashes" in malformed.err
    assert store_of(two_workspaces).get(post_id) is None
    assert emulator.calls(post_id) == 0


def test_watches_add_registers_with_the_workspaces_key_and_the_watch_stays_in_it(
    emulator: GenviralEmulator,
    two_workspaces: MotoStack,
    cli: Cli,  # noqa: F811
) -> None:
    post_id = posted(emulator, "acme")

    added = cli("watches", "add", post_id, "--workspace", "acme", "--json")
    elsewhere = cli("watches", "add", post_id, "--workspace", "beta", "--json")
    again = cli("watches", "add", post_id)

    assert added.code == 0, added.err
    assert added.json()["result"] == "changed"
    stored = store_of(two_workspaces).get(post_id)
    assert stored is not None
    assert stored.workspace == "acme"
    assert {record.workspace for record in emulator.requests_log if record.post_id == post_id} == {"acme"}
    assert (elsewhere.code, elsewhere.error()["error"]) == (1, "conflict")
    assert "watched in workspace acme, not beta" in elsewhere.error()["message"]
    assert again.code == 0, again.err  # its own workspace, without the option
    assert "already watched (unchanged) in workspace acme" in again.out


def test_check_uses_the_watchs_workspace_or_the_one_named(
    emulator: GenviralEmulator,
    two_workspaces: MotoStack,
    cli: Cli,  # noqa: F811
) -> None:
    watched, unwatched = posted(emulator, "acme"), posted(emulator, "beta")
    assert cli("watches", "add", watched, "--workspace", "acme").code == 0

    by_watch = cli("check", watched, "--json")
    named = cli("check", unwatched, "--workspace", "beta", "--json")
    wrong_key = cli("check", unwatched, "--workspace", "acme", "--json")

    assert by_watch.code == 0, by_watch.err
    assert by_watch.json()["workspace"] == "acme"
    assert named.code == 0, named.err
    assert (named.json()["workspace"], named.json()["compared_with"]) == ("beta", "first_sighting")
    assert (wrong_key.code, wrong_key.error()["error"]) == (1, "not_found")  # acme's key does not see beta's post


def test_watches_list_filters_by_workspace_and_names_each_rows_workspace(two_workspaces: MotoStack, cli: Cli) -> None:  # noqa: F811
    store, now = store_of(two_workspaces), utc_now()
    ids = [f"00000000-0000-4000-8000-00000000000{index}" for index in range(1, 4)]
    for post_id, workspace in zip(ids, ("acme", "beta", "default"), strict=True):
        view = store.in_workspace(workspace)
        view.save(WatchRecord(post_id=post_id, version=1, registered_at=now, next_check_at=now,
                              workspace=None if workspace == "default" else workspace), expected_version=0,
                  new_events=())  # fmt: skip

    everything = cli("watches", "list", "--json")
    acme = cli("watches", "list", "--workspace", "acme", "--json")
    text = cli("watches", "list")

    assert {(watch["post_id"], watch["workspace"]) for watch in everything.json()["watches"]} == {
        (ids[0], "acme"),
        (ids[1], "beta"),
        (ids[2], "default"),
    }
    assert [watch["post_id"] for watch in acme.json()["watches"]] == [ids[0]]
    assert "WORKSPACE" in text.out.splitlines()[0]


def test_workspaces_lists_watches_pause_and_last_successful_call_and_reports_removed_ones(
    emulator: GenviralEmulator,
    two_workspaces: MotoStack,
    cli: Cli,  # noqa: F811
) -> None:
    store, now = store_of(two_workspaces), utc_now()
    acme_posts = [posted(emulator, "acme") for _ in range(2)]
    beta_post = posted(emulator, "beta")
    for post_id in acme_posts:
        assert cli("watches", "add", post_id, "--workspace", "acme").code == 0
    emulator.revoke_key("beta")
    refused = cli("watches", "add", beta_post, "--workspace", "beta")
    assert refused.code == 1  # the watch is kept, beta's calls pause (and acme's do not)
    orphan = "00000000-0000-4000-8000-000000000009"
    store.in_workspace("gone").save(
        WatchRecord(post_id=orphan, version=1, registered_at=now, workspace="gone"), expected_version=0, new_events=()
    )
    left_at = now - timedelta(hours=1)
    write_registry(
        two_workspaces, WorkspaceRegistry(workspaces=("acme", "beta"), removed={"gone": left_at}, synced_at=now)
    )

    run = cli("workspaces", "--json")
    text = cli("workspaces")

    assert run.code == 0, run.err
    by_name = {report["workspace"]: report for report in run.json()["workspaces"]}
    assert list(by_name) == ["acme", "beta", "gone"]
    acme, beta, gone = by_name["acme"], by_name["beta"], by_name["gone"]
    assert (acme["status"], acme["watching"], acme["stopped"]) == ("active", 0, 2)  # posted: finished at once
    assert acme["paused_until"] is None
    assert acme["last_successful_call"] is not None
    assert acme["last_successful_call_seen_in"] in ("account_directory", "watch_changed")
    assert (beta["status"], beta["watching"]) == ("active", 1)
    assert beta["paused_until"] is not None
    assert "401" in beta["pause_reason"] or "refused" in beta["pause_reason"]
    assert beta["last_successful_call"] is None
    assert (gone["status"], gone["watching"], gone["post_ids"]) == ("removed", 1, [orphan])
    assert gone["removed_at"] is not None
    assert store.get(orphan) is not None  # reported, never deleted
    assert "gone: removed, its watches are kept" in text.out
    assert "beta: paused" in text.out


def test_workspaces_before_the_first_sync_is_the_default_workspace(deployed: MotoStack, cli: Cli) -> None:  # noqa: F811
    run = cli("workspaces", "--json")

    assert run.code == 0, run.err
    assert [report["workspace"] for report in run.json()["workspaces"]] == ["default"]
    assert run.json()["synced_at"] is None
    assert "no workspace registry yet" in run.err
