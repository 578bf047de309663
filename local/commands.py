"""`local demo|serve`: the local stack of `make demo` (Genviral emulator + moto), from a checkout.

The `local` package lives at the root of the project, outside the installed package: these
commands import it from the current directory, and need the development dependencies (moto).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
from pathlib import Path
from types import ModuleType

from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.output import CliError, Console

NOT_A_CHECKOUT = (
    "`local` runs from a checkout of genviral-relay: run it in the project's root (where template.yaml and local/ are)"
)


def local_module(name: str) -> ModuleType:
    qualified = f"local.{name}"
    try:
        return _import(qualified)
    except ModuleNotFoundError:
        pass
    root = Path.cwd()
    if not ((root / "local" / f"{name}.py").is_file() and (root / "template.yaml").is_file()):
        raise CliError(NOT_A_CHECKOUT)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    return _import(qualified)


def _import(qualified: str) -> ModuleType:
    """The module; ModuleNotFoundError only when the `local` package itself is not found."""
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as error:
        if error.name in ("local", qualified):
            raise
        raise CliError(f"`local` needs the development dependencies ({error.name} is missing): run make venv") from None


def run_demo(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    code: int = local_module("demo").run(args.verbose)
    if code != 0:
        raise CliError("the demo did not go as expected (see above)")
    return 0


def run_serve(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    serve = local_module("serve")
    try:
        serve.serve(tick_seconds=args.tick, stop=threading.Event())
    except KeyboardInterrupt:
        console.note("stopped")
    return 0
