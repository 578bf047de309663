"""The API function's resolver: Powertools' `APIGatewayRestResolver` with validation, how it reads a body, and how
the routes answer. The routes live in one module per resource (`watches.py`, `webhooks.py`), bad requests and the
relay's errors in `errors.py`, the OpenAPI answer tables in `answers.py`; `handlers/api.py` is the entry point.

Powertools validates each request against its route's annotations (`enable_validation=True`) before the route
runs: a bad request is a 4xx JSON `ErrorResponse` and never reaches Genviral. The same annotations make the
OpenAPI document, docs/openapi.json (`make openapi` writes it, a test fails when it is stale).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from pydantic import BaseModel

from genviral_relay.models.api import ErrorResponse

MAX_BODY_BYTES = 4096


class BodyTooLargeError(Exception):
    """The request body is over MAX_BODY_BYTES (answered 413)."""


class BodyIsNullError(Exception):
    """The body is JSON `null`: present, but not the object the route takes (Powertools would call it missing)."""


def read_body(text: str) -> Any:
    """A request body as JSON, for Powertools to validate; it calls this only for routes that take a body, with
    the text after base64 decoding. Blank is no body (Powertools then reports it missing)."""
    if not text.strip():
        return None
    if len(text.encode()) > MAX_BODY_BYTES:
        raise BodyTooLargeError(f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(text)
    except RecursionError:  # nesting too deep for the parser: a JSON error, which Powertools reports as such
        raise json.JSONDecodeError("nesting too deep", text, 0) from None
    if document is None:
        raise BodyIsNullError
    return document


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=read_body)


def answer(status: HTTPStatus, body: BaseModel) -> Response[str]:
    return Response(status_code=int(status), content_type=content_types.APPLICATION_JSON, body=body.model_dump_json())


def error_answer(status: HTTPStatus, error: str, message: str) -> Response[str]:
    return answer(status, ErrorResponse(error=error, message=message))


def as_json(event: dict[str, Any]) -> dict[str, Any]:
    """The request with the body declared JSON. API Gateway passes on the client's Content-Type, and this API has
    always read the body as JSON whatever it says (`curl -d` sends a form type, `fetch` text/plain); Powertools reads
    a body by its Content-Type (a form, multipart, or 415)."""
    headers = event.get("headers") or {}
    if headers.get("content-type") == content_types.APPLICATION_JSON:
        return event
    declared = {name: value for name, value in headers.items() if name.lower() != "content-type"}
    return {**event, "headers": {**declared, "content-type": content_types.APPLICATION_JSON}}
