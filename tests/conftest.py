"""Fixtures: a real search server over HTTP, the catalog's rows, and ways to run the CLI.

By default each test gets its own clone of an in-memory osmem-server. Set
``REINDEX_TEST_ES_URL`` to run the same tests against a real (throwaway!) cluster:
the tests delete the indexes and aliases they use before each test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reindex.cli import cli
from reindex.config import Config
from reindex.server.connection import Connection
from scripts.logical_cluster import LogicalCluster

ROOT = Path(__file__).resolve().parent.parent

#: The modules whose tests go through what differs between databases: reading rows and
#: converting values, the changed-rows queries and the database's clock, the change queue
#: (SKIP LOCKED), triggers, concurrent writers. ``make test`` runs only these on PostgreSQL
#: and MariaDB (``-m database``); ``make test-all`` runs every test on every database.
DATABASE_SPECIFIC = {
    "test_rows", "test_conversions", "test_queries", "test_update", "test_catch_up",
    "test_concurrent_writes", "test_queue", "test_queue_faults", "test_queue_batches", "test_triggers",
    "test_rebuild", "test_stream_setup",
}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of ``DATABASE_SPECIFIC`` modules ``database``."""
    for item in items:
        if item.module is not None and item.module.__name__.rpartition(".")[2] in DATABASE_SPECIFIC:
            item.add_marker(pytest.mark.database)


NEEDS_LOGICAL = "needs the logical-decoding cluster: make test-stream"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip the tests marked ``stream`` off their cluster; fail them there under ``REINDEX_REQUIRE_LOGICAL=1`` (CI)."""
    if item.get_closest_marker("stream") and os.environ.get("REINDEX_TEST_DB") != "logical":
        if os.environ.get("REINDEX_REQUIRE_LOGICAL"):
            pytest.fail(f"{NEEDS_LOGICAL} (REINDEX_REQUIRE_LOGICAL is set)", pytrace=False)
        pytest.skip(NEEDS_LOGICAL)


@pytest.fixture
def logical_cluster() -> LogicalCluster:
    """The private cluster with ``wal_level = logical`` the run is on: ``.port``, ``.data``, ``.restart()``."""
    return LogicalCluster.from_env()


TEST_ALIASES = ("products", "categories", "poison", "tiny", "property", "batches", "shopproducts", "paced", "skus")


@pytest.fixture
def es_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of an empty search server for this test."""
    real = os.environ.get("REINDEX_TEST_ES_URL")
    if real:
        client = Connection(Config(hosts=(real,))).client()
        for alias in TEST_ALIASES:
            client.options(ignore_status=404).indices.delete(index=f"{alias}*", expand_wildcards="all")
            client.options(ignore_status=404).indices.delete_alias(index="*", name=alias)
        client.options(ignore_status=404).indices.delete(index=Config.lock_index)
        yield real
        return
    clone = request.getfixturevalue("osmem_clone")
    yield clone.url


@pytest.fixture
def es(es_url: str) -> Any:
    """A client for the test's server, built by the tool's own connection code."""
    return Connection(Config(hosts=(es_url,))).client()


@pytest.fixture
def catalog(db: Any) -> Any:
    """A function that fills the catalog tables: ``catalog(products=50)``."""
    from catalog.seed import generate

    def fill(products: int = 50, categories: int = 5, sellers: int = 8, seed: int = 42) -> Any:
        return generate(products=products, categories=categories, sellers=sellers, seed=seed, flush=True)

    return fill


@pytest.fixture
def indexed_catalog(catalog: Any, es_url: str) -> str:
    """50 products indexed by last night's rebuild, the change queue empty; the server's address."""
    import reindex as api
    from reindex.models import QueueEntry

    catalog(products=50)
    api.rebuild("products", es_url=es_url)
    QueueEntry.objects.all().delete()
    return es_url


@pytest.fixture
def concurrent_db(transactional_db: Any) -> None:
    """A database several processes write at once: SQLite in write-ahead-log mode, where readers never block."""
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def reindex(es_url: str) -> Any:
    """Run the CLI in-process: ``reindex("rebuild", "products")`` -> Run."""
    runner = CliRunner()

    def invoke(*args: str, url: str | None = es_url) -> Run:
        prefix = ["--es-url", url] if url else []
        result = runner.invoke(cli, [*prefix, *args], catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return invoke


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for ``python -m reindex`` as cron would start it, on the test database."""
    from django.db import connection

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "example")])
    env["REINDEX_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
    env.update(extra)
    return env


@pytest.fixture
def reindex_process(es_url: str, transactional_db: Any) -> Any:
    """Run ``python -m reindex --settings tests.settings ...`` in a subprocess."""

    def start(*args: str, wait: bool = True, env: dict[str, str] | None = None, **popen: Any) -> Any:
        command = [sys.executable, "-m", "reindex", "--settings", "tests.settings", *args]
        full_env = subprocess_env(REINDEX_ES_URL=es_url, **(env or {}))
        if wait:
            return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        return subprocess.Popen(
            command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, **popen
        )

    return start


SHOP_MODELS = """
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
"""

SHOP_INDEXES = """
from reindex import IndexDefinition

from shop.models import Product


class ProductIndex(IndexDefinition):
    alias = "shopproducts"
    mappings = {"properties": {"name": {"type": "text"}}}

    def get_queryset(self):
        return Product.objects.values("pk", "name")

    def prepare(self, row):
        return {"name": row["name"]}
"""


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project as ``django-admin startproject mysite`` makes it, with an app ``shop`` holding 12 products."""
    root = start_project(tmp_path_factory.mktemp("project"), {"models.py": SHOP_MODELS, "indexes.py": SHOP_INDEXES})
    in_shell(
        root, "from shop.models import Product; Product.objects.bulk_create(Product(name=f'p{n}') for n in range(12))"
    )
    return root


def start_project(where: Path, shop_files: dict[str, str], settings_tail: str = "") -> Path:
    """``django-admin startproject mysite`` in ``where``, an app ``shop`` of ``shop_files``, migrated; its root."""
    root = where / "mysite"
    root.mkdir()
    run = [sys.executable, "-m", "django", "startproject", "mysite", str(root)]
    subprocess.run(run, check=True, env=project_env(root), capture_output=True)
    for name, text in {"__init__.py": "", **shop_files}.items():
        (root / "shop" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "shop" / name).write_text(text)
    settings = root / "mysite" / "settings.py"
    text = settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'shop',")
    settings.write_text(text + settings_tail)
    manage(root, "makemigrations", "shop")
    manage(root, "migrate")
    return root


def project_env(root: Path, **extra: str) -> dict[str, str]:
    """A new user's shell in ``root``'s project: the PATH and HOME only, and ``extra``."""
    return {"PATH": os.environ["PATH"], "HOME": str(root.parent), **extra}


def manage(root: Path, *args: str, **env: str) -> str:
    """``python manage.py ARGS`` in the project at ``root``; its stdout (AssertionError with its stderr on failure)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], env=project_env(root, **env), cwd=root, capture_output=True, text=True
    )
    if done.returncode:
        raise AssertionError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def in_shell(root: Path, code: str, **env: str) -> str:
    """Run ``code`` in ``python manage.py shell`` of the project at ``root``; what it printed."""
    return manage(root, "shell", "-v", "0", "-c", code, **env)
