"""Each workspace's share of the stack's queue backlog (`rules/backlog_shares.py`): pure arithmetic."""

from __future__ import annotations

from genviral_relay.rules.backlog_shares import BacklogShares


def test_the_backlog_is_shared_in_proportion_to_what_each_workspace_has_waiting() -> None:
    shares = BacklogShares()
    shares.measured(0, ["acme", "beta"])
    shares.queued("acme", 300)
    shares.queued("beta", 100)

    shares.measured(200, ["acme", "beta"])  # the fleet took half of everything

    assert (shares.of("acme"), shares.of("beta")) == (150, 50)
    shares.queued("beta", 10)
    assert shares.of("beta") == 60  # with what it queued since


def test_a_fresh_poller_shares_a_backlog_it_did_not_queue_alike() -> None:
    shares = BacklogShares()

    shares.measured(90, ["acme", "beta", "gamma"])

    assert [shares.of(workspace) for workspace in ("acme", "beta", "gamma")] == [30, 30, 30]


def test_an_unknown_backlog_is_nobodys_and_a_workspace_no_longer_ticked_drops_out() -> None:
    shares = BacklogShares()
    shares.measured(0, ["acme", "beta"])
    shares.queued("acme", 10)
    shares.queued("beta", 10)

    shares.measured(20, ["beta"])
    assert (shares.of("acme"), shares.of("beta")) == (0, 20)

    shares.measured(None, ["beta"])
    assert shares.of("beta") is None  # as one stack's unknown backlog: nothing is limited
    shares.queued("beta", 5)
    assert shares.of("beta") is None
