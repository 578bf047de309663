"""The HTTP API's OpenAPI document: current with the routes, valid, and describing what template.yaml deploys
and what the API answers. And the validation the document comes from is built once, not on every request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_openapi_document
from pydantic import TypeAdapter

from genviral_relay import __version__
from genviral_relay.handlers import api
from genviral_relay.models.api import ErrorResponse
from local.runner import FakeLambdaContext, api_gateway_event
from local.template import load_template
from tools.openapi import DOCUMENT_PATH, REGENERATE, document, render

TEMPLATE = load_template()
COMMITTED: dict[str, Any] = json.loads(DOCUMENT_PATH.read_text())
ERROR_SCHEMA = {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}


def operations(openapi: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): operation
        for path, by_method in openapi["paths"].items()
        for method, operation in by_method.items()
    }


def template_routes() -> set[tuple[str, str]]:
    events = TEMPLATE["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    return {(event["Properties"]["Path"], event["Properties"]["Method"]) for event in events if event["Type"] == "Api"}


def test_committed_document_is_generated_from_the_routes() -> None:
    assert DOCUMENT_PATH.read_text() == render(document()), (
        f"{DOCUMENT_PATH.name} is stale: run `{REGENERATE}` and commit the result"
    )


def test_document_is_a_valid_openapi_3_1_document_of_this_release() -> None:
    validate_openapi_document(COMMITTED)
    assert COMMITTED["openapi"].startswith("3.1.")
    assert (COMMITTED["info"]["title"], COMMITTED["info"]["version"]) == ("genviral-relay", __version__)


def test_document_template_and_not_found_table_name_the_same_routes() -> None:
    routes = template_routes()
    assert set(operations(COMMITTED)) == routes
    assert {(path, method) for path, methods in api.ROUTES.items() for method in methods} == routes


def test_every_failure_the_document_names_is_an_error_response_and_none_is_a_422() -> None:
    for route, operation in operations(COMMITTED).items():
        answers = dict(operation["responses"])
        assert "422" not in answers, route
        queries = [parameter for parameter in operation.get("parameters", []) if parameter["in"] == "query"]
        takes_input = "{" in route[0] or "requestBody" in operation or bool(queries)
        assert ("400" in answers) == takes_input, route  # GET /webhooks takes nothing it could refuse
        # Every route is IAM-authorized: API Gateway's own 403 (its body is not the relay's) is a 4xx of each.
        assert "API Gateway" in answers.pop("403")["description"], route
        refusal = operation["responses"]["403"]["content"]["application/json"]["schema"]
        assert refusal == {"$ref": "#/components/schemas/GatewayRefusal"}, route
        for status, answer in answers.items():
            schema = answer["content"]["application/json"]["schema"]
            assert (schema == ERROR_SCHEMA) == (int(status) >= 400), (route, status)


def test_the_document_says_every_request_is_signed() -> None:
    (scheme,) = COMMITTED["components"]["securitySchemes"].values()
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert COMMITTED["security"] == [{name: []} for name in COMMITTED["components"]["securitySchemes"]]


BAD_REQUESTS = [
    ("GET", "/watches/nope", None),
    ("DELETE", "/watches/nope", None),
    ("POST", "/watches/nope/check", None),
    ("POST", "/watches", '{"post_id": "nope"}'),
    ("GET", "/webhooks/nope", None),
    ("POST", "/webhooks", '{"url": 7}'),
]


def test_validation_is_built_once_and_not_on_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(method: str, path: str, body: str | None) -> int:
        event = api_gateway_event(TEMPLATE, method, path, body)
        return int(api.lambda_handler(event, FakeLambdaContext(function_name="ApiFunction"))["statusCode"])

    assert [answer(*request) for request in BAD_REQUESTS] == [400] * len(BAD_REQUESTS)  # each route's first request
    built: list[Any] = []
    original = TypeAdapter.__init__

    def counting(self: TypeAdapter[Any], *args: Any, **kwargs: Any) -> None:
        built.append(args[0] if args else kwargs.get("type"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(TypeAdapter, "__init__", counting)

    assert [answer(*request) for request in BAD_REQUESTS * 3] == [400] * len(BAD_REQUESTS) * 3
    assert built == []
