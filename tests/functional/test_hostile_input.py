"""Hostile input on every route of the HTTP API: each answer is a 4xx JSON `{"error", "message"}`
and nothing reaches Genviral or the table.

Requests go through the API function exactly as API Gateway's REST proxy integration delivers them
(`local.runner.api_gateway_event`); base64 bodies are built by hand to control `isBase64Encoded`.
Nothing here may write or call anything, so one emulator and one moto stack serve the whole module
(a fresh pair per test would cost most of the runtime); every test starts with an empty request log
and an empty table, and its assertions check they stay so.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from genviral_relay.models.domain import POST_ID_HINT
from local.emulator import GenviralEmulator
from local.runner import API, LocalRunner, api_gateway_event
from local.stack import MotoStack
from tests.conftest import TOKEN

UUID = "6b0c8c9c-55ac-4fcb-85ec-70b5a8b0d089"
MAX_BODY_BYTES = 4096  # the documented limit of a request body


def _digits(text: str, zero: int) -> str:
    """`text` with its ASCII digits replaced by another script's digits (`zero` is that script's 0)."""
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


# Ids that are not a canonical UUID and fit in one path segment: the contract answers 400 to each.
BAD_IDS = [
    pytest.param(" ", id="blank"),
    pytest.param("null", id="null-word"),
    pytest.param("undefined", id="undefined-word"),
    pytest.param("0", id="zero"),
    pytest.param("-", id="dash"),
    pytest.param("a" * 10_240, id="10KB"),
    pytest.param(_digits(UUID, 0xFF10), id="fullwidth-digits"),
    pytest.param(_digits(UUID, 0x0660), id="arabic-indic-digits"),
    pytest.param("ü", id="latin-letter"),
    pytest.param("🙂", id="emoji"),
    pytest.param(UUID[:-1] + "\u200b" + UUID[-1], id="zero-width-space-inside"),
    pytest.param("\u202e" + UUID, id="rtl-override-prefix"),
    pytest.param(UUID + "\x00", id="nul-suffix"),
    pytest.param("%2e%2e%2f", id="encoded-dot-dot-slash"),
    pytest.param("..%2F..%2Fsecret", id="encoded-traversal"),
    pytest.param("..", id="dot-dot"),
    pytest.param("' OR '1'='1", id="sql-or"),
    pytest.param("1; DROP TABLE watches;--", id="sql-drop"),
    pytest.param("${jndi:ldap:example.invalid}", id="jndi"),
    pytest.param("<img src=x onerror=alert(1)>", id="html"),
    pytest.param('"quoted"', id="double-quotes"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("{" + UUID + "}", id="uuid-in-braces"),
    pytest.param("urn:uuid:" + UUID, id="uuid-urn"),
    pytest.param(UUID.replace("-", "").upper(), id="uuid-upper-no-hyphens"),
    pytest.param(UUID.replace("-", ""), id="uuid-no-hyphens"),
    pytest.param(UUID + "0", id="uuid-one-too-long"),
    pytest.param(UUID[:-1], id="uuid-one-too-short"),
    pytest.param(UUID.replace("-", "_"), id="uuid-underscores"),
    pytest.param("g" + UUID[1:], id="uuid-non-hex"),
]
PATH_ROUTES = [
    pytest.param("GET", "/watches/{}", id="get"),
    pytest.param("DELETE", "/watches/{}", id="delete"),
    pytest.param("POST", "/watches/{}/check", id="check"),
]


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[GenviralEmulator]:
    with GenviralEmulator(tokens=[TOKEN]) as running:
        yield running


@pytest.fixture(scope="module")
def shared_stack(shared_emulator: GenviralEmulator) -> Iterator[MotoStack]:
    with MotoStack(genviral_api_url=shared_emulator.base_url, token=TOKEN) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: GenviralEmulator, shared_stack: MotoStack) -> GenviralEmulator:
    """The module's emulator, with an empty request log (and the table checked empty)."""
    shared_emulator.requests_log.clear()
    shared_emulator.clear_faults()
    assert table_count(shared_stack) == 0, "an earlier test left items in the table"
    return shared_emulator


