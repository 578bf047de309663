"""The compatibility shims are listed once, in docs/compatibility.md, and the list cannot go stale: every
`# shim: <name>` marker in the code (src/ and template.yaml) has its section there naming the marked file, every
listed shim is marked somewhere, and each says what it is, where, why and the release that removes it."""

from __future__ import annotations

import re
from pathlib import Path

from genviral_relay import __version__

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "compatibility.md"
MARKER = re.compile(r"#\s*shim:\s*([a-z0-9][a-z0-9-]*)")
SECTION = re.compile(r"^### `([a-z0-9][a-z0-9-]*)`\n(.*?)(?=^#{1,3} |\Z)", re.M | re.S)
FIELDS = ("**What:**", "**Where:**", "**Why:**", "**Removed in:**")


def marked_files() -> list[Path]:
    return [*sorted((ROOT / "src").rglob("*.py")), ROOT / "template.yaml"]


def markers(files: list[Path]) -> dict[str, set[str]]:
    """Shim name -> the files (relative to the project's root) that mark it."""
    found: dict[str, set[str]] = {}
    for path in files:
        for name in MARKER.findall(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def listed(page: str) -> dict[str, str]:
    """Shim name -> the text of its section."""
    sections = SECTION.findall(page)
    names = [name for name, _ in sections]
    assert len(names) == len(set(names)), f"a shim listed twice: {names}"
    return dict(sections)


def where(section: str) -> str:
    return section.split("**Where:**", 1)[1].split("**Why:**", 1)[0]


def stale(found: dict[str, set[str]], shims: dict[str, str]) -> list[str]:
    problems = [
        f"`# shim: {name}` in {sorted(files)} is not listed" for name, files in found.items() if name not in shims
    ]
    problems += [f"`{name}` is listed but marked nowhere" for name in shims if name not in found]
    problems += [
        f"`{name}`: its Where does not name {file}"
        for name, files in found.items()
        if name in shims
        for file in sorted(files)
        if f"`{file}`" not in where(shims[name])
    ]
    return problems


def test_every_marked_shim_is_listed_with_the_files_that_mark_it_and_nothing_else_is() -> None:
    assert stale(markers(marked_files()), listed(PAGE.read_text())) == []


def test_each_shim_says_what_where_why_and_when_it_goes() -> None:
    for name, section in listed(PAGE.read_text()).items():
        positions = [section.find(field) for field in FIELDS]
        assert -1 not in positions, f"`{name}` lacks one of {FIELDS}"
        assert positions == sorted(positions), f"`{name}`: {FIELDS} in this order"
        removal = section.split("**Removed in:**", 1)[1].strip()
        version = re.match(r"(\d+)\.(\d+)\.(\d+)", removal)
        if version is None:
            assert removal.startswith("not planned. "), f"`{name}`: a release, or `not planned.` with the reason"
        else:
            released = tuple(int(part) for part in __version__.split("."))
            assert tuple(int(part) for part in version.groups()) > released, f"`{name}` should be gone already"


def test_the_list_is_linked_from_the_readme() -> None:
    assert "(docs/compatibility.md)" in (ROOT / "README.md").read_text()


def test_a_stale_list_is_reported(tmp_path: Path) -> None:
    code = tmp_path / "src" / "module.py"
    code.parent.mkdir()
    code.write_text("x = 1  # shim: kept-name\n# shim: new-name\n")
    page = (
        "### `kept-name`\n\n- **What:** a.\n- **Where:** `src/other.py`.\n- **Why:** b.\n- **Removed in:** 0.6.0.\n\n"
        "### `gone-name`\n\n- **What:** a.\n- **Where:** `src/module.py`.\n- **Why:** b.\n- **Removed in:** 0.6.0.\n"
    )
    found = {name: {str(Path(file).relative_to(tmp_path))} for name, file in [("kept-name", code), ("new-name", code)]}
    assert stale(found, listed(page)) == [
        "`# shim: new-name` in ['src/module.py'] is not listed",
        "`gone-name` is listed but marked nowhere",
        "`kept-name`: its Where does not name src/module.py",
    ]
