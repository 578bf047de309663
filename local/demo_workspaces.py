"""The demo's step of several Genviral workspaces in one stack (issue 25), as an agency meets it.

The secret gains a second workspace, `acme`, beside the demo's key (now named `default`); the worker's sync picks it
up at the next tick, no deploy; a post is registered in `acme`, a misspelt name is refused; both workspaces publish,
each document naming its own; acme's key is revoked in the emulator and acme alone pauses while default's post still
publishes; the key restored, acme resumes and its withheld news arrives. Keys are never printed: the secret is shown
with placeholders, and the log file only ever gets what the relay logs.

The relay's clock runs ahead of the wall clock from here on (steps 6 and 7 moved it 33 minutes): each part runs at a
later offset, so the posts' checks come due and the pause's 5 minutes pass without waiting.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from genviral_relay import factories
from genviral_relay.checking.pause import PAUSE_AFTER_REFUSAL
from genviral_relay.cli.main import main as cli_main
from local.emulator import DEFAULT_TOKEN
from local.stack import patched_environ

if TYPE_CHECKING:
    from local.demo import Demo

ACME = "acme"
DEFAULT = "default"
ACME_KEY = "gva_live_acme.d3m0acmek3y"
"""The emulator's key for acme, never printed (the demo's own key is `DEFAULT_TOKEN`)."""
SYNCED_AT = timedelta(minutes=36)
"""Past step 7's clock; before default's next account check (every 15 minutes from 33), which would add its own
lines."""
REVOKED_AT = SYNCED_AT + timedelta(minutes=2)
RESTORED_AT = REVOKED_AT + PAUSE_AFTER_REFUSAL + timedelta(minutes=1)

Published = tuple[str, str, str]
"""(workspace, event_type, post_id or "") of a document a subscriber received."""


@dataclass
class WorkspacesOutcome:
    """What the step saw, for the Summary's checks."""

    listed: dict[str, str] = field(default_factory=dict)
    """`genviral-relay workspaces` after the sync: workspace -> status."""
    registered: tuple[int, str | None] = (0, None)
    """POST /watches in acme: status and the watch's workspace."""
    refused: tuple[int, str, str] = (0, "", "")
    """POST /watches with a name the secret lacks: status, error code, message."""
    waves: dict[str, list[Published]] = field(default_factory=dict)
    """Per part (both, paused, resumed): what the two subscribers received, SNS and EventBridge alike."""
    posts: dict[str, str] = field(default_factory=dict)
    """workspace -> the post the step created in it."""
    attributes_agree: bool = True
    """Every SNS message's `workspace` attribute names its document's workspace."""

    def as_expected(self) -> bool:
        acme, default = self.posts.get(ACME, "?"), self.posts.get(DEFAULT, "?")
        posted, completed = "post.account.posted", "post.completed"
        expected = {
            "both": [(ACME, posted, acme), (DEFAULT, posted, default)],
            "paused": [(ACME, "relay.paused", ""), (DEFAULT, posted, default), (DEFAULT, completed, default)],
            "resumed": [(ACME, "relay.resumed", ""), (ACME, posted, acme), (ACME, completed, acme)],
        }
        return (
            self.listed == {DEFAULT: "active", ACME: "active"}
            and self.registered == (201, ACME)
            and self.refused[:2] == (400, "unknown_workspace")
            and ACME in self.refused[2]
            and DEFAULT in self.refused[2]
            and self.attributes_agree
            and self.nothing_crossed()
            and self.paused_alone()
            # Each document once on each of the two targets
            and all(sorted(self.waves.get(part, [])) == sorted(events * 2) for part, events in expected.items())
        )

    def nothing_crossed(self) -> bool:
        """Each post's documents name the workspace it was created in; pauses and resumptions are acme's alone."""
        workspace_of = {post_id: workspace for workspace, post_id in self.posts.items()}
        return all(
            (workspace_of.get(post_id) == workspace) if post_id else workspace == ACME
            for wave in self.waves.values()
            for workspace, _type, post_id in wave
        )

    def paused_alone(self) -> bool:
        """While acme's key was refused: acme paused, no other workspace did, and default's post still published."""
        wave = self.waves.get("paused", [])
        pauses = {workspace for workspace, event_type, _post in wave if event_type == "relay.paused"}
        return pauses == {ACME} and any(workspace == DEFAULT and post_id for workspace, _type, post_id in wave)


def secret_for_show() -> str:
    """The secret as the step describes it: the keys' places, never their text."""
    return json.dumps({"workspaces": {DEFAULT: "<the demo's key>", ACME: "<acme's key>"}})


