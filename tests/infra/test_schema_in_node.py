"""The published event schema in Ajv, the validator most Node consumers use: it compiles in Ajv's default strict
mode (draft 2020-12 class, formats from ajv-formats) with no warning, and judges documents as Python's jsonschema
does. tests/node/ pins Ajv (package-lock.json); `npm ci` installs it on first use."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.tooling import node_with_packages
from tools.event_schema import SCHEMA_PATH

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
FIXTURES = ROOT / "tests" / "fixtures"


def ajv(schema: Path, *documents: Path) -> dict[str, Any]:
    node = node_with_packages(NODE_DIR)
    done = subprocess.run(  # noqa: S603 - our own script and files
        [node, str(NODE_DIR / "validate-events.mjs"), str(schema), *map(str, documents)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    answer["exit"] = done.returncode
    return answer


def documents() -> list[Path]:
    """Every document the schema must accept: the samples' (as SNS and EventBridge carry them) and 0.3.0's."""
    return [
        *sorted((ROOT / "events" / "outbound").glob("*.json")),
        *sorted(FIXTURES.glob("event-0.3.0-*.json")),
    ]


def as_document(path: Path, into: Path) -> Path:
    sample = json.loads(path.read_text())
    if "Records" in sample:  # SNS to Lambda
        sample = sample["Records"][0]["Sns"]
    document = json.loads(sample["Message"]) if "Message" in sample else sample.get("detail", sample)
    written = into / path.name
    written.write_text(json.dumps(document))
    return written


def test_the_schema_compiles_in_ajv_strict_mode_without_warnings() -> None:
    answer = ajv(SCHEMA_PATH)
    assert answer["exit"] == 0, answer.get("error")
    assert answer["warnings"] == []


def test_ajv_refuses_a_schema_with_an_unknown_keyword(tmp_path: Path) -> None:
    # What the schema had: `discriminator`, an OpenAPI keyword. The check would catch its return.
    schema = json.loads(SCHEMA_PATH.read_text())
    schema["discriminator"] = {"propertyName": "event_type"}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    answer = ajv(tmp_path / "schema.json")
    assert answer["exit"] == 1
    assert 'unknown keyword: "discriminator"' in answer["error"]


def test_ajv_accepts_every_sample_and_0_3_document_and_refuses_one_missing_a_field(tmp_path: Path) -> None:
    paths = [as_document(path, tmp_path) for path in documents()]
    broken = json.loads((FIXTURES / "event-0.3.0-posted.json").read_text())
    del broken["post"]["caption"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))

    answer = ajv(SCHEMA_PATH, *paths, tmp_path / "broken.json")

    *accepted, refused = answer["results"]
    assert len(accepted) == len(paths)
    assert [result["errors"] for result in accepted] == [[] for _ in accepted]
    assert refused["valid"] is False
    assert {"missingProperty": "caption"} in [error["params"] for error in refused["errors"]]


@pytest.mark.parametrize("path", documents(), ids=lambda path: path.name)
def test_python_jsonschema_agrees(path: Path, tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    document = json.loads(as_document(path, tmp_path).read_text())
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(document)) == []
