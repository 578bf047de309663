"""This work's workspace: which Genviral workspace the running code works for, said in one place (`working_for`)
and read by the metrics (`observability.emit`: a second series with a `workspace` dimension) and by every log line
(a `workspace` key, `name_workspace`). So a line and a figure of the same work always name the same workspace.

Whether work names its workspace is decided here alone (`working_for`'s `among`): only when the stack has several. A
stack of one workspace names none: no second metric series (it would cost as much and say nothing) and log lines
byte for byte 0.4's (docs/operations.md, "Logs"). A context variable, so each thread names its own workspace; a
thread started inside names it only when it runs in a copied context (`copy_context().run`), as the worker's do."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

WORKSPACE_KEY = "workspace"
"""The log key and the metric dimension alike."""

_workspace: ContextVar[str | None] = ContextVar(WORKSPACE_KEY, default=None)


@contextmanager
def working_for(workspace: str | None, *, among: Collection[str] = ()) -> Iterator[None]:
    """What runs here works for `workspace`, named only when `among`, the workspaces the caller knows the stack has
    (the list it holds already: the registry, the secret's names), are several. None: the stack's own work (the
    notices flush, the sync), which names none; so does a stack of one workspace, and a caller that names no list."""
    token = _workspace.set(workspace if len(set(among)) > 1 else None)
    try:
        yield
    finally:
        _workspace.reset(token)


def current_workspace() -> str | None:
    """The workspace this work names (`working_for`); None: none."""
    return _workspace.get()


def name_workspace(record: logging.LogRecord) -> bool:
    """A log filter: the line names this work's workspace. A line that names one itself (`extra`) keeps its own: it
    is about another workspace than the work's (the sync pausing each one)."""
    workspace = _workspace.get()
    if workspace is not None and not hasattr(record, WORKSPACE_KEY):
        setattr(record, WORKSPACE_KEY, workspace)
    return True