@pytest.fixture
def stack(shared_stack: MotoStack, emulator: GenviralEmulator) -> MotoStack:
    return shared_stack


@pytest.fixture
def runner(stack: MotoStack) -> LocalRunner:
    return LocalRunner(stack)


@functools.cache
def _dynamodb(stack: MotoStack) -> Any:
    return stack.client("dynamodb")


def table_count(stack: MotoStack) -> int:
    return int(_dynamodb(stack).scan(TableName=stack.ref("StateTable"), Select="COUNT")["Count"])


def call(
    runner: LocalRunner,
    method: str,
    path: str,
    body: str | None = None,
    *,
    base64_body: str | None = None,
    content_type: str | None = "application/json",
) -> tuple[int, Any, dict[str, str]]:
    """One API Gateway request to the API function: (status, parsed JSON body or raw text, headers).

    `base64_body` is sent verbatim with `isBase64Encoded: true`, valid base64 or not; `content_type` None sends
    no Content-Type header.
    """
    event = api_gateway_event(runner.stack.template, method, path, body)
    if base64_body is not None:
        event["body"], event["isBase64Encoded"] = base64_body, True
    if content_type != "application/json":  # as the runner sends it
        del event["headers"]["content-type"]
        if content_type is not None:
            event["headers"]["Content-Type"] = content_type
    try:
        response = runner.invoke(API, event)
    except Exception as error:  # API Gateway would answer a bare 502 "Internal server error"
        pytest.fail(f"the API function raised {type(error).__name__}: {str(error)[:200]} instead of answering 4xx")
    text = response.get("body") or ""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name.lower(), ", ".join(values))
    return response["statusCode"], parsed, headers


