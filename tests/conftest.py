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

ROOT = Path(__file__).resolve().parent.parent
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
    tmp_path = tmp_path_factory.mktemp("project")
    root = tmp_path / "mysite"
    root.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    run = [sys.executable, "-m", "django", "startproject", "mysite", str(root)]
    subprocess.run(run, check=True, env=env, capture_output=True)
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "models.py").write_text(SHOP_MODELS)
    (root / "shop" / "indexes.py").write_text(SHOP_INDEXES)
    settings = root / "mysite" / "settings.py"
    settings.write_text(settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'shop',"))
    for command in (["makemigrations", "shop"], ["migrate"]):
        subprocess.run([sys.executable, "manage.py", *command], check=True, env=env, cwd=root, capture_output=True)
    fill = "from shop.models import Product; Product.objects.bulk_create(Product(name=f'p{n}') for n in range(12))"
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", fill], check=True, env=env, cwd=root, capture_output=True
    )
    return root
