"""One version everywhere: the package's `__version__`, the User-Agent the relay really sends (to Genviral and to
webhook endpoints), the newest released heading of the changelog, the docs' sample delivery, the OpenAPI document,
and the template's `AWS::ServerlessRepo::Application` metadata when it has one."""

from __future__ import annotations

import http.server
import json
import re
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from genviral_relay import __version__
from genviral_relay.errors import GenviralNotFoundError
from genviral_relay.genviral.client import ClientSettings, GenviralClient, StaticToken
from genviral_relay.receivers.sender import HttpWebhookSender
from genviral_relay.rules.webhook_urls import Destination
from local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
RELEASED = re.compile(r"^## (\d+\.\d+\.\d+)(?: — (\d{4}-\d{2}-\d{2}))?$", re.M)


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on loopback answering 404 to everything; yields its base URL and the User-Agents it saw."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(self.headers.get("User-Agent", ""))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"ok": false, "code": 404, "message": "not found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_genviral_client_sends_the_packages_version(loopback: tuple[str, list[str]]) -> None:
    url, seen = loopback
    client = GenviralClient(url, StaticToken("gva_live_test.x"), settings=ClientSettings(max_attempts=1))
    with pytest.raises(GenviralNotFoundError):
        client.get_post("11111111-1111-1111-1111-111111111111")
    assert seen == [f"genviral-relay/{__version__}"]


def test_webhook_deliveries_send_the_packages_version(loopback: tuple[str, list[str]]) -> None:
    url, seen = loopback
    port = int(url.rsplit(":", 1)[1])
    where = Destination(scheme="http", host="127.0.0.1", port=port, target="/hook", addresses=("127.0.0.1",))
    assert HttpWebhookSender(timeout=5).post(where, {"webhook-id": "e1"}, b"{}").status == 404
    assert seen == [f"genviral-relay/{__version__} (webhooks)"]
    sample = (ROOT / "docs" / "webhooks.md").read_text()
    assert re.findall(r"^user-agent: (.+)$", sample, re.M) == [seen[0]]


def test_the_newest_release_in_the_changelog_is_the_packages_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.+)$", changelog, re.M)
    assert headings[0] == "Unreleased", "what comes next is written under Unreleased, on top"
    newest = RELEASED.match(f"## {headings[1]}")
    assert newest is not None, f"a release heading is `## X.Y.Z — YYYY-MM-DD`, not {headings[1]!r}"
    assert newest.group(1) == __version__


def test_pyproject_reads_the_version_from_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert "version" not in pyproject["project"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "src/genviral_relay/__init__.py"


def test_the_openapi_document_and_the_template_metadata_state_the_same_version() -> None:
    assert json.loads((ROOT / "docs" / "openapi.json").read_text())["info"]["version"] == __version__
    application = load_template().get("Metadata", {}).get("AWS::ServerlessRepo::Application")
    if application is not None:  # the template is not published to the Serverless Application Repository today
        assert application["SemanticVersion"] == __version__


def test_no_doc_states_another_version_of_the_relay() -> None:
    """`genviral-relay/X.Y.Z` or `genviral-relay X.Y.Z` in a page names this release, never an old one."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    stated = {
        (page.name, version)
        for page in pages
        for version in re.findall(r"genviral-relay[/ ]v?(\d+\.\d+\.\d+)", page.read_text())
    }
    assert {version for _, version in stated} <= {__version__}, sorted(stated)
