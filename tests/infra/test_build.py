"""`sam build` builds every function with src/Makefile, which ships bytecode compiled by the runtime's Python.

No network and no SAM CLI here. The makefile's pip step (the dependencies, as wheels for Lambda's
platform) is only dry-run; its package and bytecode steps really run, on a temporary copy of the
package, with python3.13 when one works ($PYTHON or on PATH) and otherwise with this interpreter
under its own version: then the test proves the steps, not that 3.13 itself was used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from local.template import functions, load_template
from tests.support.runtime import find_runtime_python

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "src" / "Makefile"
PACKAGE = ROOT / "src" / "genviral_relay"
TEMPLATE = load_template()
FUNCTIONS = functions(TEMPLATE)
GLOBALS = TEMPLATE["Globals"]["Function"]
RUNTIME_VERSION = str(GLOBALS["Runtime"]).removeprefix("python")
CACHES = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def makefile_variable(name: str) -> str:
    found = re.search(rf"^{name} *:?= *(.*)$", MAKEFILE.read_text(), re.M)
    assert found, f"src/Makefile sets no {name}"
    return found.group(1).strip()


def make(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Without the variables of a calling make (make test): they would override the ones given here.
    env = {name: value for name, value in os.environ.items() if name not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(  # noqa: S603 - make with our own makefile
        ["make", "--no-print-directory", "-f", str(MAKEFILE), *arguments],  # noqa: S607
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def build_python() -> tuple[str, str]:
    """The runtime's Python as `sam build` would find it ($PYTHON, python3.13 on PATH), else this one
    (major.minor)."""
    executable, version, _ = find_runtime_python(pyenv=False)
    return executable, ".".join(version.split(".")[:2])


def test_every_function_is_built_by_the_makefile_from_src() -> None:
    for logical_id, resource in FUNCTIONS.items():
        assert resource.get("Metadata", {}).get("BuildMethod") == "makefile", logical_id
        assert resource["Properties"].get("CodeUri", GLOBALS.get("CodeUri")) == "src/", logical_id


def test_the_makefile_builds_for_the_runtime_and_architecture_of_the_template() -> None:
    assert makefile_variable("RUNTIME_VERSION") == RUNTIME_VERSION
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[GLOBALS["Architectures"][0]]
    platforms = makefile_variable("PLATFORMS").split()
    assert platforms
    assert all(platform.endswith(f"_{machine}") for platform in platforms)
    for logical_id, resource in FUNCTIONS.items():  # one runtime and one architecture for all
        assert resource["Properties"].get("Runtime", GLOBALS["Runtime"]) == GLOBALS["Runtime"], logical_id
        assert resource["Properties"].get("Architectures", GLOBALS["Architectures"]) == GLOBALS["Architectures"]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_the_makefile_has_a_build_target_per_function(logical_id: str, tmp_path: Path) -> None:
    dry_run = make("-n", f"build-{logical_id}", f"ARTIFACTS_DIR={tmp_path}", cwd=ROOT / "src")
    assert dry_run.returncode == 0, dry_run.stderr
    commands = dry_run.stdout
    assert f"--python-version {RUNTIME_VERSION}" in commands
    assert "--only-binary=:all:" in commands
    assert "--platform" in commands
    assert "-m compileall" in commands
    assert "--invalidation-mode unchecked-hash" in commands
    assert not any(tmp_path.iterdir()), "a dry run wrote to the artifact"


def test_a_build_refuses_a_python_that_is_not_the_runtime_version(tmp_path: Path) -> None:
    refused = make("check-python", f"ARTIFACTS_DIR={tmp_path}", f"PYTHON={tmp_path / 'python'}", cwd=ROOT / "src")
    assert refused.returncode != 0
    assert f"PYTHON=/path/to/python{RUNTIME_VERSION} sam build" in refused.stderr


def built(source: Path, artifact: Path, python: str, version: str) -> Path:
    done = make(
        "check-python",
        "package",
        "bytecode",
        f"ARTIFACTS_DIR={artifact}",
        f"PYTHON={python}",
        f"RUNTIME_VERSION={version}",
        cwd=source,
    )
    assert done.returncode == 0, f"{python} ({version}): {done.stdout}{done.stderr}"
    return artifact


def test_the_package_and_bytecode_steps_compile_every_module(tmp_path: Path) -> None:
    python, version = build_python()
    source = tmp_path / "src"
    shutil.copytree(PACKAGE, source / PACKAGE.name, ignore=CACHES)
    (source / PACKAGE.name / "__pycache__").mkdir()
    (source / PACKAGE.name / "__pycache__" / "clock.cpython-311.pyc").write_bytes(b"stale")
    (source / PACKAGE.name / ".mypy_cache").mkdir()

    artifact = built(source, tmp_path / "artifact", python, version)
    elsewhere = built(source, tmp_path / "elsewhere" / "artifact", python, version)

    package = artifact / PACKAGE.name
    sources = sorted(package.rglob("*.py"))
    assert [path.relative_to(package) for path in sources] == sorted(
        path.relative_to(PACKAGE) for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts
    )
    tag = subprocess.run(  # noqa: S603
        [python, "-c", "import sys; print(sys.implementation.cache_tag)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    compiled = sorted(package.rglob("*.pyc"))
    assert compiled == sorted(path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc" for path in sources), python
    assert not list(package.rglob(".mypy_cache"))
    for pyc in compiled:
        header = pyc.read_bytes()[:16]
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{pyc}: not an unchecked-hash .pyc"
        # The same bytes wherever the build ran: the recorded paths are Lambda's, /var/task/...
        assert pyc.read_bytes() == (elsewhere / pyc.relative_to(artifact)).read_bytes(), pyc
    init = package / "__pycache__" / f"__init__.{tag}.pyc"
    read = "import marshal, sys; print(marshal.loads(open(sys.argv[1], 'rb').read()[16:]).co_filename)"
    recorded = subprocess.run(  # noqa: S603 - the compiling interpreter reads its own bytecode
        [python, "-c", read, str(init)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert recorded == f"/var/task/{PACKAGE.name}/__init__.py"
