"""Reading the Genviral token out of the secret's value: plain text or JSON `{"token": ...}`."""

from __future__ import annotations

import pytest

from genviral_relay.aws.secrets import parse_token
from genviral_relay.errors import GenviralConfigError, TokenUnavailableError

SECRET = "gva_live_LEAKCANARY.Zq9-7xYv-SHOULD-NEVER-APPEAR"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gva_live_x1y2z3.abcd1234", "gva_live_x1y2z3.abcd1234"),
        ("  gva_live_x1y2z3.abcd1234\n", "gva_live_x1y2z3.abcd1234"),
        ("\tgva_live_x1y2z3.abcd1234\r\n", "gva_live_x1y2z3.abcd1234"),
    ],
)
def test_plain_text_secret_is_the_token_stripped(value: str, expected: str) -> None:
    assert parse_token(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"token": "gva_live_x1y2z3.abcd1234"}', "gva_live_x1y2z3.abcd1234"),
        ('{"token": "  gva_live_x1y2z3.abcd1234 \\n"}', "gva_live_x1y2z3.abcd1234"),
        ('  \n{"token": "gva_live_a.b", "rotated_at": "2025-02-01"}\n', "gva_live_a.b"),
    ],
)
def test_json_secret_yields_its_token_field_stripped(value: str, expected: str) -> None:
    assert parse_token(value) == expected


UNUSABLE = {
    "empty string": "",
    "only whitespace": " \n\t ",
    "json without token": '{"api_key": "' + SECRET + '"}',
    "json empty token": '{"token": ""}',
    "json whitespace token": '{"token": "   "}',
    "json null token": '{"token": null, "note": "' + SECRET + '"}',
    "json number token": '{"token": 12345, "note": "' + SECRET + '"}',
    "json list token": '{"token": ["' + SECRET + '"]}',
    "json object token": '{"token": {"value": "' + SECRET + '"}}',
    "json truncated": '{"token": "' + SECRET,
    "json not quoted": "{token: " + SECRET + "}",
    "json trailing garbage": '{"token": "' + SECRET + '"} trailing',
}


@pytest.mark.parametrize("value", list(UNUSABLE.values()), ids=list(UNUSABLE))
def test_unusable_secret_raises_token_unavailable(value: str) -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_token(value)

    assert isinstance(caught.value, GenviralConfigError)
    assert str(caught.value)


@pytest.mark.parametrize("value", list(UNUSABLE.values()), ids=list(UNUSABLE))
def test_error_never_quotes_the_secret(value: str) -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_token(value)

    error = caught.value
    for fragment in (SECRET, "LEAKCANARY", "SHOULD-NEVER-APPEAR"):
        assert fragment not in str(error)
        assert fragment not in repr(error)
        assert all(fragment not in str(arg) for arg in error.args)
    # A JSON parse failure is not chained: its traceback would show where the secret broke.
    assert error.__cause__ is None


def test_invalid_json_does_not_show_its_decode_error_as_context() -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_token('{"token": "' + SECRET)

    assert caught.value.__suppress_context__ is True


def test_plain_secret_that_looks_like_a_token_with_braces_inside_is_not_json() -> None:
    # Only a value starting with "{" is read as JSON.
    assert parse_token("gva_live_a.{b}") == "gva_live_a.{b}"


def test_json_string_secret_is_the_token_without_quotes() -> None:
    assert parse_token('"gva_live_x.y"') == "gva_live_x.y"
    with pytest.raises(TokenUnavailableError):
        parse_token('"unterminated')
