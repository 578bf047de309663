"""The HTTP API as an OpenAPI 3.1 document, generated from the API function's routes: Powertools reads their
annotations (`Body`, `Path`) and the `responses` they declare.

docs/openapi.json is produced here and nowhere else: `make openapi` writes it, a test fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server, ServerVariable

from genviral_relay import __version__
from genviral_relay.handlers.api import app

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT_PATH = ROOT / "docs" / "openapi.json"
REGENERATE = "make openapi"
TITLE = "genviral-relay"

DESCRIPTION = (
    "Register Genviral posts for watching, read their last-seen state, check them now, stop watching. "
    "Every request is signed with SigV4 (API Gateway `AWS_IAM` auth); bad input gets a 4xx "
    '`{"error", "message"}` before any Genviral call. Transitions are published as events '
    "(see docs/events.md); this API answers the ones a check found."
)
SIGV4 = APIKey(
    name="Authorization",
    in_=APIKeyIn.header,
    description="AWS Signature Version 4 (service `execute-api`); the caller needs `execute-api:Invoke`.",
    openapi_extensions={"x-amazon-apigateway-authtype": "awsSigv4"},
)
SERVER = Server(
    url="https://{restApiId}.execute-api.{region}.amazonaws.com/v1",
    description="The stack's `ApiUrl` output.",
    variables={
        "restApiId": ServerVariable(default="abcdef1234", description="The stack's REST API id."),
        "region": ServerVariable(default="us-east-1"),
    },
)
# Powertools gives every validated route a 422 answer (`HTTPValidationError`); this API answers a request that fails
# validation 400 with an ErrorResponse instead (its RequestValidationError handler), so the document leaves it out,
# and the schemas no answer refers to.
UNANSWERED = "422"
SCHEMA_REF = "#/components/schemas/"


def document() -> dict[str, Any]:
    generated: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=__version__,
            description=DESCRIPTION,
            servers=[SERVER],
            security_schemes={"sigv4": SIGV4},
            security=[{"sigv4": []}],
        )
    )
    for operations in generated["paths"].values():
        for operation in operations.values():
            operation["responses"].pop(UNANSWERED, None)
    generated["paths"] = dict(sorted(generated["paths"].items()))
    schemas = generated["components"]["schemas"]
    used = _referenced(generated["paths"], schemas)
    generated["components"]["schemas"] = {name: schema for name, schema in schemas.items() if name in used}
    return generated


def _referenced(node: Any, schemas: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """The names of the component schemas `node` refers to, directly or through other schemas."""
    found = set() if found is None else found
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(SCHEMA_REF):
            name = reference.removeprefix(SCHEMA_REF)
            if name not in found:
                found.add(name)
                _referenced(schemas[name], schemas, found)
        for value in node.values():
            _referenced(value, schemas, found)
    elif isinstance(node, list):
        for item in node:
            _referenced(item, schemas, found)
    return found


def render(openapi: dict[str, Any]) -> str:
    return json.dumps(openapi, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    text = render(document())
    if not DOCUMENT_PATH.is_file() or DOCUMENT_PATH.read_text() != text:
        DOCUMENT_PATH.write_text(text)
        print(f"wrote {DOCUMENT_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