def assert_rejected(
    answer: tuple[int, Any, dict[str, str]],
    emulator: GenviralEmulator,
    stack: MotoStack,
    *,
    status: int | None = None,
    error: str | None = None,
) -> dict[str, str]:
    """A 4xx JSON `{"error", "message", "webhook_id": null}` with a non-empty message; nothing asked of Genviral,
    nothing stored."""
    code, body, headers = answer
    assert 400 <= code < 500, (code, body)
    if status is not None:
        assert code == status, (code, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert isinstance(body, dict), body
    assert set(body) == {"error", "message", "webhook_id"}, body
    assert body["webhook_id"] is None, body  # only a 409 webhook_exists names one
    assert isinstance(body["error"], str), body
    assert body["error"]
    assert isinstance(body["message"], str), body
    assert body["message"].strip()
    if error is not None:
        assert body["error"] == error, body
    assert emulator.requests_log == []
    assert table_count(stack) == 0
    return body


def assert_not_a_self_contradicting_405(method: str, body: dict[str, str]) -> None:
    if body["error"] == "method_not_allowed":
        allowed = body["message"].rpartition("; use ")[2]
        assert method not in allowed.split(", "), f"405 for {method} while naming {method} as allowed: {body}"


# ---------------------------------------------------------------- ids in the path


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(("method", "route"), PATH_ROUTES)
def test_non_uuid_id_in_the_path_is_a_400(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, method: str, route: str, bad_id: str
) -> None:
    body = assert_rejected(call(runner, method, route.format(bad_id)), emulator, stack, status=400, error="bad_request")
    assert "UUID" in body["message"]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/watches/../", id="dot-dot-slash"),
        pytest.param("/watches/../../etc/passwd", id="traversal"),
        pytest.param("/watches/../watches", id="dot-dot-back"),
        pytest.param("/watches//check", id="empty-id-check"),
        pytest.param(f"/watches/{UUID}/", id="trailing-slash"),
        pytest.param(f"/watches/{UUID}/check/", id="check-trailing-slash"),
        pytest.param("/watches/%2e%2e/%2e%2e/check", id="encoded-dots-check"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
def test_ids_spanning_path_segments_are_rejected_without_contradiction(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, method: str, path: str
) -> None:
    body = assert_rejected(call(runner, method, path), emulator, stack)
    assert_not_a_self_contradicting_405(method, body)


# ---------------------------------------------------------------- the registration body


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_non_uuid_id_in_the_body_is_rejected(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, bad_id: str
) -> None:
    raw = json.dumps({"post_id": bad_id}, ensure_ascii=False)
    oversized = len(raw.encode()) > MAX_BODY_BYTES
    body = assert_rejected(
        call(runner, "POST", "/watches", raw), emulator, stack, status=413 if oversized else 400, error="bad_request"
    )
    if not oversized:
        assert "UUID" in body["message"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(" \n\t ", id="whitespace"),
        pytest.param("{post_id: nope", id="broken-json"),
        pytest.param(f"{{'post_id': '{UUID}'}}", id="single-quotes"),
        pytest.param(f"post_id={UUID}", id="form-encoded"),
        pytest.param(f"<post_id>{UUID}</post_id>", id="xml"),
        pytest.param(f'{{"post_id": "{UUID}"}} trailing', id="trailing-garbage"),
        pytest.param(f'{{"post_id": "{UUID}"', id="truncated"),
        pytest.param("NaN", id="nan"),
        pytest.param("\x00\x01\x02", id="control-bytes"),
        pytest.param("[" * 1500 + "]" * 1500, id="deeply-nested-array"),
        pytest.param('{"post_id": ' + "[" * 1500 + "]" * 1500 + "}", id="deeply-nested-post_id"),
        pytest.param(f'["{UUID}"]', id="array"),
        pytest.param("[]", id="empty-array"),
        pytest.param("42", id="number"),
        pytest.param(f'"{UUID}"', id="string"),
        pytest.param("null", id="null"),
        pytest.param("true", id="boolean"),
        pytest.param("{}", id="empty-object"),
        pytest.param(f'{{"postId": "{UUID}"}}', id="wrong-key"),
        pytest.param(f'{{"POST_ID": "{UUID}"}}', id="uppercase-key"),
        pytest.param('{"post_id": 12345}', id="post_id-number"),
        pytest.param('{"post_id": 1.5e300}', id="post_id-float"),
        pytest.param('{"post_id": null}', id="post_id-null"),
        pytest.param('{"post_id": true}', id="post_id-bool"),
        pytest.param(f'{{"post_id": ["{UUID}"]}}', id="post_id-list"),
        pytest.param(f'{{"post_id": {{"id": "{UUID}"}}}}', id="post_id-object"),
        pytest.param(f'{{"post_id": "{UUID}", "extra": 1}}', id="extra-field"),
        pytest.param(f'{{"post_id": "{UUID}", "__proto__": {{"admin": true}}}}', id="extra-proto"),
        pytest.param(f'{{"post_id": "{UUID}", "post_ids": ["{UUID}"]}}', id="extra-plural"),
    ],
)
def test_malformed_registration_body_is_a_400(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, raw: str | None
) -> None:
    assert_rejected(call(runner, "POST", "/watches", raw), emulator, stack, status=400, error="bad_request")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(None, 'a JSON body {"post_id": "<uuid>"} is required', id="no-body"),
        pytest.param("   ", 'a JSON body {"post_id": "<uuid>"} is required', id="blank"),
        pytest.param("not json", "the body is not valid JSON", id="not-json"),
        pytest.param("null", 'the body must be a JSON object {"post_id": "<uuid>"}', id="null"),
        pytest.param("[]", 'the body must be a JSON object {"post_id": "<uuid>"}', id="array"),
        pytest.param('{"post_id": "nope"}', POST_ID_HINT, id="not-a-uuid"),
    ],
)
def test_a_bad_registration_body_is_named_in_the_words_clients_have_seen_since_0_1(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, raw: str | None, message: str
) -> None:
    body = assert_rejected(call(runner, "POST", "/watches", raw), emulator, stack, status=400, error="bad_request")
    assert body["message"] == message


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(json.dumps({"post_id": UUID, "pad": "x" * MAX_BODY_BYTES}), id="valid-id-padded"),
        pytest.param("x" * (MAX_BODY_BYTES + 1), id="one-byte-over-not-json"),
        pytest.param(json.dumps({"post_id": "é" * 2100}, ensure_ascii=False), id="multibyte-over-in-bytes"),
        pytest.param("[" * 100_000, id="100KB-nesting"),
        pytest.param(" " * 10_000 + json.dumps({"post_id": UUID}), id="whitespace-padded"),
    ],
)
def test_oversized_registration_body_is_a_413(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, raw: str
) -> None:
    assert len(raw.encode()) > MAX_BODY_BYTES
    body = assert_rejected(call(runner, "POST", "/watches", raw), emulator, stack, status=413, error="bad_request")
    assert str(MAX_BODY_BYTES) in body["message"]


