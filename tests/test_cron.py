"""End to end, as cron runs it: a real ``python -m reindex`` process, no terminal."""

from __future__ import annotations

import json
import subprocess
import sys

from reindex import indexes
from tests.conftest import ROOT, subprocess_env


def test_a_cron_run_rebuilds_and_prints_one_summary_line(catalog, reindex_process, es):
    catalog(products=60)

    done = reindex_process("rebuild", "products")

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [line] = done.stdout.splitlines()
    assert line.startswith("products: 60 indexed, 0 failed of 60 rows")
    assert es.count(index="products")["count"] == 60


def test_a_failing_cron_run_exits_1_and_keeps_the_alias(catalog, reindex_process, es):
    from catalog.models import Product

    catalog(products=10)
    env = {"REINDEX_TEST_INDEXES": "tests.definitions.PoisonIndex"}
    assert reindex_process("rebuild", "poison", env=env).returncode == 0
    live = indexes.alias_targets(es, "poison")
    Product.objects.filter(pk=Product.objects.order_by("pk")[0].pk).update(name="POISON pill")

    done = reindex_process("rebuild", "poison", "--json", env=env)

    assert done.returncode == 1
    assert indexes.alias_targets(es, "poison") == live
    [report] = json.loads(done.stdout)
    assert report["swapped"] is False and report["failed"] == 1


def test_a_settings_module_that_does_not_exist_exits_2_with_one_line(reindex_process):
    done = reindex_process("--settings", "no.such.settings", "list")

    assert done.returncode == 2
    assert done.stderr.strip() == "reindex: error: cannot import settings module 'no.such.settings'"


def test_a_settings_module_that_raises_exits_2(reindex_process, tmp_path):
    (tmp_path / "raising_settings.py").write_text("raise RuntimeError('database password missing')\n")

    done = reindex_process("--pythonpath", str(tmp_path), "--settings", "raising_settings", "list")

    assert done.returncode == 2
    assert "RuntimeError: database password missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_settings_at_all_exits_2(transactional_db):
    env = subprocess_env()
    done = subprocess.run([sys.executable, "-m", "reindex", "list"], env=env, capture_output=True, text=True, cwd=ROOT)

    assert done.returncode == 2
    assert "pass --settings or set DJANGO_SETTINGS_MODULE" in done.stderr


def test_the_django_management_command_runs_the_same_commands(catalog, es_url, es, transactional_db):
    catalog(products=7)
    env = subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings", REINDEX_ES_URL=es_url)

    done = subprocess.run(
        [sys.executable, "-m", "django", "reindex", "rebuild", "products"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stderr
    assert es.count(index="products")["count"] == 7
