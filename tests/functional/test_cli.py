"""The operations CLI, run in-process through `main()` against the Genviral emulator and the moto
stack of template.yaml (and once as the installed `genviral-relay` command). Every run's stdout and
stderr are checked for Genviral keys."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from genviral_relay import __version__
from genviral_relay.aws.dead_letters import SqsDeadLetters
from genviral_relay.aws.delivery_log import DynamoDbDeliveryLog
from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.aws.webhook_queues import SqsDeliveryQueue
from genviral_relay.aws.webhook_store import DynamoDbWebhookStore
from genviral_relay.cli import main as cli_main
from genviral_relay.cli import replay
from genviral_relay.cli.deployment import DEFAULT_GENVIRAL_API_URL, Deployment
from genviral_relay.cli.deployment_settings import SETTINGS
from genviral_relay.cli.main import main
from genviral_relay.cli.output import ERROR_KINDS, Exit
from genviral_relay.cli.parser import EXIT_MEANINGS, build_parser, command_parsers
from genviral_relay.clock import format_ts, format_ts_or_none, moment_from, to_milliseconds, utc_now
from genviral_relay.genviral.client import USER_AGENT, GenviralClient
from genviral_relay.models.domain import OutboxEntry, WatchRecord
from genviral_relay.models.event_log import AttemptEntry, DeliveryState
from genviral_relay.models.messages import RefreshRequest
from genviral_relay.models.webhooks import WebhookDelivery, WebhookEndpoint
from genviral_relay.polling.in_flight import CheckClaims
from genviral_relay.rules.transitions import detect_transitions
from local.emulator import GenviralEmulator
from local.serve import LocalDeployment, serve
from local.stack import MotoStack
from local.template import load_template
from tests.builders import account, outcomes, post
from tests.conftest import SECRET_MARK, SECRETS, TOKEN
from tests.functional.shared_rig import stored_item
from tests.functional.subscribers import drain, transitions

WRONG_TOKEN = "gva_live_revoked.ffffffffffffffff"
UNKNOWN_POST = "99999999-9999-4999-8999-999999999999"
DEPLOYMENT_VARIABLES = (
    "TABLE_NAME", "TOPIC_ARN", "EVENT_BUS_NAME", "PUBLISH_TARGETS", "WORK_QUEUE_URL", "WORK_DLQ_URL",
    "EVENTS_DLQ_URL", "POLLER_DLQ_URL", "POLLER_FUNCTION_NAME", "GENVIRAL_SECRET_ARN", "GENVIRAL_API_URL",
    "GENVIRAL_TOKEN", "GENVIRAL_RELAY_STACK", "POLL_SCHEDULE", "FAILED_RETRY_WINDOW_HOURS", "EVENT_RETENTION_DAYS",
    "FAILURE_WEBHOOK_DLQ_URL", "FAILURE_WEBHOOK_URL", "FAILURE_WEBHOOK_API_KEY_SECRET",
    "FAILURE_WEBHOOK_API_KEY_HEADER",
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    command: str = ""
    """The command's words ("watches add"), when it ran."""
    read: frozenset[str] = frozenset()
    """The deployment settings it looked up."""

    def json(self) -> Any:
        return json.loads(self.out)

    def error(self) -> Any:
        """The JSON object a failure ends stderr with (--json)."""
        return json.loads(self.err.splitlines()[-1])


class Cli:
    """Runs `main()` with the given stdin answer; asserts no Genviral key reached stdout or stderr, and
    that the command looked up no deployment setting it does not declare (and so does not list)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch

    def __call__(self, *argv: str, answer: str = "", stdin: io.TextIOBase | None = None) -> Run:
        self._capsys.readouterr()
        self._monkeypatch.setattr(sys, "stdin", stdin or io.StringIO(answer))
        made: list[Deployment] = []

        def recording(options: Any) -> Deployment:
            made.append(Deployment(options))
            return made[-1]

        self._monkeypatch.setattr(cli_main, "Deployment", recording)
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = self._capsys.readouterr()
        for secret in (SECRET_MARK, TOKEN, WRONG_TOKEN, *SECRETS):
            assert secret not in captured.out + captured.err, f"a Genviral key reached the output of {argv}"
        if code != 2:
            assert "Traceback" not in captured.err
        if not made:
            return Run(code, captured.out, captured.err)
        (deployment,) = made
        options = deployment.options
        undeclared = deployment.read - set(options.reads)
        assert not undeclared, f"{options.usage.prog} read {sorted(undeclared)}, which it does not declare"
        command = options.usage.prog.removeprefix("genviral-relay ")
        return Run(code, captured.out, captured.err, command, frozenset(deployment.read))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in DEPLOYMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return Cli(capsys, monkeypatch)


@pytest.fixture
def deployed(stack: MotoStack, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> MotoStack:
    """The CLI pointed at the stack through the functions' environment variables."""
    for name, value in stack.cli_environment().items():
        monkeypatch.setenv(name, value)
    return stack


def store_of(stack: MotoStack) -> DynamoDbStore:
    return DynamoDbStore(
        stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=1), clock=utc_now
    )


def queue_bodies(stack: MotoStack, queue: str) -> list[str]:
    """Every visible message body of one of the template's queues (received and made visible again)."""
    sqs = stack.client("sqs")
    url = stack.ref(queue)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return sorted(message["Body"] for message in messages)


