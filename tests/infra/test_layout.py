"""The layout shows the architecture, and these keep it so (docs/design.md, "Layout"): modules small enough to read,
ports small enough to fake, no import cycle (those only under TYPE_CHECKING or inside a function included), the
pure rules free of I/O, and the shipped package free of the harness."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "genviral_relay"
MAX_LINES = 300
MAX_ABSTRACT_METHODS = 9
HARNESS = ("local", "tools", "tests", "bench")
IO_MODULES = ("boto3", "botocore", "requests", "urllib3", "socket", "http.client", "urllib.request", "ssl")
RULES_MAY_IMPORT = ("genviral_relay.rules", "genviral_relay.models", "genviral_relay.clock", "genviral_relay.errors")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path) -> Iterator[str]:
    """Every module `name` imports, wherever the import statement is (top level, TYPE_CHECKING, a function)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # `from package import module`


def internal_graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {other for other in imports(name, path) if other in known and other != name}
        for name, path in known.items()
    }


def test_no_module_is_over_the_line_limit() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: split them by concern"


def test_no_port_has_more_than_nine_abstract_methods() -> None:
    ports = 0
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "ABC" for b in node.bases)):
                continue
            ports += 1
            abstract = [
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef)
                and any(getattr(d, "id", "") == "abstractmethod" for d in item.decorator_list)
            ]
            assert len(abstract) <= MAX_ABSTRACT_METHODS, (name, node.name, abstract)
    assert ports >= 10  # the check found the ports


def test_there_is_no_import_cycle() -> None:
    graph = internal_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for other in sorted(graph[node]):
            if state.get(other) == 1:
                cycles.append([*trail[trail.index(other) :], other])
            elif other not in state:
                visit(other, [*trail, other])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_cycle_check_sees_type_checking_and_function_imports(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from genviral_relay.checking import check\n"
        "def later():\n    from genviral_relay.polling.tick import PollTick\n"
    )
    found = set(imports("genviral_relay.sample", module))
    assert {"genviral_relay.checking.check", "genviral_relay.polling.tick"} <= found


@pytest.mark.parametrize("name", sorted(modules()))
def test_the_shipped_package_never_imports_the_harness(name: str) -> None:
    found = [other for other in imports(name, modules()[name]) if other.split(".")[0] in HARNESS]
    assert found == [], f"{name} imports {found}: local/, tools/, tests/ and bench/ are not shipped"


def test_the_rules_do_no_io_and_depend_only_on_models() -> None:
    for name, path in modules().items():
        if not name.startswith("genviral_relay.rules."):
            continue
        for other in imports(name, path):
            assert not other.startswith(IO_MODULES), (name, other)
            if other.startswith("genviral_relay"):
                assert other.startswith(RULES_MAY_IMPORT) or other == "genviral_relay", (name, other)


HANDLERS_IMPORT_ONLY_WHAT_THEY_RUN = {
    # The poller queues work: no webhook model, no check path.
    "genviral_relay.handlers.poller": ("genviral_relay.models.webhooks", "genviral_relay.checking.check"),
    # The API imports the check path on the first check, the webhook use cases on the first webhook route.
    "genviral_relay.handlers.api": ("genviral_relay.checking.check", "genviral_relay.webhooks.registry"),
    # The webhook functions never import the check path nor Genviral's client.
    "genviral_relay.handlers.webhook_dispatcher": ("genviral_relay.checking.check", "genviral_relay.genviral.client"),
    "genviral_relay.handlers.webhook_delivery": ("genviral_relay.checking.check", "genviral_relay.genviral.client"),
}


_SOURCE_FIRST = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


@pytest.mark.parametrize(("handler", "absent"), sorted(HANDLERS_IMPORT_ONLY_WHAT_THEY_RUN.items()))
def test_a_handler_imports_only_what_its_cold_start_needs(handler: str, absent: tuple[str, ...]) -> None:
    """What keeps each cold import within 1.5 times `import boto3, requests` (bench/RESULTS.md, figure 5)."""
    code = f"import sys, {handler}; print(','.join(name for name in {absent!r} if name in sys.modules))"
    done = subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.stdout.strip() == "", f"{handler} imports {done.stdout.strip()} at cold start"
