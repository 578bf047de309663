"""Workspaces: one Genviral key each, several in one stack (the secret's `{"workspaces": {"<name>": "<token>"}}`).

The plain and `{"token"}` forms of the secret mean one workspace named `default`. Everything the relay keeps per
workspace (the pause, discover mode's walk, the account directory and health, the due index's shards, the created
index's partition) is named by `scoped`: the default workspace keeps the names 0.4 wrote, so a 0.4 deployment's
state is `default`'s without a migration; another workspace's names carry `#<name>`, which no 0.4 name contains.
A watch without a workspace (stored by 0.4, or registered in a single-workspace stack) is `default`'s.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

DEFAULT_WORKSPACE = "default"
WORKSPACE_NAME_PATTERN = r"^[a-z0-9-]{1,40}$"
WORKSPACE_NAME = re.compile(WORKSPACE_NAME_PATTERN)
WorkspaceName = Annotated[str, StringConstraints(pattern=WORKSPACE_NAME_PATTERN)]
"""A workspace as the secret names it: lower-case letters, digits and dashes, 1 to 40 of them."""


# shim: workspace-absent-is-default
def workspace_of(stored: str | None) -> str:
    """The workspace a stored value (a watch's, a message's) means: absent is `default`."""
    return stored or DEFAULT_WORKSPACE


def stored_workspace(workspace: str) -> str | None:
    """What a watch or a message stores for `workspace`: nothing for `default` (0.4 readers see what they knew)."""
    return None if workspace == DEFAULT_WORKSPACE else workspace


def scoped(name: str, workspace: str | None) -> str:
    """The name of a per-workspace item (a record, a shard, a partition): 0.4's for the default workspace."""
    return name if workspace_of(workspace) == DEFAULT_WORKSPACE else f"{name}#{workspace}"