def several_workspaces(demo: Demo, step: int, default_accounts: list[str]) -> WorkspacesOutcome:
    """`default_accounts`: accounts of the demo's workspace, which the relay's account directory already knows."""
    outcome = WorkspacesOutcome()
    emulator, stack = demo.emulator, demo.stack
    print(f"\n{step}. An agency adds a second Genviral workspace, acme, with its own key: the secret becomes")
    print(f"   {secret_for_show()}")
    print('   No deploy: within 5 minutes (here, the next tick) the poller queues {"workspaces": "sync"}; a worker')
    print("   reads the secret and records both workspaces, which the poller ticks from then on")
    emulator.add_workspace(ACME, ACME_KEY)
    secret = json.dumps({"workspaces": {DEFAULT: DEFAULT_TOKEN, ACME: ACME_KEY}})
    stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=secret)
    with demo.ahead(SYNCED_AT):
        demo.tick_and_work()
        outcome.listed = _workspaces_listing(demo)
        due = factories.utc_now() - timedelta(minutes=1)
        acme = emulator.create_post(workspace=ACME, accounts=2, scheduled_at=due, caption="Acme spring collection")
        default = emulator.create_post(accounts=default_accounts, scheduled_at=due, caption="Newsletter teaser")
        outcome.posts = {ACME: acme, DEFAULT: default}
        for handle, account in zip(("acme", "acme.shop"), emulator.account_ids(acme), strict=True):
            emulator.set_account(account, platform="tiktok" if handle == "acme" else "instagram", username=handle)
        print('   A post of each is registered (POST /watches with "workspace": with several, it is required);')
        print("   a misspelt name is refused with the names the stack knows (never a key)")
        answer = demo.api("POST", "/watches", {"post_id": acme, "workspace": ACME})
        outcome.registered = (answer.status, (answer.body.get("watch") or {}).get("workspace"))
        demo.api("POST", "/watches", {"post_id": default, "workspace": DEFAULT})
        wrong = demo.api("POST", "/watches", {"post_id": str(uuid.uuid4()), "workspace": "acme-inc"})
        outcome.refused = (wrong.status, wrong.body.get("error", ""), wrong.body.get("message", ""))
        print(f"    {outcome.refused[1]}: {outcome.refused[2]}")
        print("   Both publish; each document names its workspace (and SNS carries it as an attribute)")
        emulator.mark_posted(acme, emulator.account_ids(acme)[0], published_url="https://www.tiktok.com/@acme/video/1")
        emulator.mark_posted(default, emulator.account_ids(default)[0], published_url="https://x.com/brand/2")
    outcome.waves["both"] = _tick_and_show(demo, outcome, SYNCED_AT + timedelta(minutes=1))

    print("   acme's key is revoked in Genviral: acme alone pauses (relay.paused names it); default goes on")
    emulator.revoke_key(ACME)
    emulator.mark_posted(acme, emulator.account_ids(acme)[1], published_url="https://instagram.com/p/acme1")
    emulator.mark_posted(default, emulator.account_ids(default)[1], published_url="https://x.com/brand/3")
    outcome.waves["paused"] = _tick_and_show(demo, outcome, REVOKED_AT)

    minutes = PAUSE_AFTER_REFUSAL.seconds // 60
    print(f"   The key is restored: after the pause ({minutes} minutes, the clock moved) acme resumes, and what it")
    print("   owed meanwhile arrives")
    emulator.restore_key(ACME)
    outcome.waves["resumed"] = _tick_and_show(demo, outcome, RESTORED_AT)
    return outcome


def _workspaces_listing(demo: Demo) -> dict[str, str]:
    """`genviral-relay workspaces`, as an operator runs it against the stack: printed, and workspace -> status."""
    out = io.StringIO()
    with patched_environ(demo.stack.cli_environment()), _captured(out):
        cli_main(["workspaces"])
    print("  $ genviral-relay workspaces")
    listed: dict[str, str] = {}
    for line in out.getvalue().splitlines():
        print(f"    {line}")
        columns = line.split()
        if len(columns) > 1 and columns[1] in ("active", "removed", "unknown"):
            listed[columns[0]] = columns[1]
    return listed


@contextlib.contextmanager
def _captured(out: io.StringIO) -> Iterator[None]:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        yield


def _tick_and_show(demo: Demo, outcome: WorkspacesOutcome, at: timedelta) -> list[Published]:
    with demo.ahead(at):
        demo.tick_and_work()
    documents, attributes_agree = demo.show_brief()
    outcome.attributes_agree = outcome.attributes_agree and attributes_agree
    return [(document["workspace"], document["event_type"], document.get("post_id", "")) for document in documents]
