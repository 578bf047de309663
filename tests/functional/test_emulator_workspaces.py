"""The Genviral emulator with several workspaces: each key sees its own workspace only, over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from local.emulator import DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID, Fault, GenviralEmulator, workspace_id
from tests.support.doubles import SteppingClock

NOW = datetime(2025, 1, 20, 12, 5, 11, 205_000, tzinfo=UTC)
KEYS = {"acme": "tok-acme", "beta": "tok-beta"}


@pytest.fixture
def emulator() -> Iterator[GenviralEmulator]:
    with GenviralEmulator(workspaces=KEYS, clock=SteppingClock(NOW)) as emu:
        yield emu
    assert emu.handler_errors == []


def get(emu: GenviralEmulator, workspace: str, path: str, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {KEYS[workspace]}"}
    return requests.get(f"{emu.base_url}{path}", params=params, headers=headers, timeout=2)


def data(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_each_key_sees_only_its_workspace_posts(emulator: GenviralEmulator) -> None:
    acme = emulator.create_post(workspace="acme")
    beta = emulator.create_post(workspace="beta")

    assert data(get(emulator, "acme", f"/posts/{acme}"))["id"] == acme
    foreign = get(emulator, "acme", f"/posts/{beta}")
    assert (foreign.status_code, foreign.json()["error_code"]) == (404, "not_found")  # as an unknown post
    assert [post["id"] for post in data(get(emulator, "beta", "/posts"))["posts"]] == [beta]
    assert data(get(emulator, "beta", "/posts"))["summary"]["total"] == 1


def test_each_key_lists_only_its_workspace_accounts_with_its_own_workspace_id(emulator: GenviralEmulator) -> None:
    emulator.create_post(accounts=["acct-a1", "acct-a2"], workspace="acme")
    emulator.create_post(accounts=["acct-b1"], workspace="beta")
    emulator.set_account("acct-b2", workspace="beta", username="beta_two")

    acme, beta = data(get(emulator, "acme", "/accounts")), data(get(emulator, "beta", "/accounts"))

    assert [account["id"] for account in acme["accounts"]] == ["acct-a1", "acct-a2"]
    assert [account["id"] for account in beta["accounts"]] == ["acct-b1", "acct-b2"]
    assert (acme["workspace_id"], beta["workspace_id"]) == (workspace_id("acme"), workspace_id("beta"))
    assert len({acme["workspace_id"], beta["workspace_id"], DEFAULT_WORKSPACE_ID}) == 3
    assert {account["workspace_id"] for account in beta["accounts"]} == {beta["workspace_id"]}


def test_an_account_belongs_to_one_workspace(emulator: GenviralEmulator) -> None:
    emulator.create_post(accounts=["acct-a"], workspace="acme")
    emulator.set_account("acct-a", status="paused")  # an existing account stays in its workspace

    with pytest.raises(ValueError, match="belongs to workspace acme"):
        emulator.create_post(accounts=["acct-a"], workspace="beta")
    with pytest.raises(ValueError, match="belongs to workspace acme"):
        emulator.set_account("acct-a", workspace="beta")
    assert data(get(emulator, "beta", "/accounts"))["accounts"] == []


def test_a_revoked_key_answers_401_on_every_route_until_restored_and_the_other_goes_on(
    emulator: GenviralEmulator,
) -> None:
    acme = emulator.create_post(workspace="acme")
    beta = emulator.create_post(workspace="beta")

    emulator.revoke_key("acme")

    for path in (f"/posts/{acme}", "/posts", "/accounts"):
        refused = get(emulator, "acme", path)
        assert (refused.status_code, refused.json()["error_code"]) == (401, "invalid_token")
    assert data(get(emulator, "beta", f"/posts/{beta}"))["id"] == beta
    assert emulator.requests_log[-1].workspace == "beta"
    assert [record.workspace for record in emulator.requests_log[:3]] == [None, None, None]

    emulator.restore_key("acme")

    assert data(get(emulator, "acme", f"/posts/{acme}"))["id"] == acme
    with pytest.raises(KeyError, match="unknown workspace"):
        emulator.revoke_key("gamma")


def test_a_revoked_key_consumes_no_fault(emulator: GenviralEmulator) -> None:
    acme = emulator.create_post(workspace="acme")
    emulator.inject(Fault.server_error())
    emulator.revoke_key("acme")

    assert get(emulator, "acme", f"/posts/{acme}").status_code == 401
    assert emulator.pending_faults() == 1


def test_a_workspace_fault_is_taken_by_that_workspace_only(emulator: GenviralEmulator) -> None:
    acme = emulator.create_post(workspace="acme")
    beta = emulator.create_post(workspace="beta")
    emulator.inject(Fault.server_error(), workspace="acme")

    assert get(emulator, "beta", f"/posts/{beta}").status_code == 200
    assert get(emulator, "acme", f"/posts/{acme}").status_code == 500
    assert get(emulator, "acme", f"/posts/{acme}").status_code == 200


def test_calls_are_counted_per_workspace(emulator: GenviralEmulator) -> None:
    acme = emulator.create_post(workspace="acme")
    get(emulator, "acme", f"/posts/{acme}")
    get(emulator, "acme", "/accounts")
    get(emulator, "beta", "/posts")
    requests.get(f"{emulator.base_url}/posts", headers={"Authorization": "Bearer wrong"}, timeout=2)

    assert emulator.calls_by_workspace() == {"acme": 2, "beta": 1}


def test_a_workspace_added_mid_run_is_served_and_keys_stay_distinct(emulator: GenviralEmulator) -> None:
    emulator.add_workspace("gamma", "tok-gamma")
    gamma = emulator.create_post(workspace="gamma")

    answer = requests.get(
        f"{emulator.base_url}/posts/{gamma}", headers={"Authorization": "Bearer tok-gamma"}, timeout=2
    )

    assert data(answer)["id"] == gamma
    assert emulator.workspaces() == ["acme", "beta", "gamma"]
    with pytest.raises(ValueError, match="its own"):
        emulator.add_workspace("delta", "tok-acme")


def test_tokens_stay_the_default_workspace_beside_named_ones() -> None:
    with GenviralEmulator(tokens=[DEFAULT_TOKEN], workspaces={"acme": "tok-acme"}) as emu:
        default = emu.create_post()
        acme = emu.create_post(workspace="acme")
        plain = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}

        listed = requests.get(f"{emu.base_url}/posts", headers=plain, timeout=2).json()["data"]["posts"]

        assert [post["id"] for post in listed] == [default]
        assert requests.get(f"{emu.base_url}/posts/{acme}", headers=plain, timeout=2).status_code == 404
        assert emu.workspaces() == ["acme", "default"]
        emu.revoke_key("default")
        assert requests.get(f"{emu.base_url}/posts/{default}", headers=plain, timeout=2).status_code == 401


def test_named_workspaces_alone_leave_the_demo_key_out_and_keys_must_differ() -> None:
    assert GenviralEmulator(workspaces=KEYS).tokens == set()
    assert GenviralEmulator().tokens == {DEFAULT_TOKEN}
    with pytest.raises(ValueError, match="its own"):
        GenviralEmulator(workspaces={"acme": "same", "beta": "same"})
    with pytest.raises(ValueError, match="its own"):
        GenviralEmulator(tokens=["same"], workspaces={"acme": "same"})
