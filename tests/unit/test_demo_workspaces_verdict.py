"""The verdict of `make demo`'s workspaces step (local/demo_workspaces.py): it accepts what the relay should do and
fails the demo on each way it could go wrong (the demo itself runs in tests/functional/test_samples.py)."""

from __future__ import annotations

import json

import pytest

from local.demo_workspaces import ACME, DEFAULT, WorkspacesOutcome, secret_for_show

ACME_POST, DEFAULT_POST = "a-post", "d-post"
POSTED, COMPLETED = "post.account.posted", "post.completed"


def as_seen() -> WorkspacesOutcome:
    """What a good run sees: each wave's documents once on each of the two targets."""
    waves = {
        "both": [(ACME, POSTED, ACME_POST), (DEFAULT, POSTED, DEFAULT_POST)],
        "paused": [(ACME, "relay.paused", ""), (DEFAULT, POSTED, DEFAULT_POST), (DEFAULT, COMPLETED, DEFAULT_POST)],
        "resumed": [(ACME, "relay.resumed", ""), (ACME, POSTED, ACME_POST), (ACME, COMPLETED, ACME_POST)],
    }
    return WorkspacesOutcome(
        listed={DEFAULT: "active", ACME: "active"},
        registered=(201, ACME),
        refused=(
            400,
            "unknown_workspace",
            "the Genviral secret names no workspace x; this stack's workspaces: acme, default",
        ),
        waves={part: events * 2 for part, events in waves.items()},
        posts={ACME: ACME_POST, DEFAULT: DEFAULT_POST},
    )


def test_a_good_run_is_as_expected() -> None:
    outcome = as_seen()
    assert outcome.as_expected()
    assert outcome.nothing_crossed()
    assert outcome.paused_alone()


def test_a_document_naming_another_workspace_crosses() -> None:
    outcome = as_seen()
    outcome.waves["both"][0] = (DEFAULT, POSTED, ACME_POST)
    assert not outcome.nothing_crossed()
    assert not outcome.as_expected()


def test_a_pause_of_the_workspace_whose_key_works_is_not_acme_alone() -> None:
    outcome = as_seen()
    outcome.waves["paused"] += [(DEFAULT, "relay.paused", "")] * 2
    assert not outcome.paused_alone()
    assert not outcome.as_expected()


def test_default_held_back_while_acme_is_paused_fails() -> None:
    outcome = as_seen()
    outcome.waves["paused"] = [event for event in outcome.waves["paused"] if event[0] == ACME]
    assert not outcome.paused_alone()
    assert not outcome.as_expected()


@pytest.mark.parametrize(
    "change",
    [
        {"listed": {DEFAULT: "active"}},  # the sync did not pick acme up
        {"registered": (400, None)},
        {"refused": (400, "unknown_workspace", "the Genviral secret names no workspace x")},  # names no known one
        {"refused": (400, "unknown_workspace", "this stack's workspaces: acme")},  # names acme alone
        {"refused": (400, "unknown_workspace", "this stack's workspaces: default")},  # names default alone
        {"refused": (201, "", "")},
        {"attributes_agree": False},
    ],
)
def test_each_other_check_can_fail_the_demo(change: dict[str, object]) -> None:
    outcome = as_seen()
    for name, value in change.items():
        setattr(outcome, name, value)
    assert not outcome.as_expected()


@pytest.mark.parametrize("part", ["both", "paused", "resumed"])
def test_a_missing_or_repeated_event_fails_the_demo(part: str) -> None:
    missing, repeated = as_seen(), as_seen()
    missing.waves[part].pop()
    repeated.waves[part].append(repeated.waves[part][-1])
    assert not missing.as_expected()
    assert not repeated.as_expected()


def test_the_secret_is_shown_without_its_keys() -> None:
    shown = json.loads(secret_for_show())
    assert list(shown["workspaces"]) == [DEFAULT, ACME]
    assert all(value.startswith("<") for value in shown["workspaces"].values())