def test_body_size_limit_is_exact(runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack) -> None:
    def padded(size: int) -> str:
        skeleton = json.dumps({"post_id": "not-a-uuid", "pad": ""})
        return json.dumps({"post_id": "not-a-uuid", "pad": "x" * (size - len(skeleton))})

    assert len(padded(MAX_BODY_BYTES)) == MAX_BODY_BYTES
    assert_rejected(call(runner, "POST", "/watches", padded(MAX_BODY_BYTES)), emulator, stack, status=400)
    assert_rejected(call(runner, "POST", "/watches", padded(MAX_BODY_BYTES + 1)), emulator, stack, status=413)


# ---------------------------------------------------------------- base64 bodies (isBase64Encoded: true)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("encoded", "status"),
    [
        pytest.param(b64(json.dumps({"post_id": "not-a-uuid"}).encode()), 400, id="valid-b64-bad-id"),
        pytest.param(b64(json.dumps({"post_id": 7}).encode()), 400, id="valid-b64-number-id"),
        pytest.param(b64(json.dumps(["x"]).encode()), 400, id="valid-b64-array"),
        pytest.param(b64(b"{post_id: nope"), 400, id="valid-b64-not-json"),
        pytest.param(b64(b"   "), 400, id="valid-b64-blank"),
        pytest.param(b64(json.dumps({"post_id": "🙂"}, ensure_ascii=False).encode()), 400, id="valid-b64-utf8"),
        pytest.param(b64(json.dumps({"post_id": UUID, "pad": "x" * 5000}).encode()), 413, id="valid-b64-oversized"),
        pytest.param("!!! not base64 !!!", 400, id="invalid-b64-garbage"),
        pytest.param("eyJwb3N0X2lkIjog", 400, id="valid-b64-truncated-json"),
        pytest.param("eyJwb3N0X2lkI", 400, id="invalid-b64-bad-padding"),
        pytest.param(b64(b"\xff\xfe\x00{"), 400, id="valid-b64-not-utf8"),
        pytest.param(b64(json.dumps({"post_id": UUID}).encode("utf-16")), 400, id="valid-b64-utf16"),
    ],
)
def test_base64_encoded_registration_body_is_rejected(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, encoded: str, status: int
) -> None:
    assert_rejected(
        call(runner, "POST", "/watches", base64_body=encoded), emulator, stack, status=status, error="bad_request"
    )


@pytest.mark.parametrize(("method", "route"), PATH_ROUTES)
@pytest.mark.parametrize(
    "encoded", [pytest.param("!!! not base64 !!!", id="invalid-b64"), pytest.param(b64(b"\xff\xfe"), id="not-utf8")]
)
def test_base64_body_on_a_path_route_is_ignored_and_the_id_still_checked(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, method: str, route: str, encoded: str
) -> None:
    answer = call(runner, method, route.format("not-a-uuid"), base64_body=encoded)
    assert_rejected(answer, emulator, stack, status=400, error="bad_request")