def posted_and_failed(emulator: GenviralEmulator) -> str:
    post_id = emulator.create_post(accounts=2, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    first, second = emulator.account_ids(post_id)
    emulator.mark_posted(post_id, first, published_url="https://social.example/p/1")
    emulator.mark_failed(post_id, second, error_message="Media rejected")
    return post_id


# ------------------------------------------------------------------------------------------- help


def test_every_command_has_help_with_the_exit_codes(cli: Cli) -> None:
    commands = [
        [], ["check"], ["watches"], ["watches", "list"], ["watches", "add"], ["watches", "remove"], ["replay"],
        ["redrive"], ["redrive", "events"], ["redrive", "work"], ["redrive", "poller"], ["redrive", "failure-webhook"],
        ["redrive", "webhook-deliveries"], ["redrive", "webhook"], ["redrive", "webhooks"], ["webhooks"],
        ["webhooks", "list"], ["webhooks", "show"], ["webhooks", "resend"], ["webhooks", "enable"],
        ["webhooks", "disable"],
        ["events"], ["events", "list"], ["events", "show"],
        ["webhooks", "attempts"], ["workspaces"],
    ]  # fmt: skip
    assert {" ".join(command) for command in commands} >= set(command_parsers(build_parser()))
    assert sorted(EXIT_MEANINGS) == [0, 1, 2, 3, 4, 130]
    for command in commands:
        run = cli(*command, "--help")
        assert run.code == 0, command
        assert "exit codes:" in run.out, command
        assert "    2  the command line is wrong" in run.out, command
        for code, meaning in EXIT_MEANINGS.items():
            assert f"{code:>3}  {meaning}" in run.out, (command, code)
        takes_json = re.search(r"(?<![\w-])--json(?![\w-])", run.out) is not None
        assert ('{"error": KIND, "message": TEXT}' in run.out) == takes_json, command


def _named(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_each_command_lists_only_the_settings_it_declares(cli: Cli) -> None:
    commands = command_parsers(build_parser())
    assert set(commands) == {
        "check", "watches list", "watches add", "watches remove", "replay", "redrive events", "redrive work",
        "redrive poller", "redrive failure-webhook", "redrive webhook-deliveries", "webhooks list", "webhooks show",
        "webhooks resend", "webhooks enable", "webhooks disable",
        "events list", "events show",
        "webhooks attempts", "workspaces",
    }  # fmt: skip
    for words, parser in commands.items():
        declared = set(parser.get_default("reads"))
        text = cli(*words.split(), "--help").out
        for setting in SETTINGS:
            for name in filter(None, (setting.option, setting.env)):
                assert _named(name, text) == (setting.key in declared), (words, name)
        for location in ("--stack-name", "--region", "--profile", "--json"):
            assert _named(location, text), (words, location)

    check = cli("check", "--help").out
    for used in ("--api-url", "--secret-arn", "--table", "POLL_SCHEDULE"):
        assert _named(used, check), used
    for unused in ("--topic-arn", "--event-bus", "--work-queue-url", "--events-dlq-url", "--webhook-url"):
        assert not _named(unused, check), unused
    assert len(check.splitlines()) < 50  # was 70 with every command's settings
    assert not _named("--secret-arn", cli("watches", "remove", "--help").out)  # removing calls no Genviral


def test_common_options_come_before_or_after_the_command(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli
) -> None:
    post_id = emulator.create_post()
    assert cli("watches", "add", post_id).code == 0
    table = deployed.ref("StateTable")

    before, after = cli("--json", "watches", "list"), cli("watches", "list", "--json")
    assert before.code == after.code == 0
    assert before.json() == after.json()
    assert [watch["post_id"] for watch in before.json()["watches"]] == [post_id]

    # A value before the command is used (no subcommand default overwrites it); one after it wins.
    root_only = cli("--table", "no-such-table", "watches", "list")
    assert root_only.code == 1
    assert "AWS refused Scan: ResourceNotFoundException" in root_only.err
    assert cli("--table", "no-such-table", "watches", "list", "--table", table).code == 0
    assert cli("--table", table, "watches", "list", "--table", "no-such-table").code == 1
    checked = cli("--json", "check", post_id, "--table", table)  # --verbose before: see the `watches add` test
    assert checked.code == 0, checked.err
    assert checked.json()["compared_with"] == "stored_watch"

    unused = cli("--webhook-url", "http://127.0.0.1:9/hook", "watches", "list")
    assert unused.code == 2
    assert "--webhook-url does not apply to this command" in unused.err
    assert cli("--json", "local", "serve").code == 2  # the harness is not part of the installed command


def test_the_installed_command_answers_help() -> None:
    command = shutil.which("genviral-relay", path=str(Path(sys.executable).parent))
    assert command is not None, "make venv installs the project: .venv/bin/genviral-relay"
    done = subprocess.run([command, "--help"], capture_output=True, text=True, check=False, timeout=60)  # noqa: S603
    assert done.returncode == 0
    for name in ("check", "watches", "replay", "redrive", "exit codes:"):
        assert name in done.stdout
    assert "local" not in done.stdout  # the harness runs as `python -m local`, from a checkout


def test_version_is_the_packages_and_the_user_agents(cli: Cli) -> None:
    run = cli("--version")
    assert (run.code, run.out.strip()) == (0, f"genviral-relay {__version__}")
    assert f"genviral-relay/{__version__}" == USER_AGENT
    assert importlib.metadata.version("genviral-relay") == __version__  # pyproject reads the same value


def test_the_default_api_url_is_the_template_default() -> None:
    assert load_template()["Parameters"]["GenviralApiUrl"]["Default"] == DEFAULT_GENVIRAL_API_URL


# ------------------------------------------------------------------------------------------- check


def test_check_needs_only_a_token_in_the_environment(
    emulator: GenviralEmulator, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No AWS at all: no moto, no table; a call to AWS would fail with the fake credentials
    post_id = posted_and_failed(emulator)
    monkeypatch.setenv("GENVIRAL_TOKEN", TOKEN)

    run = cli("check", post_id, "--api-url", emulator.base_url, "--json")

    assert run.code == 0, run.err
    answer = run.json()
    assert answer["compared_with"] == "first_sighting"
    assert answer["stored_watch"] is None
    assert sorted(account["status"] for account in answer["accounts"]) == ["failed", "posted"]
    assert sorted((e["status"], e["previous_status"]) for e in transitions(answer["would_emit"])) == [
        ("failed", None),
        ("posted", None),
    ]
    assert sorted(e["event_type"] for e in answer["would_emit"]) == [
        "post.account.failed",
        "post.account.posted",
        "post.completed",  # both accounts are final
    ]
    assert answer["would_watch"] is True  # the failed account keeps it in its retry window
    assert emulator.calls(post_id) == 1

    text = cli("check", post_id, "--api-url", emulator.base_url)
    assert text.code == 0
    assert "would emit 3 event(s)" in text.out  # two transitions and the completion
    assert "nothing was written or published" in text.out


def test_check_compares_with_the_stored_watch_and_writes_nothing(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli
) -> None:
    post_id = emulator.create_post(accounts=1, scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    assert cli("watches", "add", post_id).code == 0
    (account_id,) = emulator.account_ids(post_id)
    emulator.mark_posted(post_id, account_id)
    before = stored_item(deployed, post_id)

    run = cli("check", post_id, "--json")

    assert run.code == 0, run.err
    answer = run.json()
    assert answer["compared_with"] == "stored_watch"
    assert answer["stored_watch"]["accounts"][0]["status"] == "scheduled"
    (event,) = transitions(answer["would_emit"])
    assert (event["previous_status"], event["status"]) == ("scheduled", "posted")
    assert [e["event_type"] for e in answer["would_emit"]] == ["post.account.posted", "post.completed"]
    assert stored_item(deployed, post_id) == before
    assert drain(deployed).event_ids() == ([], [])


def test_check_errors_are_one_line_with_exit_code_1(
    emulator: GenviralEmulator, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_id = emulator.create_post()
    api = ("--api-url", emulator.base_url)

    missing = cli("check", post_id, *api)
    assert missing.code == 1
    assert missing.err.startswith("genviral-relay: error: no Genviral key: set GENVIRAL_TOKEN")

    bad_id = cli("check", "not-a-uuid", *api)
    assert bad_id.code == 2
    assert "post_id must be a UUID" in bad_id.err
    assert emulator.calls() == 0

    monkeypatch.setenv("GENVIRAL_TOKEN", WRONG_TOKEN)
    refused = cli("check", post_id, *api)
    assert refused.code == 1
    assert "Genviral refused the key (HTTP 401" in refused.err
    assert len(refused.err.strip().splitlines()) == 1

    monkeypatch.setenv("GENVIRAL_TOKEN", TOKEN)
    unknown = cli("check", UNKNOWN_POST, *api)
    assert unknown.code == 1
    assert f"Genviral has no post {UNKNOWN_POST} in this key's scope" in unknown.err


def test_with_json_a_failure_is_one_json_object_on_stderr(
    emulator: GenviralEmulator, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_id = emulator.create_post()
    api = ("--api-url", emulator.base_url)

    def only_error(run: Run) -> Any:
        assert run.out == ""
        assert len(run.err.splitlines()) == 1, run.err
        return json.loads(run.err)

    missing = cli("check", post_id, *api, "--json")
    assert missing.code == 1
    assert only_error(missing) == {
        "error": "not_configured",
        "message": missing.error()["message"],
    }
    assert missing.error()["message"].startswith("no Genviral key: set GENVIRAL_TOKEN")

    for argv in (("--json", "check", "not-a-uuid"), ("check", "not-a-uuid", "--json")):
        usage = cli(*argv)
        assert usage.code == 2
        assert only_error(usage)["error"] == "usage"
        assert "post_id must be a UUID" in usage.error()["message"]
    assert only_error(cli("--json", "replay"))["message"].startswith("a selection is needed")
    assert cli("check", "not-a-uuid", "--", "--json").err.startswith("usage:")  # after --, no option
    assert emulator.calls() == 0

    monkeypatch.setenv("GENVIRAL_TOKEN", WRONG_TOKEN)
    refused = cli("--json", "check", post_id, *api)
    assert refused.code == 1
    assert only_error(refused)["error"] == "genviral"
    assert "Genviral refused the key" in refused.error()["message"]

    monkeypatch.setenv("GENVIRAL_TOKEN", TOKEN)
    unknown = cli("check", UNKNOWN_POST, *api, "--json")
    assert (unknown.code, only_error(unknown)["error"]) == (1, "not_found")

    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(GenviralClient, "get_post", interrupted)  # Ctrl-C while Genviral answers
    stopped = cli("check", post_id, *api)
    assert stopped.code == Exit.INTERRUPTED == 130
    assert stopped.err == "genviral-relay: error: interrupted\n"
    stopped_json = cli("check", post_id, *api, "--json")
    assert (stopped_json.code, only_error(stopped_json)) == (130, {"error": "interrupted", "message": "interrupted"})
    assert set(ERROR_KINDS) >= {"usage", "not_configured", "genviral", "not_found", "interrupted", "aws"}


def test_check_reads_the_key_from_the_deployments_secret(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli
) -> None:
    post_id = posted_and_failed(emulator)
    run = cli("check", post_id, "--json", "--verbose")
    assert run.code == 0, run.err
    assert len(run.json()["would_emit"]) == 3  # two transitions and the completion


def test_check_predicts_the_next_check_and_the_events_the_relay_then_stores(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Awaited 100 minutes, reported delayed at 110: the overdue back-off alone (what `check` used to
    # predict) says 20 minutes from now, the relay checks at the delay's moment, 10 minutes from now.
    monkeypatch.setenv("DELAYED_AFTER_MINUTES", "110")
    scheduled_at = datetime.now(UTC) - timedelta(minutes=100)
    overdue = emulator.create_post(accounts=1, scheduled_at=scheduled_at)
    retrying = posted_and_failed(emulator)

    predicted = {post_id: cli("check", post_id, "--json").json() for post_id in (overdue, retrying)}
    for post_id in (overdue, retrying):
        assert cli("watches", "add", post_id).code == 0

    stored = {post_id: store_of(deployed).get(post_id) for post_id in (overdue, retrying)}
    delay_due = moment_from(predicted[overdue]["scheduled_at"], utc_now()) + timedelta(minutes=110)
    assert predicted[overdue]["next_check_at"] == format_ts(delay_due)
    for post_id, record in stored.items():
        assert record is not None
        assert predicted[post_id]["next_check_at"] == format_ts_or_none(record.settled_next_check_at)
        assert predicted[post_id]["awaiting_retry"] is record.awaiting_retry
    assert predicted[retrying]["awaiting_retry"] is True  # the failed account is in its retry window

    monkeypatch.setenv("DELAYED_AFTER_MINUTES", "15")  # the default: awaited for long enough
    delayed = cli("check", overdue, "--json").json()
    assert [event["event_type"] for event in delayed["would_emit"]] == ["post.account.delayed"]


# ------------------------------------------------------------------------------------------- watches


def test_watches_add_registers_checks_and_publishes_like_the_api(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli
) -> None:
    post_id = posted_and_failed(emulator)

    run = cli("--json", "--verbose", "watches", "add", post_id)  # as `watches add POST_ID --json --verbose`

    assert run.code == 0, run.err
    assert "Transition detected" in run.err  # the relay's own logs: on stderr, stdout stays JSON
    answer = run.json()
    assert answer["result"] == "changed"
    assert answer["watch"]["pending_deliveries"] == 0
    ids = sorted(event["event_id"] for event in answer["transitions"])
    assert drain(deployed).event_ids() == (ids, ids)

    again = cli("watches", "add", post_id)
    assert again.code == 0
    assert "already watched (unchanged)" in again.out
    assert drain(deployed).event_ids() == ([], [])

    gone = cli("watches", "add", UNKNOWN_POST)
    assert gone.code == 1
    assert "nothing was registered" in gone.err
    assert stored_item(deployed, UNKNOWN_POST) == {}


def test_watches_add_claims_the_post_so_a_check_queued_before_it_is_a_duplicate(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli
) -> None:
    post_id = emulator.create_post(scheduled_at=datetime.now(UTC) - timedelta(minutes=1))  # due every tick
    assert cli("watches", "add", post_id).code == 0
    store = store_of(deployed)
    created = store.get(post_id)
    assert created is not None
    assert created.claimed_at is None  # a registration that creates the watch claims nothing
    queued_at = to_milliseconds(utc_now())  # the poller queues its check

    again = cli("watches", "add", post_id, "--json")

    assert again.code == 0, again.err
    assert again.json()["result"] == "unchanged"
    record = store.get(post_id)
    assert record is not None
    assert record.claimed_at is not None
    assert record.claimed_at >= queued_at
    claims = CheckClaims(index=store, clock=utc_now, tick=timedelta(minutes=1))  # as the worker decides
    assert claims.admit(post_id, record, queued_at).check is False
    assert claims.admit(post_id, record, record.claimed_at + timedelta(milliseconds=1)).check is True


def test_watches_add_keeps_the_watch_when_genviral_refuses_the_key(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli
) -> None:
    post_id = emulator.create_post()
    deployed.rotate_token(WRONG_TOKEN)
    SECRETS.add(WRONG_TOKEN)

    run = cli("watches", "add", post_id)

    assert run.code == 1
    assert "Genviral refused the key" in run.err
    assert "The watch is kept" in run.err
    assert stored_item(deployed, post_id)["next_check_at"]  # due: the next tick checks it


def test_watches_add_with_a_key_of_its_own_neither_opens_nor_closes_the_deployments_pause(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(deployed)
    refused, answered, refused_again = (emulator.create_post() for _ in range(3))
    SECRETS.add(WRONG_TOKEN)

    # An operator's stale GENVIRAL_TOKEN is refused: the deployment's key is fine, nothing is paused
    monkeypatch.setenv("GENVIRAL_TOKEN", WRONG_TOKEN)
    assert cli("watches", "add", refused).code == 1
    assert store.genviral_pause(utc_now()).record is None

    # The deployment's own key is refused: its pause opens
    monkeypatch.delenv("GENVIRAL_TOKEN")
    deployed.rotate_token(WRONG_TOKEN)
    assert cli("watches", "add", refused_again).code == 1
    opened = store.genviral_pause(utc_now())
    assert opened.open
    assert opened.reason is not None

    # A working personal key is answered: the deployment's key is still refused, so its pause stays open
    monkeypatch.setenv("GENVIRAL_TOKEN", TOKEN)
    run = cli("watches", "add", answered)
    assert run.code == 0, run.err
    assert store.genviral_pause(utc_now()) == opened  # not written: no relay.resumed


def test_watches_list_filters(deployed: MotoStack, cli: Cli) -> None:
    store = store_of(deployed)
    now = utc_now()
    ids = [f"00000000-0000-4000-8000-00000000000{index}" for index in range(1, 5)]
    events = detect_transitions(None, post(account(status="posted"), post_id=ids[3]), now).events
    outbox = frozenset({OutboxEntry(event_id=events[0].event_id, target="sns")})
    records = [
        WatchRecord(post_id=ids[0], version=1, registered_at=now, next_check_at=now),
        WatchRecord(post_id=ids[1], version=1, registered_at=now, watching=False, ended_reason="finished"),
        WatchRecord(post_id=ids[2], version=1, registered_at=now, awaiting_retry=True, next_check_at=now),
        WatchRecord(post_id=ids[3], version=1, registered_at=now, watching=False, ended_reason="finished",
                    outbox=outbox, next_check_at=now),
    ]  # fmt: skip
    for record in records:
        store.save(record, expected_version=0, new_events=events if record.outbox else ())

    def listed(*filters: str) -> list[str]:
        run = cli("watches", "list", "--json", *filters)
        assert run.code == 0, run.err
        return sorted(watch["post_id"] for watch in run.json()["watches"])

    assert listed() == ids
    assert listed("--state", "watching") == [ids[0], ids[2]]
    assert listed("--state", "ended") == [ids[1], ids[3]]
    assert listed("--awaiting-retry") == [ids[2]]
    assert listed("--pending") == [ids[3]]
    assert listed("--state", "watching", "--pending") == []

    text = cli("watches", "list", "--state", "ended")
    assert "ended (finished)" in text.out
    assert "4 watch(es)" not in text.out
    assert "2 watch(es)" in text.out


def test_watches_remove_asks_first_and_refuses_while_events_are_pending(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_id = emulator.create_post()
    assert cli("watches", "add", post_id).code == 0

    declined = cli("watches", "remove", post_id, answer="n\n")
    assert declined.code == Exit.NOT_CONFIRMED == 4
    assert "not confirmed: nothing was changed" in declined.err
    assert "Stop watching post" in declined.err
    assert declined.err.splitlines()[-1].startswith("genviral-relay: error: not confirmed")  # on its own line
    assert stored_item(deployed, post_id)

    no_answer = cli("watches", "remove", post_id)  # no terminal, no --yes: nothing happens
    assert no_answer.code == 4
    assert stored_item(deployed, post_id)

    declined_json = cli("--json", "watches", "remove", post_id, answer="no\n")
    assert declined_json.code == 4
    assert declined_json.err.splitlines()[0].startswith("Stop watching post")
    assert declined_json.error() == {
        "error": "not_confirmed",
        "message": "not confirmed: nothing was changed (--yes skips the question)",
    }

    class CtrlC(io.StringIO):
        def readline(self, size: int | None = -1) -> str:
            raise KeyboardInterrupt

    interrupted = cli("watches", "remove", post_id, stdin=CtrlC())
    assert interrupted.code == 130
    assert interrupted.err.splitlines()[-1] == "genviral-relay: error: interrupted"
    assert stored_item(deployed, post_id)

    confirmed = cli("watches", "remove", post_id, answer="y\n")
    assert confirmed.code == 0, confirmed.err
    assert stored_item(deployed, post_id) == {}

    absent = cli("watches", "remove", post_id, "--yes")
    assert absent.code == 1
    assert f"post {post_id} is not watched" in absent.err

    # A watch whose event neither the target nor the dead-letter queue takes is kept (the API's 409)
    owing = "00000000-0000-4000-8000-000000000009"
    events = detect_transitions(None, post(account(status="posted"), post_id=owing), utc_now()).events
    outbox = frozenset({OutboxEntry(event_id=events[0].event_id, target="sns")})
    record = WatchRecord(post_id=owing, version=1, registered_at=utc_now(), outbox=outbox)
    store_of(deployed).save(record, expected_version=0, new_events=events)
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    monkeypatch.setenv("EVENTS_DLQ_URL", deployed.ref("EventsDLQ") + "-missing")

    refused = cli("watches", "remove", owing, "--yes")

    assert refused.code == 1
    assert "still has events that could not be published, so the watch is kept" in refused.err
    assert stored_item(deployed, owing)["outbox"]


def test_commands_name_what_configuration_is_missing(stack: MotoStack, cli: Cli) -> None:
    run = cli("watches", "list")
    assert run.code == 1
    assert run.err.strip() == (
        "genviral-relay: error: the DynamoDB state table is not known: pass --table, set TABLE_NAME "
        "or name the stack with --stack-name"
    )
    denied = cli("watches", "list", "--table", "no-such-table")
    assert denied.code == 1
    assert denied.err.startswith("genviral-relay: error: AWS refused Scan: ResourceNotFoundException")
    denied_json = cli("watches", "list", "--table", "no-such-table", "--json")
    assert (denied_json.code, denied_json.out) == (1, "")
    assert denied_json.error()["error"] == "aws"
    assert denied_json.error()["message"].startswith("AWS refused Scan: ResourceNotFoundException")
    assert cli("--json", "watches", "list").error()["error"] == "not_configured"


def test_stack_outputs_and_parameters_locate_the_deployment(
    emulator: GenviralEmulator, stack: MotoStack, cli: Cli
) -> None:
    environment = stack.cli_environment()
    outputs = {
        "StateTableName": environment["TABLE_NAME"],
        "EventsTopicArn": environment["TOPIC_ARN"],
        "EventBusName": environment["EVENT_BUS_NAME"],
        "EventsDLQUrl": environment["EVENTS_DLQ_URL"],
    }
    parameters = {
        "GenviralSecretArn": stack.secret_arn,
        "GenviralApiUrl": emulator.base_url,
        "PublishTargets": "both",
    }
    template = {
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    stack.client("cloudformation").create_stack(
        StackName="relay",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
    )
    post_id = posted_and_failed(emulator)

    added = cli("watches", "add", post_id, "--stack-name", "relay", "--json")

    assert added.code == 0, added.err
    assert len(drain(stack).event_ids()[1]) == 3  # two transitions and the completion
    listed = cli("watches", "list", "--stack-name", "relay", "--json")
    assert [watch["post_id"] for watch in listed.json()["watches"]] == [post_id]

    missing = cli("watches", "list", "--stack-name", "no-such-stack")
    assert missing.code == 1
    assert "AWS refused DescribeStacks: ValidationError: Stack with id no-such-stack does not exist" in missing.err


# ------------------------------------------------------------------------------------------- replay


def test_replay_republishes_stored_events_under_their_ids(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli
) -> None:
    post_id = posted_and_failed(emulator)
    other = posted_and_failed(emulator)
    events = cli("watches", "add", post_id, "--json").json()["transitions"]
    assert len(events) == 3  # two transitions and the completion
    assert cli("watches", "add", other).code == 0
    ids = sorted(event["event_id"] for event in events)
    drain(deployed)

    dry = cli("replay", "--post-id", post_id, "--dry-run", "--json")
    assert dry.code == 0
    assert sorted(event["event_id"] for event in dry.json()["events"]) == ids
    declined = cli("replay", "--post-id", post_id, answer="no\n")
    assert declined.code == 4
    assert drain(deployed).event_ids() == ([], [])

    to_sns = cli("replay", "--post-id", post_id, "--target", "sns", "--yes")
    assert to_sns.code == 0, to_sns.err
    received = drain(deployed)
    assert received.event_ids() == (ids, [])
    assert sorted(received.sns_documents(), key=lambda d: d["event_id"]) == sorted(events, key=lambda d: d["event_id"])

    one = cli("replay", "--event-id", ids[0], "--yes", "--json")
    assert one.code == 0
    assert one.json()["delivered"] == {"sns": [ids[0]], "eventbridge": [ids[0]]}
    assert drain(deployed).event_ids() == ([ids[0]], [ids[0]])

    recent = cli("replay", "--since", "10m", "--dry-run", "--json")
    assert len(recent.json()["events"]) == 6  # each post's two transitions and completion
    assert len(cli("replay", "--since", "1w", "--until", "now", "--dry-run", "--json").json()["events"]) == 6
    assert cli("replay", "--until", "10m", "--dry-run").code == 1  # nothing that old
    not_a_time = cli("replay", "--since", "yesterday")
    assert not_a_time.code == 2
    assert "is not 'now', a duration like 7d, or an ISO-8601 time" in not_a_time.err  # the one notation

    unknown = cli("replay", "--event-id", UNKNOWN_POST, "--yes")
    assert unknown.code == 1
    assert "no stored event matches the selection" in unknown.err
    assert cli("replay", "--event-id", "not-an-id").code == 2


def test_replay_reports_a_target_that_refuses(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_id = posted_and_failed(emulator)
    assert cli("watches", "add", post_id).code == 0
    drain(deployed)
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")

    run = cli("replay", "--post-id", post_id, "--target", "sns", "--yes", "--json")

    assert run.code == 1  # nothing went
    assert len(run.json()["failed"]["sns"]) == 3  # two transitions and the completion
    assert run.error() == {
        "error": "failed",
        "message": "3 publishes failed, 0 went; run the same replay again once the target takes them",
    }

    both = cli("replay", "--post-id", post_id, "--yes", "--json")  # the bus takes them, the topic does not

    assert both.code == Exit.PARTIAL == 3
    assert (len(both.json()["delivered"]["eventbridge"]), len(both.json()["failed"]["sns"])) == (3, 3)
    assert both.error()["error"] == "partial"
    assert drain(deployed).event_ids()[1] == sorted(both.json()["delivered"]["eventbridge"])
    text = cli("replay", "--post-id", post_id, "--yes")
    assert text.code == 3
    assert text.err == (
        "genviral-relay: error: 3 publishes failed, 3 went; run the same replay again once the target takes them\n"
    )


def test_replay_reads_times_as_the_relay_does() -> None:
    now = utc_now()
    assert replay.moment("2026-01-15T10:30:00.250+02:00") == moment_from("2026-01-15T10:30:00.250+02:00", now)
    assert timedelta(0) <= replay.moment("2w") - (now - timedelta(weeks=2)) < timedelta(minutes=1)
    assert timedelta(0) <= replay.moment("now") - now < timedelta(minutes=1)


# ------------------------------------------------------------------------------------------- redrive


def test_redrive_events_republishes_parked_events_and_keeps_what_fails(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = outcomes(
        detect_transitions(
            None,
            post(account(status="posted"), account("6b0c8c9c-55ac-4fcb-85ec-70b5a8b0d089", status="failed")),
            utc_now(),
        ).events
    )
    parking = SqsDeadLetters(deployed.client("sqs"), deployed.ref("EventsDLQ"), clock=utc_now)
    parking.park(first, "sns", "AuthorizationError: denied")
    parking.park(first, "sns", "AuthorizationError: denied")  # parked twice: published once, both deleted
    parking.park(second, "eventbridge", "AccessDeniedException: denied")
    deployed.client("sqs").send_message(QueueUrl=deployed.ref("EventsDLQ"), MessageBody="not json")
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")

    dry = cli("redrive", "events", "--dry-run")
    assert dry.code == 0
    assert "3 message(s) to redrive" in dry.out
    assert len(queue_bodies(deployed, "EventsDLQ")) == 4
    declined = cli("redrive", "events")
    assert declined.code == 4
    assert len(queue_bodies(deployed, "EventsDLQ")) == 4

    run = cli("redrive", "events", "--yes", "--json")

    assert run.code == 3  # partly done: two went, two stay
    assert run.error()["error"] == "partial"
    assert len(run.json()["redriven"]) == 2
    assert sorted(run.json()["left"].values())[0].startswith("eventbridge refused it again")
    assert drain(deployed).event_ids() == ([first.event_id], [])
    left = queue_bodies(deployed, "EventsDLQ")
    assert "not json" in left
    assert [json.loads(body)["event"]["event_id"] for body in left if body != "not json"] == [second.event_id]


def test_redrive_work_requeues_check_requests(deployed: MotoStack, cli: Cli) -> None:
    sqs = deployed.client("sqs")
    request = json.dumps({"post_id": "11111111-1111-1111-1111-111111111111", "reason": "due"})
    for body in (request, '{"sweep": "retry"}', '{"post_id": "nope"}'):
        sqs.send_message(QueueUrl=deployed.ref("WorkDLQ"), MessageBody=body)

    limited = cli("redrive", "work", "--dry-run", "--max", "1", "--json").json()
    assert len(limited["messages"]) + len(limited["left"]) == 1

    run = cli("redrive", "work", "--yes")

    assert run.code == 3  # partly done: the poison message stays
    assert "2 message(s) redriven" in run.out
    assert run.err == "genviral-relay: error: 1 message(s) stay in the work dead-letter queue (see above)\n"
    again = cli("redrive", "work", "--yes", "--json")
    assert again.code == 1  # only the poison message: nothing went
    assert again.error() == {
        "error": "failed",
        "message": "1 message(s) stay in the work dead-letter queue (see above)",
    }
    assert queue_bodies(deployed, "WorkDLQ") == ['{"post_id": "nope"}']
    queued = [json.loads(body) for body in queue_bodies(deployed, "WorkQueue")]
    assert sorted(map(json.dumps, queued)) == sorted(
        [
            json.dumps({"post_id": "11111111-1111-1111-1111-111111111111"}),  # 0.3.0's unread `reason` dropped
            json.dumps({"sweep": "retry"}),
        ]
    )


def test_redrive_work_lists_each_request_by_what_it_does(deployed: MotoStack, cli: Cli) -> None:
    since = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    refresh = RefreshRequest(
        refresh="created",
        since=since,
        until=since + timedelta(minutes=30),
        post_ids=("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"),
    )
    for body in (refresh.model_dump_json(), '{"discover": "posts"}', '{"notices": "flush"}'):
        deployed.client("sqs").send_message(QueueUrl=deployed.ref("WorkDLQ"), MessageBody=body)

    listed = cli("redrive", "work", "--dry-run")

    assert listed.code == 0, listed.err
    lines = sorted(line.split(maxsplit=1)[1] for line in listed.out.splitlines()[1:4])
    assert lines == [
        "bulk refresh of 2 hot posts created 2026-03-02T11:00:00.000Z to 2026-03-02T11:30:00.000Z",
        "discover new posts",
        "publish the notices still owed",
    ]


def test_the_failure_webhooks_and_the_endpoints_redrives_answer_to_their_old_names(
    deployed: MotoStack, cli: Cli
) -> None:
    sqs = deployed.client("sqs")
    webhook_dlq = sqs.create_queue(QueueName="webhook-dlq")["QueueUrl"]
    for body in ("not an event", json.dumps({"detail": {"event_id": "x"}})):
        sqs.send_message(QueueUrl=webhook_dlq, MessageBody=body)
    sqs.send_message(QueueUrl=deployed.ref("WebhookDLQ"), MessageBody="{}")  # no attributes: no delivery
    listed = " ".join(cli("redrive", "--help").out.split())  # as one line: the help wraps its summaries
    assert _named("failure-webhook", listed)
    assert _named("webhook-deliveries", listed)
    assert "Was `redrive webhook`, still accepted" in listed
    assert "Was `redrive webhooks`, still accepted" in listed

    for old, new in (("webhook", "failure-webhook"), ("webhooks", "webhook-deliveries")):
        options = ("--webhook-dlq-url", webhook_dlq) if new == "failure-webhook" else ()
        by_old, by_new = (cli("redrive", name, "--dry-run", "--json", *options) for name in (old, new))
        assert by_old.code == by_new.code == 0, by_old.err
        assert by_old.command == by_new.command == f"redrive {new}"
        assert by_old.json()["queue"] == new
        assert by_old.json() == by_new.json()
        assert by_old.json()["left"]  # each queue read: its letters are no event, no delivery


def stand_in_poller(stack: MotoStack, monkeypatch: pytest.MonkeyPatch) -> str:
    """A function standing in for the poller: moto's Lambda without Docker answers with its input."""
    import zipfile

    from moto.core.models import default_user_config

    monkeypatch.setitem(default_user_config["lambda"], "use_docker", False)
    role = stack.client("iam").create_role(RoleName="poller", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("poller.py", "def handler(event, context):\n    return event\n")
    stack.client("lambda").create_function(
        FunctionName="relay-poller", Runtime="python3.13", Role=role, Handler="poller.handler",
        Code={"ZipFile": code.getvalue()},
    )  # fmt: skip
    return "relay-poller"


def test_redrive_poller_runs_one_tick_for_the_missed_ones(
    deployed: MotoStack, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = deployed.client("sqs")
    tick = {"source": "genviral-relay.schedule", "scheduled_time": "2026-03-02T12:00:00Z"}
    failure = {
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 1},
        "requestPayload": {**tick, "scheduled_time": "2026-03-02T12:01:00Z"},
        "responsePayload": {"errorMessage": "Task timed out"},
    }
    sqs.send_message(QueueUrl=deployed.ref("PollerDLQ"), MessageBody=json.dumps(tick))
    sqs.send_message(QueueUrl=deployed.ref("PollerDLQ"), MessageBody=json.dumps(failure))

    listed = cli("redrive", "poller", "--dry-run")
    assert "Task timed out" in listed.out
    failed = cli("redrive", "poller", "--yes", "--poller-function", "no-such-function")
    assert failed.code == 1
    assert "AWS refused Invoke: ResourceNotFoundException" in failed.err
    assert len(queue_bodies(deployed, "PollerDLQ")) == 2

    run = cli("redrive", "poller", "--yes", "--poller-function", stand_in_poller(deployed, monkeypatch))

    assert run.code == 0, run.err
    assert f"poller answered: {json.dumps(failure['requestPayload'])}" in run.out  # the newest tick
    assert queue_bodies(deployed, "PollerDLQ") == []


# ------------------------------------------------------------------------------------------- settings


def test_each_command_reads_every_setting_it_lists(
    emulator: GenviralEmulator, deployed: MotoStack, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every run already checks that a command reads no setting it does not declare (`Cli`); here each
    command runs through its whole path once, and must have read every setting it declares."""
    sqs = deployed.client("sqs")
    post_id = posted_and_failed(emulator)
    first, second = outcomes(
        detect_transitions(
            None,
            post(account(status="posted"), account("6b0c8c9c-55ac-4fcb-85ec-70b5a8b0d089", status="failed")),
            utc_now(),
        ).events
    )
    parking = SqsDeadLetters(sqs, deployed.ref("EventsDLQ"), clock=utc_now)
    parking.park(first, "sns", "AuthorizationError: denied")
    parking.park(second, "eventbridge", "AccessDeniedException: denied")
    parking.park(first, "webhooks", "AccessDenied: denied")
    parked = WebhookDelivery(
        webhook_id="wh_" + "0" * 32, event_id=first.event_id, event_type=first.event_type, attempt=8,
        due_at=utc_now(), post_id=first.post_id,
    )  # fmt: skip
    SqsDeliveryQueue(sqs, deployed.ref("WebhookDeliveryQueue"), deployed.ref("WebhookDLQ"), clock=utc_now).park(
        parked, "HTTP 503: Service Unavailable"
    )
    sqs.send_message(  # an event the dispatcher failed on five times
        QueueUrl=deployed.ref("WebhookDLQ"),
        MessageBody="{}",
        MessageAttributes={
            "event_id": {"DataType": "String", "StringValue": second.event_id},
            "event_type": {"DataType": "String", "StringValue": second.event_type},
        },
    )
    sqs.send_message(QueueUrl=deployed.ref("WorkDLQ"), MessageBody='{"sweep": "retry"}')
    sqs.send_message(QueueUrl=deployed.ref("PollerDLQ"), MessageBody='{"scheduled_time": "2026-03-02T12:00:00Z"}')
    webhook_dlq = sqs.create_queue(QueueName="webhook-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=webhook_dlq, MessageBody=json.dumps({"detail": first.model_dump(mode="json")}))
    for name, value in {
        "FAILURE_WEBHOOK_DLQ_URL": webhook_dlq,
        "FAILURE_WEBHOOK_URL": "http://127.0.0.1:9/relay-failures",
        "FAILURE_WEBHOOK_API_KEY_HEADER": "X-Api-Key",
        "FAILURE_WEBHOOK_API_KEY_SECRET": "no-such-secret",  # the run stops there: nothing is POSTed
    }.items():
        monkeypatch.setenv(name, value)

    runs = [
        cli("check", post_id),
        cli("watches", "add", post_id),
        cli("watches", "list"),
        cli("replay", "--post-id", post_id, "--yes"),
        cli("watches", "remove", post_id, "--yes"),
        cli("redrive", "events", "--yes"),
        cli("redrive", "work", "--yes"),
        cli("redrive", "poller", "--yes", "--poller-function", "no-such-function"),
        cli("redrive", "failure-webhook", "--yes"),
        cli("redrive", "webhook-deliveries", "--yes"),
        cli("events", "list"),
        cli("events", "show", first.event_id),  # not in the feed: it was never committed
        cli("workspaces"),
    ]
    hook = WebhookEndpoint(id="wh_" + "1" * 32, url="https://hooks.example.com/a", created_at=utc_now())
    DynamoDbWebhookStore(deployed.client("dynamodb"), deployed.ref("StateTable")).create(hook, limit=100)
    runs += [
        cli("webhooks", "list"),
        cli("webhooks", "show", hook.id),
        cli("webhooks", "enable", hook.id, "--resend-missed", "--yes"),  # on already: nothing missed
        cli("webhooks", "resend", hook.id, "--since", "400d", "--yes"),  # refused: older than the retention
        cli("webhooks", "disable", hook.id, "--yes"),
        cli("webhooks", "attempts", "wh_" + "0" * 32),  # no such endpoint, read after both settings
    ]

    codes = [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1]
    assert [run.code for run in runs] == codes, [run.err for run in runs]
    assert "could not be read from no-such-secret" in runs[8].err
    assert "older than the retention" in runs[-3].err
    declared = {words: parser.get_default("reads") for words, parser in command_parsers(build_parser()).items()}
    for run in runs:
        assert run.read == set(declared[run.command]), run.command
    assert {run.command for run in runs} == {words for words, reads in declared.items() if reads}


# ------------------------------------------------------------------------------------------- local


@pytest.fixture
def served() -> Iterator[tuple[LocalDeployment, dict[str, str]]]:
    ready: list[LocalDeployment] = []
    started = threading.Event()
    stop = threading.Event()
    out = io.StringIO()

    def on_ready(deployment: LocalDeployment) -> None:
        ready.append(deployment)
        started.set()

    thread = threading.Thread(target=serve, kwargs={"tick_seconds": 3600, "stop": stop, "on_ready": on_ready,
                                                    "out": out}, daemon=True)  # fmt: skip
    thread.start()
    try:
        assert started.wait(timeout=60), "the local stack did not start"
        exports = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1)
            for line in out.getvalue().splitlines()
            if line.startswith("export ")
        )
        yield ready[0], exports
    finally:
        stop.set()
        thread.join(timeout=30)


def test_local_serve_prints_the_environment_that_points_the_cli_at_it(
    served: tuple[LocalDeployment, dict[str, str]], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment, exports = served
    assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert "GENVIRAL_TOKEN" not in exports
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    posted = deployment.seed()["posted"]

    run = cli("watches", "add", posted, "--json")

    assert run.code == 0, run.err
    events = run.json()["transitions"]
    assert [event["status"] for event in transitions(events)] == ["posted"]
    assert [event["event_type"] for event in events] == ["post.account.posted", "post.completed"]
    assert deployment.stack is not None
    assert drain(deployment.stack).event_ids() == (sorted(event["event_id"] for event in events),) * 2


def test_no_function_imports_the_cli() -> None:
    handlers = ", ".join(f"genviral_relay.handlers.{name}" for name in ("api", "poller", "worker"))
    code = f"import sys, {handlers}; print(sorted(m for m in sys.modules if m.startswith('genviral_relay.cli')))"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": "src"},
    )
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------- webhooks attempts


def test_webhooks_attempts_shows_the_attempt_log_newest_first(deployed: MotoStack, cli: Cli) -> None:
    client, table = deployed.client("dynamodb"), deployed.ref("StateTable")
    webhook_id = "wh_" + "a" * 32
    DynamoDbWebhookStore(client, table).create(
        WebhookEndpoint(id=webhook_id, url="https://hooks.example.com/t0ken", created_at=utc_now()), limit=100
    )
    log = DynamoDbDeliveryLog(client, table, event_retention=timedelta(days=2))
    at = utc_now()
    for number, (status, outcome) in enumerate(((503, "failed"), (200, "delivered")), start=1):
        reason = "HTTP 503: Service Unavailable" if status == 503 else None
        entry = AttemptEntry(webhook_id=webhook_id, event_id="e1", event_type="post.account.failed",
                             attempt=number, at=at + timedelta(seconds=number), status=status, duration_ms=40,
                             outcome=outcome, reason=reason)  # fmt: skip
        log.record_attempt(entry, DeliveryState(webhook_id=webhook_id, event_id="e1", state="delivered"))

    shown = cli("webhooks", "attempts", webhook_id)
    assert shown.code == 0, shown.err
    assert shown.read == {"table", "event_retention_days"}
    lines = [line.split() for line in shown.out.splitlines() if "e1" in line]
    assert [(line[3], line[4], line[5]) for line in lines] == [("2", "delivered", "200"), ("1", "failed", "503")]
    assert "t0ken" not in shown.out

    as_json = cli("webhooks", "attempts", webhook_id, "--outcome", "failed", "--limit", "1", "--json")
    document = json.loads(as_json.out)
    assert [(a["attempt"], a["reason"]) for a in document["data"]] == [(1, "HTTP 503: Service Unavailable")]
    older = cli("webhooks", "attempts", webhook_id, "--outcome", "failed", "--after", document["next"], "--json")
    assert json.loads(older.out) == {"data": [], "next": None}

    missing = cli("webhooks", "attempts", "wh_" + "b" * 32)
    assert missing.code == 1
    assert "no webhook endpoint" in missing.err
    assert cli("webhooks", "attempts", "wh_nope").code == 2
    assert cli("webhooks", "attempts", webhook_id, "--limit", "0").code == 2
    bad_cursor = cli("webhooks", "attempts", webhook_id, "--after", "garbage", "--json")
    assert bad_cursor.code == 2
    assert "the cursor is malformed" in json.loads(bad_cursor.err)["message"]
