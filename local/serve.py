"""`python -m local serve`: the local stack kept running, to point the operations CLI at.

The Genviral emulator (with a few sample posts) and moto as an HTTP server on 127.0.0.1, with the
resources of template.yaml; every tick the real poller and worker run, as in `make demo`. The
environment variables printed at the start point the CLI (or any AWS tool) at it.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TextIO

from genviral_relay.observability import logs_to
from local.emulator import DEFAULT_TOKEN, GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack


class LocalDeployment:
    """The emulator and moto server with the template's resources, and the runner of its handlers."""

    def __init__(self, log: TextIO) -> None:
        self.log = log
        self.emulator = GenviralEmulator(tokens=[DEFAULT_TOKEN])
        self.stack: MotoStack | None = None
        self.runner: LocalRunner | None = None

    def __enter__(self) -> LocalDeployment:
        self.emulator.start()
        self.stack = MotoStack(
            genviral_api_url=self.emulator.base_url,
            token=DEFAULT_TOKEN,
            mode="server",
            secret_as_json=True,
            parameters={"AllowPrivateWebhookUrls": "true"},  # webhook endpoints on this machine are http://
        ).start()
        self.runner = LocalRunner(self.stack)
        return self

    def __exit__(self, *_: object) -> None:
        if self.stack is not None:
            self.stack.stop()
        self.emulator.stop()

    def seed(self) -> dict[str, str]:
        """Sample posts in the emulator: what each is -> its id."""
        now = datetime.now(UTC)
        later = self.emulator.create_post(
            accounts=2, scheduled_at=now + timedelta(hours=2), caption="Next week's teaser"
        )
        posted = self.emulator.create_post(accounts=1, scheduled_at=now - timedelta(minutes=5), caption="Launch day")
        self.emulator.mark_posted(posted, self.emulator.account_ids(posted)[0])
        mixed = self.emulator.create_post(
            accounts=2, scheduled_at=now - timedelta(minutes=5), caption="Behind the scenes"
        )
        first, second = self.emulator.account_ids(mixed)
        self.emulator.mark_posted(mixed, first)
        self.emulator.mark_failed(mixed, second, error_message="Upload timed out")
        return {"scheduled in two hours": later, "posted": posted, "one account posted, one failed": mixed}

    def tick(self) -> None:
        """One scheduler tick, the worker until the work queue is empty, then the webhook deliveries that are due;
        handler logs go to the log."""
        assert self.runner is not None
        with contextlib.redirect_stdout(self.log), logs_to(self.log):
            self.runner.tick()
            self.runner.drain_work_queue()
            self.runner.deliver_webhooks()


def serve(
    *,
    tick_seconds: float,
    stop: threading.Event,
    on_ready: Callable[[LocalDeployment], None] | None = None,
    out: TextIO | None = None,
) -> None:
    """Run until `stop` is set (or Ctrl-C), ticking every `tick_seconds`."""
    out = out or sys.stdout
    with (
        tempfile.NamedTemporaryFile("w", prefix="genviral-relay-serve-", suffix=".log", delete=False) as log,
        LocalDeployment(log) as deployment,
    ):
        posts = deployment.seed()
        assert deployment.stack is not None
        print("genviral-relay local stack: Genviral emulator and moto server on 127.0.0.1", file=out)
        print("Point the CLI (or any AWS tool) at it from another shell:\n", file=out)
        for name, value in sorted(deployment.stack.cli_environment().items()):
            print(f"export {name}={shlex.quote(value)}", file=out)
        print("\nSample posts in the Genviral emulator:", file=out)
        for description, post_id in posts.items():
            print(f"  {post_id}  {description}", file=out)
        print(f"\nThe poller and the worker run every {tick_seconds:g} s; handler logs: {log.name}", file=out)
        print("Try: genviral-relay watches add <post id>; genviral-relay watches list. Ctrl-C stops.", file=out)
        out.flush()
        if on_ready is not None:
            on_ready(deployment)
        while not stop.wait(tick_seconds):
            deployment.tick()
