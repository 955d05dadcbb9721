"""The package's layout: imports only go down its rooms, and no module imports itself round a circle.

A module's imports are read from its source (every ``import``, deferred ones inside
functions and under ``TYPE_CHECKING`` included), so a new circle or an import that goes
up a layer fails here rather than in a reviewer's head. docs/development.md draws the
same map.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reindex"

#: The rooms from the bottom up; a module may import its own room's modules and any lower room's.
LAYERS: list[tuple[str, ...]] = [
    ("reindex.errors",),
    ("reindex.config", "reindex.results", "reindex.interrupts", "reindex.boot", "reindex.models", "reindex.testserver"),
    ("reindex.database",),
    ("reindex.definitions",),
    ("reindex.server",),
    ("reindex.pipeline",),
    ("reindex.executors",),
    ("reindex.operations",),
    ("reindex.queue",),
    ("reindex.stream",),
    ("reindex.search",),
    (
        "reindex",
        "reindex.api",
        "reindex.capture",
        "reindex.tasks",
        "reindex.apps",
        "reindex.testing",
        "reindex.migrations",
        "reindex.healthcheck",
    ),
    # The Django glue on top of the API: the admin's pages, the health endpoint.
    ("reindex.admin", "reindex.views", "reindex.urls", "reindex.prometheus"),
    ("reindex.cli", "reindex.management", "reindex.__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, wherever in the file the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from reindex.server import indexes`` imports the module reindex.server.indexes
            # (a package's parents are loaded on the way, and say nothing about its place).
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            names = [*(submodules & known), *([node.module] if submodules - known else [])]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "reindex":
                continue
            while name not in known:
                name = name.rpartition(".")[0]
            found.add(name)
    return found


def layer_of(name: str) -> int:
    best, rank = -1, -1
    for number, rooms in enumerate(LAYERS):
        for room in rooms:
            if (name == room or name.startswith(room + ".")) and len(room) > best:
                best, rank = len(room), number
    assert rank >= 0, f"{name} sits in no room: add it to LAYERS (and to docs/development.md)"
    return rank


@functools.cache
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, set(known)) - {name} for name, path in known.items()}


def test_every_module_sits_in_a_room() -> None:
    for name in modules():
        layer_of(name)


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_only_go_down(name: str) -> None:
    mine = layer_of(name)
    upward = sorted(other for other in graph()[name] if layer_of(other) > mine)
    assert not upward, f"{name} imports a higher room: {upward}"


def test_no_import_circles() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for other in sorted(edges[name]):
            if state.get(other) == 1:
                circles.append([*path[path.index(other) :], other])
            elif other not in state:
                visit(other)
        path.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_click_only_under_the_cli() -> None:
    for name, path in modules().items():
        if name.startswith(("reindex.cli", "reindex.management")):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "click" for n in names), f"{name} imports click"


#: The modules a user may import besides ``reindex`` itself; everything else under reindex/ is internal.
PUBLIC_MODULES = {"capture", "errors", "models", "tasks", "testserver", "testing", "urls", "views"}
#: Names that look like ``reindex.<name>`` in the docs but are not Python: Celery task names, a PostgreSQL setting,
#: the admin's permissions.
NOT_PYTHON = {"drain", "load_range", "paused", "view_indexhealth", "queue_rebuild"} | {
    f"{verb}_queueentry" for verb in ("view", "change", "delete")
}


def test_the_docs_show_only_the_public_surface() -> None:
    """What the README and docs/ call ``reindex.<name>`` is exported by ``reindex`` or a public module."""
    import re

    import reindex

    pages = [PACKAGE.parent / "README.md", *sorted((PACKAGE.parent / "docs").glob("*.md"))]
    named = {
        (match.group(1), page.name)
        for page in pages
        for match in re.finditer(r"(?<![\w/.-])reindex\.([A-Za-z_]\w*)", page.read_text())
    }
    public = set(reindex.__all__) | PUBLIC_MODULES | NOT_PYTHON
    assert sorted(named_ for named_ in named if named_[0] not in public) == []
    assert set(reindex.__all__) <= set(dir(reindex))
    for module in PUBLIC_MODULES - {"testing"}:
        assert (PACKAGE / f"{module}.py").exists(), f"reindex.{module} is documented as public"
