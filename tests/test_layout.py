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


#: Calls that import a module named by a string: ``importlib.import_module("reindex.cli")`` is an import too.
IMPORTING_CALLS = {"import_module", "import_string", "__import__"}


def absolute(node: ast.ImportFrom, path: Path) -> str:
    """The module ``from`` names, relative ones (``from ..cli import x``) resolved against ``path``'s package."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported(path: Path, known: set[str], source: str | None = None) -> set[str]:
    """The package's modules that ``path`` (or ``source`` as if it stood there) imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (module := absolute(node, path)):
            # ``from reindex.server import indexes`` imports the module reindex.server.indexes
            # (a package's parents are loaded on the way, and say nothing about its place).
            submodules = {f"{module}.{alias.name}" for alias in node.names}
            names = [*(submodules & known), *([module] if submodules - known else [])]
        elif isinstance(node, ast.Call) and _called(node) in IMPORTING_CALLS and node.args:
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            names = [first.value.rpartition(".")[0] if _called(node) == "import_string" else first.value]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "reindex":
                continue
            while name not in known:
                name = name.rpartition(".")[0]
            found.add(name)
    return found


def _called(node: ast.Call) -> str:
    function = node.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


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


def test_the_import_reader_sees_deferred_relative_and_named_imports() -> None:
    """What the tests above rely on: an import up a layer is found however it is written."""
    probe = PACKAGE / "database" / "probe.py"
    source = """
def later():
    from reindex.cli import reporting
    from ..operations import rebuilding
    from . import rows
    import importlib
    importlib.import_module("reindex.queue.draining")
    from django.utils.module_loading import import_string
    import_string("reindex.search.searching.search")
"""
    assert imported(probe, set(modules()), source) == {
        "reindex.cli.reporting",
        "reindex.operations.rebuilding",
        "reindex.database.rows",
        "reindex.queue.draining",
        "reindex.search.searching",
    }


def test_click_only_under_the_cli() -> None:
    """Only ``reindex.cli`` imports click (``manage.py reindex`` calls ``reindex.cli.run``, not click)."""
    for name, path in modules().items():
        if name == "reindex.cli" or name.startswith("reindex.cli."):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [absolute(node, path)]
            elif isinstance(node, ast.Call) and _called(node) in IMPORTING_CALLS and node.args:
                names = [getattr(node.args[0], "value", "")]
            else:
                continue
            assert not any(str(n).split(".")[0] == "click" for n in names), f"{name} imports click"


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


def test_every_import_the_docs_show_works() -> None:
    """The surface docs/api.md#what-is-public lists, imported and named as the docs show it."""
    import importlib.util

    from django.core.management import get_commands

    import reindex
    import reindex.capture
    import reindex.tasks
    import reindex.urls
    import reindex.views
    from reindex import IndexDefinition, Related  # noqa: F401
    from reindex.models import QueueEntry

    assert all(getattr(reindex, name, None) is not None for name in reindex.__all__)
    with reindex.capture.paused():
        pass
    tasks = reindex.tasks
    named = [tasks.drain_queue, tasks.follow_stream, tasks.rebuild_aliases, tasks.load_range_task]
    assert [task.name for task in named] == ["reindex.drain", "reindex.stream", "reindex.rebuild", "reindex.load_range"]
    assert (QueueEntry._meta.app_label, QueueEntry._meta.db_table) == ("reindex", "reindex_queue")
    assert get_commands()["reindex"] == "reindex"
    assert callable(reindex.views.health) and reindex.urls.app_name == "reindex"
    for module in ("reindex.__main__", "reindex.testserver", "reindex.testing"):  # python -m ..., the pytest plugin
        assert importlib.util.find_spec(module) is not None


def test_the_package_map_in_the_docs_names_every_folder_and_module() -> None:
    """docs/development.md#the-package names each folder, and each module by its file name, under its folder."""
    text = (PACKAGE.parent / "docs" / "development.md").read_text()
    section = text.split("\n## The package\n", 1)[1].split("\n## ", 1)[0]
    unnamed = []
    for name, path in modules().items():
        relative = path.relative_to(PACKAGE)
        folder = relative.parts[0] if len(relative.parts) > 1 else None
        if folder in ("migrations", "management"):
            wanted = f"`{folder}/`"  # Django's own shape: the folder says it
        elif path.name == "__init__.py":
            wanted = f"`{folder}/`" if folder else "`__init__.py`"
        else:
            wanted = f"`{path.name}`"
        paragraphs = section.split("\n- ")[1:]  # the map's items, the introduction left out
        paragraph = next((p for p in paragraphs if f"`{folder}/`" in p), "") if folder else section
        if wanted not in paragraph:
            unnamed.append(name)
    assert unnamed == []
