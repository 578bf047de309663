"""The Genviral secret's forms (`aws/secret_forms.py`): plain text, a JSON string and `{"token": ...}` are the one
workspace `default` (0.4's secret, unchanged); `{"workspaces": {...}}` names several. Every other value is a
configuration error whose message says what is wrong, names the workspaces concerned, and never holds a key."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genviral_relay.aws.secret_forms import NOT_USABLE, parse_workspaces
from genviral_relay.errors import GenviralConfigError, TokenUnavailableError

SECRET = "gva_live_LEAKCANARY.Zq9-7xYv-SHOULD-NEVER-APPEAR"
FRAGMENTS = (SECRET, "LEAKCANARY", "SHOULD-NEVER-APPEAR")


def workspaces(pairs: str) -> str:
    """A secret with a `workspaces` map written as its JSON text (duplicates survive: a dict would drop them)."""
    return '{"workspaces": {' + pairs + "}}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gva_live_x1y2z3.abcd1234", "gva_live_x1y2z3.abcd1234"),
        ("  gva_live_x1y2z3.abcd1234\n", "gva_live_x1y2z3.abcd1234"),
        ("\tgva_live_x1y2z3.abcd1234\r\n", "gva_live_x1y2z3.abcd1234"),
        ('"gva_live_x.y"', "gva_live_x.y"),
        ("gva_live_a.{b}", "gva_live_a.{b}"),  # only a value starting with "{" is read as JSON
        ('{"token": "gva_live_x1y2z3.abcd1234"}', "gva_live_x1y2z3.abcd1234"),
        ('{"token": "  gva_live_x1y2z3.abcd1234 \\n"}', "gva_live_x1y2z3.abcd1234"),
        ('  \n{"token": "gva_live_a.b", "rotated_at": "2025-02-01"}\n', "gva_live_a.b"),
    ],
)
def test_the_forms_of_04_are_the_one_workspace_default(value: str, expected: str) -> None:
    assert parse_workspaces(value) == {"default": expected}


def test_a_workspaces_map_is_every_named_workspace_sorted_with_its_key_stripped() -> None:
    value = workspaces('"beta": " gva_live_b.2\\n", "acme": "gva_live_a.1", "default": "gva_live_d.0"')

    keys = parse_workspaces(value)

    assert keys == {"acme": "gva_live_a.1", "beta": "gva_live_b.2", "default": "gva_live_d.0"}
    assert list(keys) == ["acme", "beta", "default"]


def test_a_workspaces_map_may_sit_beside_other_fields() -> None:
    assert parse_workspaces('{"rotated_at": "2026-01-01", "workspaces": {"a": "gva_live_a.1"}}') == {
        "a": "gva_live_a.1"
    }


NAMES = st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True)
KEYS = st.from_regex(r"gva_live_[A-Za-z0-9]{1,12}\.[A-Za-z0-9_-]{1,24}", fullmatch=True)


MAPS = st.lists(st.tuples(NAMES, KEYS), min_size=1, max_size=8, unique_by=(lambda p: p[0], lambda p: p[1])).map(dict)
"""Valid names, each with a key of its own (one key under two names is refused)."""


@given(MAPS)
def test_any_map_of_valid_names_to_keys_reads_back_as_written(keys: dict[str, str]) -> None:
    assert parse_workspaces(json.dumps({"workspaces": keys})) == dict(sorted(keys.items()))


@given(KEYS)
def test_any_key_alone_is_default_s_in_every_04_form(key: str) -> None:
    for value in (key, json.dumps(key), json.dumps({"token": key})):
        assert parse_workspaces(value) == {"default": key}


UNUSABLE = {
    # (secret, words the message must hold)
    "empty string": ("", ["empty"]),
    "only whitespace": (" \n\t ", ["empty"]),
    "json string unterminated": ('"unterminated', ["JSON string"]),
    "json without token": ('{"api_key": "' + SECRET + '"}', ['"token"', '"workspaces"']),
    "json empty token": ('{"token": ""}', ['"token"']),
    "json whitespace token": ('{"token": "   "}', ['"token"']),
    "json null token": ('{"token": null, "note": "' + SECRET + '"}', ['"token"']),
    "json number token": ('{"token": 12345, "note": "' + SECRET + '"}', ['"token"']),
    "json list token": ('{"token": ["' + SECRET + '"]}', ['"token"']),
    "json object token": ('{"token": {"value": "' + SECRET + '"}}', ['"token"']),
    "json truncated": ('{"token": "' + SECRET, ["does not parse"]),
    "json not quoted": ("{token: " + SECRET + "}", ["does not parse"]),
    "json trailing garbage": ('{"token": "' + SECRET + '"} trailing', ["does not parse"]),
    "token twice": ('{"token": "' + SECRET + '", "token": "gva_live_b.2"}', ['"token"', "more than once"]),
    "token and workspaces": (
        '{"token": "' + SECRET + '", "workspaces": {"a": "gva_live_a.1"}}',
        ['both "token" and "workspaces"'],
    ),
    "workspaces empty": (workspaces(""), ["empty", "at least one"]),
    "workspaces a list": ('{"workspaces": ["' + SECRET + '"]}', ["not a map"]),
    "workspaces a string": ('{"workspaces": "' + SECRET + '"}', ["not a map"]),
    "duplicate name": (
        workspaces('"acme": "' + SECRET + '", "beta": "gva_live_b.2", "acme": "gva_live_c.3"'),
        ['"acme"', "more than once"],
    ),
    "upper-case name": (workspaces('"Acme": "' + SECRET + '", "ok": "gva_live_b.2"'), ['"Acme"', "lower-case"]),
    "name with underscore": (workspaces('"client_1": "' + SECRET + '"'), ['"client_1"']),
    "empty name": (workspaces('"": "' + SECRET + '"'), ['""']),
    "name of 41": (workspaces('"' + "a" * 41 + '": "' + SECRET + '"'), ["41 characters"]),
    "name and key swapped": (workspaces('"' + SECRET + '": "acme"'), ["not shown: it may be a key"]),
    "empty key": (workspaces('"acme": "", "beta": "' + SECRET + '"'), ['"acme"', "key"]),
    "blank key": (workspaces('"acme": "  ", "beta": "' + SECRET + '"'), ['"acme"']),
    "null key": (workspaces('"acme": null, "beta": "' + SECRET + '"'), ['"acme"']),
    "number key": (workspaces('"acme": 7, "beta": "' + SECRET + '"'), ['"acme"']),
    "object key": (workspaces('"acme": {"token": "' + SECRET + '"}'), ['"acme"']),
    "one key under two names": (
        workspaces('"acme": "' + SECRET + '", "acme-old": " ' + SECRET + ' ", "beta": "gva_live_b.2"'),
        ['"acme", "acme-old"', "one key to several workspaces"],
    ),
}
NAMING = {
    # the problems that name workspaces: published neutrally (`NOT_USABLE`), told in full to the operator
    "duplicate name",
    "upper-case name",
    "name with underscore",
    "empty name",
    "name of 41",
    "name and key swapped",
    "empty key",
    "blank key",
    "null key",
    "number key",
    "object key",
    "one key under two names",
}


@pytest.mark.parametrize(("case", "value", "words"), [(case, *UNUSABLE[case]) for case in UNUSABLE], ids=list(UNUSABLE))
def test_an_unusable_secret_is_a_configuration_error_that_says_why(case: str, value: str, words: list[str]) -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_workspaces(value)

    assert isinstance(caught.value, GenviralConfigError)  # it pauses calls and counts as SecretUnreadable
    message = str(caught.value)
    assert message.startswith("the Genviral secret ")
    assert caught.value.problem == message  # the operator's words: the log line, the registry
    for word in words:
        assert word in message
    # the published words (every workspace's `relay.paused`): no workspace's name when the problem names some
    assert caught.value.summary == (NOT_USABLE if case in NAMING else message)


def test_the_words_published_for_a_problem_naming_workspaces_name_none() -> None:
    # Every such problem is published as NOT_USABLE (above): these are the names the cases use.
    for name in ("acme", "beta", "Acme", "client_1", "ok"):
        assert name not in NOT_USABLE


def test_one_key_under_two_names_is_refused_whichever_names_and_whatever_the_spacing() -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_workspaces(
            workspaces(
                '"zed": "gva_live_k.1", "beta": "gva_live_b.2", "acme": "gva_live_k.1\\n", "yak": "gva_live_b.2", '
                '"solo": "gva_live_s.3"'
            )
        )

    assert '("acme", "zed"; "beta", "yak")' in str(caught.value)
    assert '"solo"' not in str(caught.value)
    assert "gva_live" not in str(caught.value)


@pytest.mark.parametrize("value", [value for value, _ in UNUSABLE.values()], ids=list(UNUSABLE))
def test_no_error_quotes_a_key(value: str) -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_workspaces(value)

    error = caught.value
    for fragment in FRAGMENTS:
        assert fragment not in str(error)
        assert fragment not in repr(error)
        assert all(fragment not in str(arg) for arg in error.args)
    # A JSON parse failure is not chained: its traceback would show where the secret broke.
    assert error.__cause__ is None


def test_every_offending_name_is_named_sorted() -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_workspaces(workspaces('"zed": "", "ok": "gva_live_o.1", "abc": 1'))

    assert '"abc", "zed"' in str(caught.value)
    assert '"ok"' not in str(caught.value)


@given(st.dictionaries(NAMES, KEYS, min_size=1, max_size=5), st.sampled_from(["Bad", "x_y", "a.b", "", "é"]))
def test_any_map_with_an_invalid_name_is_refused_and_no_key_is_in_the_message(
    keys: dict[str, str], invalid: str
) -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_workspaces(json.dumps({"workspaces": {**keys, invalid: "gva_live_bad.key"}}))

    assert all(key not in str(caught.value) for key in [*keys.values(), "gva_live_bad.key"])


def test_invalid_json_does_not_show_its_decode_error_as_context() -> None:
    with pytest.raises(TokenUnavailableError) as caught:
        parse_workspaces('{"token": "' + SECRET)

    assert caught.value.__suppress_context__ is True