# ---------------------------------------------------------------- the Content-Type header

CONTENT_TYPES = [
    pytest.param(None, id="none"),
    pytest.param("text/plain;charset=UTF-8", id="text"),  # fetch() with a string body
    pytest.param("application/x-www-form-urlencoded", id="form"),  # curl -d
    pytest.param("multipart/form-data; boundary=x", id="multipart"),
    pytest.param("application/xml", id="xml"),
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_form_body_is_not_json_whatever_the_content_type(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, content_type: str | None
) -> None:
    for raw in (f"post_id={UUID}", f'--x\r\nContent-Disposition: form-data; name="post_id"\r\n\r\n{UUID}\r\n--x--'):
        answer = call(runner, "POST", "/watches", raw, content_type=content_type)
        assert_rejected(answer, emulator, stack, status=400, error="bad_request")


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_json_body_registers_whatever_the_content_type(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, content_type: str | None
) -> None:
    post_id = emulator.create_post()

    status, body, _ = call(runner, "POST", "/watches", json.dumps({"post_id": post_id}), content_type=content_type)

    assert status == 201, body
    assert call(runner, "DELETE", f"/watches/{post_id}", content_type=content_type)[0] == 200
    assert table_count(stack) == 0


# ---------------------------------------------------------------- unknown routes and wrong methods


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nothing"),
        ("POST", "/watch"),
        ("GET", "/WATCHES"),
        ("POST", "/v1/watches"),
        ("GET", f"/watches/{UUID}/check/now"),
        ("POST", f"/watches/{UUID}/retry"),
        ("DELETE", f"/watches/{UUID}/check/{UUID}"),
        ("GET", "/api/partner/v1/posts/" + UUID),
        ("PATCH", "/.env"),
    ],
)
def test_unknown_route_is_a_404_json(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, method: str, path: str
) -> None:
    body = assert_rejected(call(runner, method, path), emulator, stack, status=404, error="no_route")
    assert path in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        *[("" + m, "/watches", ["POST"]) for m in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")],
        *[(m, f"/watches/{UUID}", ["GET", "DELETE"]) for m in ("POST", "PUT", "PATCH", "OPTIONS")],
        *[(m, "/watches/not-a-uuid", ["GET", "DELETE"]) for m in ("POST", "PUT")],
        *[(m, f"/watches/{UUID}/check", ["POST"]) for m in ("GET", "PUT", "PATCH", "DELETE")],
    ],
)
def test_wrong_method_on_a_known_route_is_a_405_naming_the_allowed_methods(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack, method: str, path: str, allowed: list[str]
) -> None:
    body = assert_rejected(call(runner, method, path), emulator, stack, status=405, error="method_not_allowed")
    named = body["message"].rpartition("; use ")[2].split(", ")
    assert sorted(named) == sorted(allowed), body
    assert method in body["message"]


def test_a_valid_request_still_works_after_hostile_ones(
    runner: LocalRunner, emulator: GenviralEmulator, stack: MotoStack
) -> None:
    # Guards the guard: the helper's "nothing stored, no Genviral call" checks can fail.
    assert_rejected(call(runner, "POST", "/watches", '{"post_id": "nope"}'), emulator, stack, status=400)
    post_id = emulator.create_post()

    status, body, _ = call(runner, "POST", "/watches", json.dumps({"post_id": post_id.upper()}))

    assert status == 201, body
    assert body["watch"]["post_id"] == post_id
    assert [record.post_id for record in emulator.requests_log] == [post_id]
    with pytest.raises(AssertionError):
        assert_rejected(call(runner, "GET", "/nothing"), emulator, stack)
    assert call(runner, "DELETE", f"/watches/{post_id}")[0] == 200
    assert table_count(stack) == 0
