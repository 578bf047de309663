"""The Node receiver docs/webhooks.md shows (examples/webhook-receiver-node/receiver.mjs, quoted whole in the doc)
runs as written: started with node on 127.0.0.1, it takes deliveries signed by the relay's own signing code, once
each, and refuses forged, re-signed and stale ones. Its package is installed with `npm ci` from the committed lock
on first use; the tests skip where node or npm is not installed."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from genviral_relay.rules.webhook_signing import new_secret, signed_headers
from tests.infra.tooling import node_with_packages

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "webhook-receiver-node"
RECEIVER = EXAMPLE / "receiver.mjs"
DOC = ROOT / "docs" / "webhooks.md"
SAMPLES = ROOT / "events" / "outbound"
START_SECONDS = 20


@dataclass
class Receiver:
    process: subprocess.Popen[str]
    port: int
    secret: str

    def post(self, body: bytes, headers: Mapping[str, str], path: str = "/genviral") -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def stop(self) -> tuple[list[str], str]:
        """(its stdout lines after the first, its stderr), once it has exited."""
        self.process.terminate()
        out, err = self.process.communicate(timeout=10)
        return out.splitlines(), err


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    node = node_with_packages(EXAMPLE)
    secret = new_secret()
    process = subprocess.Popen(  # noqa: S603 - node from PATH, our own example
        [node, str(RECEIVER)],
        cwd=EXAMPLE,
        env={"PATH": os.environ.get("PATH", ""), "GENVIRAL_WEBHOOK_SECRET": secret, "HOST": "127.0.0.1", "PORT": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The receiver says where it listens once it does; waiting on its output, not on a clock.
        ready, _, _ = select.select([process.stdout], [], [], START_SECONDS)
        assert ready, "the receiver did not start listening"
        assert process.stdout is not None
        first = process.stdout.readline()
        listening = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)/genviral\n", first)
        assert listening, f"unexpected first line {first!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        yield Receiver(process, int(listening.group(1)), secret)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def relay_body(kind: str) -> tuple[str, bytes]:
    """(event id, body) of a delivery: the event document as the relay serialises it (an SNS sample's Message)."""
    message = json.loads((SAMPLES / f"sns-{kind}.json").read_text())["Message"]
    return json.loads(message)["event_id"], message.encode()


def test_the_doc_quotes_the_example_whole() -> None:
    blocks = re.findall(r"```js\n(.*?)```", DOC.read_text(), re.S)
    assert RECEIVER.read_text() in blocks
    assert "examples/webhook-receiver-node/receiver.mjs" in DOC.read_text()


def test_the_receiver_takes_signed_deliveries_once_and_refuses_forged_ones(receiver: Receiver) -> None:
    event_id, body = relay_body("post-account-failed")
    now = int(time.time())
    signed = signed_headers([receiver.secret], event_id, now, body)

    # A delivery as the relay signs it, twice (at least once): taken both times, handled once
    assert receiver.post(body, signed) == 204
    assert receiver.post(body, signed) == 204
    # During a rotation: the new key's signature first, the receiver's (previous) one beside it
    other_id, other_body = relay_body("post-account-posted")
    rotation = signed_headers([new_secret(), receiver.secret], other_id, now, other_body)
    assert len(rotation["webhook-signature"].split(" ")) == 2
    assert receiver.post(other_body, rotation) == 204

    # Forged: the body changed after signing, signed with another key, a stale timestamp, no signature
    tampered = body.replace(b'"status":"failed"', b'"status":"posted"')
    assert tampered != body
    assert receiver.post(tampered, signed) == 400
    assert receiver.post(body, signed_headers([new_secret()], event_id, now, body)) == 400
    stale = now - 10 * 60
    assert receiver.post(body, signed_headers([receiver.secret], event_id, stale, body)) == 400
    assert receiver.post(body, {k: v for k, v in signed.items() if k != "webhook-signature"}) == 400
    assert receiver.post(body, signed, path="/elsewhere") == 404

    handled, refusals = receiver.stop()
    assert handled == [f"post.account.failed {event_id}", f"post.account.posted {other_id}"]
    assert refusals.count("refused:") == 4
