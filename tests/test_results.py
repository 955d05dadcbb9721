"""What ``--json`` prints: every command's keys are the ones docs/commands.md lists, in its order,
and every result becomes JSON the one way ``reindex.results`` gives.

The docs' tables under "``--json`` output" are parsed; each command runs for real (SQLite
or PostgreSQL through Django, osmem-server over HTTP) and the keys of what it printed are
compared with its table, nested objects included.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from reindex.results import JsonResult, json_as, to_json
from tests.helpers import hold_lock_as, live_index

ROOT = Path(__file__).resolve().parent.parent
COMMANDS_DOC = ROOT / "docs" / "commands.md"


def documented_keys() -> dict[str, list[str]]:
    """``{table title: [keys in order]}`` from the section "``--json`` output" of docs/commands.md."""
    text = COMMANDS_DOC.read_text()
    section = text.split("\n## `--json` output\n", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, list[str]] = {}
    for block in section.split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        rows = [line for line in body.splitlines() if line.startswith("| `")]
        tables[title.strip()] = [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]  # type: ignore[union-attr]
    return tables


def run_json(reindex: Any, *args: str, status: int | None = 0) -> Any:
    """What ``reindex ARGS --json`` printed, once it exited with ``status`` (None: any)."""
    run = reindex(*args, "--json")
    assert status is None or run.exit_code == status, run.stderr
    return json.loads(run.stdout)


@pytest.fixture
def printed(indexed_catalog: str, reindex: Any, es: Any, settings: Any) -> dict[str, Any]:
    """One object of every kind that ``--json`` prints, from a day in the catalog's life."""
    from catalog.models import Product

    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PoisonIndex"]}
    out: dict[str, Any] = {"list": run_json(reindex, "list")[0]}

    product = Product.objects.order_by("pk")[3]
    product.name = f"POISON {product.name}"
    product.save()
    [out["rebuild"]] = run_json(reindex, "rebuild", "products", "--keep", "1")
    out["rebuild: caught_up"] = out["rebuild"]["caught_up"]
    [poisoned] = run_json(reindex, "rebuild", "poison", "--max-errors", "1")
    out["failures"] = poisoned["failures"][0]

    [out["migrate"]] = run_json(reindex, "migrate", "products", "--dry-run")
    es.indices.put_mapping(index=live_index(es, "products"), properties={"colour": {"type": "keyword"}})
    [out["rebuild --dry-run plan"]] = run_json(reindex, "rebuild", "products", "--dry-run")
    [out["diff"]] = run_json(reindex, "diff", "products", status=1)
    out["diff: differences"] = out["diff"]["differences"][0]

    product.name = "Lamp"
    product.save()
    [out["update"]] = run_json(reindex, "update", "products")
    [out["drain"]] = run_json(reindex, "drain", "products")
    [out["queue status"]] = run_json(reindex, "queue", "status", "products")
    [out["sweep"]] = run_json(reindex, "sweep", "products")
    [out["verify"]] = run_json(reindex, "verify", "products", status=None)

    hold_lock_as(es, "products", "web2", 4242, age=5, boot_id="b", pid_namespace="n", process_start=7)
    [out["status"]] = run_json(reindex, "status", "products")
    out["status: indexes"] = out["status"]["indexes"][0]
    out["status: lock"] = out["status"]["lock"]
    out["status: server"] = out["status"]["server"]
    out["status: watermark"] = out["status"]["watermark"]
    out["unlock"] = run_json(reindex, "unlock", "products", "--force")

    out["rollback"] = run_json(reindex, "rollback", "products")
    out["prune"] = run_json(reindex, "prune", "products", "--keep", "0")
    return out


def test_every_json_key_is_documented_in_order(printed, postgres_triggers, stream_results):
    """Each command's --json prints the keys of its table in docs/commands.md, in the same order."""
    documented = documented_keys()
    printed = {**printed, **postgres_triggers, **stream_results}

    assert set(printed) == set(documented)
    for title, keys in documented.items():
        assert list(printed[title]) == keys, f"--json of {title!r} against docs/commands.md"
    for title, data in printed.items():
        assert_values_as_documented(title, data)


