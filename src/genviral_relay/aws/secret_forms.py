"""The Genviral secret's forms, read into one key per workspace (pure: no I/O).

- plain text, or a JSON string: the key of the one workspace `default`;
- `{"token": "<key>", ...}`: the same (0.4's forms, so a 0.4 secret keeps working unchanged);
- `{"workspaces": {"<name>": "<key>", ...}, ...}`: several workspaces, names as `models/workspaces.py` allows them.

Anything else is a configuration error whose message says what is wrong and which workspace names it concerns,
never a key: a name that may be a key pasted in the wrong place (it holds a dot, as Genviral keys do, or is too
long to be a name) is described, not quoted. A message naming workspaces is the operator's (`problem`: the log,
the registry): what is published to every workspace (`summary`, `relay.paused`'s reason) is `NOT_USABLE`, so no
workspace's consumers read another's name. One key under two names is refused too: both would spend the one key's
limits, and each would meet the other's watches in its discovery and refreshes.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from genviral_relay.errors import TokenUnavailableError
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, WORKSPACE_NAME

NOT_USABLE = "the Genviral secret is not a usable configuration; see the worker's log"
"""The published reason for a problem that names workspaces (the names stay in the log and the registry)."""
MAX_QUOTED_NAME = 40
"""An invalid name longer than this is described, not quoted (a name is at most 40 characters; a key is longer)."""


class _JsonObject(dict[str, Any]):
    """A parsed JSON object that remembers the keys it held more than once (`json.loads` keeps the last silently)."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    document = _JsonObject(pairs)
    if len(document) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        document.duplicates = tuple(sorted(key for key, count in counts.items() if count > 1))
    return document


def _bad(problem: str) -> TokenUnavailableError:
    return TokenUnavailableError(f"the Genviral secret {problem}")


def _bad_workspaces(problem: str) -> TokenUnavailableError:
    """A problem that names workspaces: published neutrally (`NOT_USABLE`), told to the operator in full."""
    return TokenUnavailableError(NOT_USABLE, problem=f"the Genviral secret {problem}")


def shown(name: str) -> str:
    """A workspace name as an error message may show it: quoted, unless it may be a key."""
    if "." in name or len(name) > MAX_QUOTED_NAME or not name.isprintable():
        return f"a name of {len(name)} characters (not shown: it may be a key)"
    return json.dumps(name)


def _names(names: list[str]) -> str:
    return ", ".join(shown(name) for name in sorted(names))


def parse_workspaces(secret_value: str) -> dict[str, str]:
    """Each workspace's Genviral key, by name (sorted); `TokenUnavailableError` for a secret that is not one of the
    forms above. JSON errors are not chained: their text and traceback show where the secret broke."""
    text = secret_value.strip()
    if text.startswith('"'):  # a JSON string: the token without its quotes
        try:
            text = str(json.loads(text)).strip()
        except ValueError:
            raise _bad("looks like a JSON string but does not parse") from None
    elif text.startswith("{"):
        try:
            document = json.loads(text, object_pairs_hook=_object)
        except ValueError:
            raise _bad("looks like JSON but does not parse") from None
        return _from_object(document)
    if not text:
        raise _bad("is empty")
    return {DEFAULT_WORKSPACE: text}


def _from_object(document: _JsonObject) -> dict[str, str]:
    if document.duplicates:
        raise _bad(f"holds the key(s) {_names(list(document.duplicates))} more than once")
    if "token" in document and "workspaces" in document:
        raise _bad('holds both "token" and "workspaces": keep one (several workspaces: "workspaces" alone)')
    if "workspaces" not in document:
        token = document.get("token")
        if not isinstance(token, str) or not token.strip():
            raise _bad('is JSON without a non-empty "token" string or a "workspaces" map')
        return {DEFAULT_WORKSPACE: token.strip()}
    workspaces = document["workspaces"]
    if not isinstance(workspaces, dict):
        raise _bad('has a "workspaces" that is not a map of workspace names to keys')
    if not workspaces:
        raise _bad('has an empty "workspaces" map: name at least one workspace')
    if isinstance(workspaces, _JsonObject) and workspaces.duplicates:
        raise _bad_workspaces(f"names the workspace(s) {_names(list(workspaces.duplicates))} more than once")
    invalid = [name for name in workspaces if not WORKSPACE_NAME.fullmatch(name)]
    if invalid:
        raise _bad_workspaces(
            f"names workspace(s) outside 1 to 40 lower-case letters, digits and dashes: {_names(invalid)}"
        )
    unusable = [name for name, token in workspaces.items() if not isinstance(token, str) or not token.strip()]
    if unusable:
        raise _bad_workspaces(f"has no non-empty key string for the workspace(s) {_names(unusable)}")
    keys = {name: workspaces[name].strip() for name in sorted(workspaces)}
    shared = _sharing(keys)
    if shared:
        raise _bad_workspaces(f"gives one key to several workspaces ({shared}): a key serves one workspace")
    return keys


def _sharing(keys: dict[str, str]) -> str:
    """The groups of workspaces given the same key, by name only (never the key); empty when each has its own."""
    by_key: dict[str, list[str]] = {}
    for name, key in keys.items():
        by_key.setdefault(key, []).append(name)
    return "; ".join(sorted(_names(names) for names in by_key.values() if len(names) > 1))
