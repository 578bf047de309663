"""The functions' Python: its version from template.yaml, and an interpreter of it on this machine.

`sam build` compiles the functions' bytecode with it (src/Makefile), so the build test and the
benchmark's artifact look for one the same way.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from local.template import load_template

RUNTIME_PYTHON = str(load_template()["Globals"]["Function"]["Runtime"]).removeprefix("python")
"""The major.minor version of the functions' runtime, e.g. "3.13"."""


def python_version(executable: str) -> str | None:
    """The full version of the interpreter at `executable` ("3.13.0"), or None when it does not run."""
    try:
        answer = subprocess.run(  # noqa: S603 - a Python interpreter, asked for its version
            [executable, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout.strip()


def find_runtime_python(*, pyenv: bool) -> tuple[str, str, bool]:
    """(executable, full version, whether it is the runtime's version): $PYTHON, then python3.13 on PATH
    (where `sam build` looks), then with `pyenv` an installed pyenv version; else this interpreter."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        os.environ.get("PYTHON", ""),
        shutil.which(f"python{RUNTIME_PYTHON}") or "",  # a pyenv shim may be on PATH and still refuse to run
        *(
            map(str, sorted(pyenv_root.glob(f"versions/{RUNTIME_PYTHON}.*/bin/python{RUNTIME_PYTHON}"), reverse=True))
            if pyenv
            else ()
        ),
    ]
    for candidate in filter(None, candidates):
        version = python_version(candidate)
        if version is not None and version.startswith(f"{RUNTIME_PYTHON}."):
            return candidate, version, True
    return sys.executable, platform.python_version(), False