def assert_values_as_documented(where: str, data: Any) -> None:
    """The section's rules for values: times ISO 8601 strings, durations seconds rounded to the millisecond."""
    if isinstance(data, list):
        for item in data:
            assert_values_as_documented(where, item)
        return
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if key == "seconds" or key.endswith("_seconds"):
            assert value is None or (isinstance(value, int | float) and round(value, 3) == value), (where, key, value)
        if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value):
            datetime.datetime.fromisoformat(value)  # raises on a time that is not ISO 8601
        assert_values_as_documented(f"{where}: {key}", value)


@pytest.fixture
def postgres_triggers(db: Any, reindex: Any) -> dict[str, Any]:
    """``triggers status --json`` on PostgreSQL; elsewhere (triggers need PL/pgSQL) the result it prints."""
    from django.db import connection

    from reindex.queue.triggers import TriggerStatus

    if connection.vendor == "postgresql":
        [status] = run_json(reindex, "triggers", "status", "products", status=1)
    else:
        status = TriggerStatus(alias="products").as_dict()
    return {"triggers": status}


@pytest.fixture
def stream_results() -> dict[str, Any]:
    """What ``stream --json`` and ``slot status --json`` print for an alias (they run on a logical-decoding
    cluster only: tests/test_stream.py runs the commands there)."""
    from reindex.stream.following import StreamResult
    from reindex.stream.slots import SlotStatus

    stream = StreamResult(alias="products", definition="catalog.indexes.ProductIndex", slot="reindex_products")
    return {"stream": stream.as_dict(), "slot status": SlotStatus("products", "reindex_products").as_dict()}


def test_no_result_writes_its_own_as_dict():
    """Results become JSON one way: no class in the package lists its fields again in an ``as_dict()``."""
    written = []
    for path in sorted((ROOT / "reindex").rglob("*.py")):
        classes = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)]
        for node in classes:
            methods = [item.name for item in node.body if isinstance(item, ast.FunctionDef)]
            if node.name != "JsonResult" and "as_dict" in methods:
                written.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert written == []


@dataclasses.dataclass
class Nested(JsonResult):
    when: datetime.datetime
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(kw_only=True)
class Counts:
    read: int = 0
    skipped: int = 0


@dataclasses.dataclass(kw_only=True)
class Report(Counts, JsonResult):
    json_placed: ClassVar = {"": ("first",), "alias": ("read", ("twice", lambda report: report.read * 2))}

    alias: str
    index: str | None = dataclasses.field(default=None, metadata=json_as("into"))
    secret: str = dataclasses.field(default="s3cret", metadata=json_as(None))
    seconds: float = dataclasses.field(default=0.0, metadata=json_as(rounded=3))
    lag: float | None = dataclasses.field(default=None, metadata=json_as(rounded=1))
    nested: Nested | None = None
    parts: list[Nested] = dataclasses.field(default_factory=list)
    flat: Nested | None = dataclasses.field(default=None, metadata=json_as(flatten=True))
    by_name: dict[str, Nested] = dataclasses.field(default_factory=dict)

    @property
    def first(self) -> bool:
        return True


def test_a_result_becomes_json_from_its_fields_with_its_declared_exceptions():
    when = datetime.datetime(2026, 11, 27, 9, 0, 2, 117000, tzinfo=datetime.timezone.utc)
    report = Report(
        alias="products",
        index="products-1",
        read=3,
        skipped=1,
        seconds=1.23456,
        nested=Nested(when),
        parts=[Nested(when, ("a",))],
        flat=Nested(when, ("b",)),
        by_name={"x": Nested(when)},
    )

    assert json.dumps(report.as_dict()) == json.dumps(
        {
            "first": True,  # placed first
            "alias": "products",
            "read": 3,  # an inherited field, placed; the other (skipped) is left out
            "twice": 6,  # computed where it is placed
            "into": "products-1",  # renamed; secret left out
            "seconds": 1.235,
            "lag": None,
            "nested": {"when": "2026-11-27T09:00:02.117000+00:00", "tags": []},
            "parts": [{"when": "2026-11-27T09:00:02.117000+00:00", "tags": ["a"]}],
            "when": "2026-11-27T09:00:02.117000+00:00",  # flattened into its place
            "tags": ["b"],
            "by_name": {"x": {"when": "2026-11-27T09:00:02.117000+00:00", "tags": []}},
        }
    )


def test_anything_else_is_json_as_it_is():
    assert to_json({"a": [1, 2.5, None, "x"], "b": datetime.date(2026, 11, 27)}) == {
        "a": [1, 2.5, None, "x"],
        "b": "2026-11-27",
    }
