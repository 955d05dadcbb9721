"""End to end, as cron runs it: a real ``python -m reindex`` process, no terminal."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reindex.server import indexes
from tests.conftest import ROOT, in_shell, manage, project_env, start_project, subprocess_env


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
    [line] = done.stderr.splitlines()
    assert line.startswith("reindex: error: cannot import settings module 'no.such.settings' from ")
    assert line.endswith("run from the project's root (where manage.py is), or pass --pythonpath DIR")


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


class TestTheShippedCrontab:
    """``crontab.example``'s line, run as cron runs it, in a project fresh from ``startproject``."""

    def cron_line(self, project: Path, log_dir: Path, es_url: str) -> tuple[dict[str, str], str]:
        """The crontab's variables and its command, pointed at ``project``, ``log_dir`` and ``es_url``."""
        text = (ROOT / "crontab.example").read_text()
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        variables = dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))
        [entry] = [line for line in lines if not re.match(r"^[A-Z_]+=", line) and " rebuild " in line]
        command = entry.split(None, 5)[5]  # after minute, hour, day, month, weekday
        venv = Path(sys.executable).parent.parent
        command = command.replace("/srv/mysite", str(project)).replace(".venv/bin/reindex", str(venv / "bin/reindex"))
        command = command.replace("/var/log/reindex", str(log_dir))
        # cron's own environment: nothing of the caller's, but these and the crontab's variables
        env = {"HOME": str(project.parent), "LOGNAME": "cron", "USER": "cron", **variables, "REINDEX_ES_URL": es_url}
        return env, command

    def run(self, env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["env", "-i", *[f"{k}={v}" for k, v in env.items()], env["SHELL"], "-c", command],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def test_a_nightly_run_logs_with_time_stamps_and_mails_nothing(self, fresh_project, es_url, es, tmp_path):
        log_dir = tmp_path / "log" / "reindex"  # does not exist yet
        env, command = self.cron_line(fresh_project, log_dir, es_url)

        done = self.run(env, command)

        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # cron mails nothing
        start, end = (log_dir / "rebuild.log").read_text().splitlines()
        stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d \S+ reindex\[\d+\]: "
        assert re.match(stamp + r"shopproducts: rebuild started: 12 rows into shopproducts-\d+$", start)
        assert re.match(stamp + "shopproducts: 12 indexed", end)
        assert es.count(index="shopproducts")["count"] == 12

    def test_a_host_that_loses_the_lock_logs_the_skip_and_mails_nothing(self, fresh_project, es_url, es, tmp_path):
        from tests.helpers import hold_lock_as

        log_dir = tmp_path / "log"
        env, command = self.cron_line(fresh_project, log_dir, es_url)
        command = command.replace("--lock-wait 60", "--lock-wait 1")  # the other host's run is not ending soon
        hold_lock_as(es, "shopproducts", "web2", 4242, age=5)

        done = self.run(env, command)

        assert (done.returncode, done.stdout, done.stderr) == (3, "", "")
        assert (
            "]: shopproducts: skipped after waiting 1s for the lock: locked by web2:4242"
            in (log_dir / "rebuild.log").read_text()
        )

    def test_a_failure_is_mailed_and_logged(self, fresh_project, tmp_path):
        log_dir = tmp_path / "log"
        env, command = self.cron_line(fresh_project, log_dir, "http://127.0.0.1:1")

        done = self.run(env, command)

        assert done.returncode == 2 and done.stdout == ""
        [mailed] = done.stderr.splitlines()
        assert mailed.startswith("reindex: error: cannot reach the search server at http://127.0.0.1:1")
        [logged] = (log_dir / "rebuild.log").read_text().splitlines()
        assert logged.endswith("]: " + mailed.removeprefix("reindex: "))  # once "reindex", from the log's prefix


def test_the_documented_command_finds_the_settings_from_the_project_root(fresh_project, es_url):
    reindex = Path(sys.executable).parent / "reindex"  # the console script, not python -m
    env = {"PATH": "/usr/bin:/bin", "HOME": str(fresh_project), "REINDEX_ES_URL": es_url}

    done = subprocess.run(
        [str(reindex), "--settings", "mysite.settings", "list"],
        env=env,
        cwd=fresh_project,
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("shopproducts\tshop.Product\tshop.indexes.ProductIndex")


def test_a_log_file_that_cannot_be_written_is_one_line_and_exit_2(fresh_project, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    reindex = Path(sys.executable).parent / "reindex"

    done = subprocess.run(
        [str(reindex), "--log-file", str(blocker / "x.log"), "--settings", "mysite.settings", "list"],
        cwd=fresh_project,
        capture_output=True,
        text=True,
    )

    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"reindex: error: cannot write --log-file {blocker / 'x.log'}: ")


TRACKED_MODELS = """
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    updated_at = models.DateTimeField(auto_now=True)
"""

TRACKED_INDEXES = """
from reindex import IndexDefinition

from shop.models import Product


class ProductIndex(IndexDefinition):
    alias = "shopproducts"
    updated_field = "updated_at"
    watch = {}  # queue its own rows
    mappings = {"properties": {"name": {"type": "text"}}}

    def get_queryset(self):
        return Product.objects.values("pk", "name", "updated_at")

    def prepare(self, row):
        return {"name": row["name"]}
"""

#: A crontab entry: five time fields (or @daily and friends), then a command that runs reindex; indented too
#: (a code block in a list item).
CRONTAB_ENTRY = re.compile(r"^\s*(?:#\s*)?((?:[-*/,\d]+\s+){5}|@\w+\s+)(.*\breindex\b.*)$")


def documented_crontab_lines() -> list[tuple[str, str]]:
    """Every crontab line of the README, ``crontab.example`` and docs/*.md: (file, command)."""
    files = [ROOT / "README.md", ROOT / "crontab.example", *sorted((ROOT / "docs").glob("*.md"))]
    found = []
    for path in files:
        for line in path.read_text().splitlines():
            match = CRONTAB_ENTRY.match(line)
            if match and (path.name, match.group(2)) not in found:
                found.append((path.name, match.group(2)))
    return found


@pytest.fixture(scope="module")
def tracked_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh ``startproject`` site with ``reindex`` installed and migrated, a tracked definition, 12 products."""
    files = {"models.py": TRACKED_MODELS, "indexes.py": TRACKED_INDEXES}
    root = start_project(tmp_path_factory.mktemp("tracked"), files, "\nINSTALLED_APPS.append('reindex')\n")
    manage(root, "migrate", "reindex")
    in_shell(root, "from shop.models import Product\nfor n in range(12): Product(name=f'p{n}').save()")
    return root


def test_the_docs_show_each_kind_of_crontab_line_and_one_nightly_rebuild():
    commands = [command for _, command in documented_crontab_lines()]

    for command in ("rebuild", "update", "sweep", "drain"):
        assert any(f" {command}" in line for line in commands)
    [nightly] = {line for line in commands if " rebuild " in line}  # the same line everywhere
    assert "--lock-wait 60" in nightly


@pytest.mark.parametrize(("where", "command"), documented_crontab_lines())
def test_a_documented_crontab_line_runs_under_cron_s_sh(where, command, tracked_project, es_url, es, tmp_path):
    venv = Path(sys.executable).parent.parent
    log_dir = tmp_path / "log" / "reindex"
    for path, replacement in ((".venv/bin/reindex", f"{venv}/bin/reindex"), ("/var/log/reindex", str(log_dir))):
        command = re.sub(r"(/srv/mysite/)?" + re.escape(path), replacement, command)
    command = command.replace("/srv/mysite", str(tracked_project))
    env = ["PATH=/usr/bin:/bin", "SHELL=/bin/sh", f"REINDEX_ES_URL={es_url}", f"HOME={tmp_path}"]
    if " rebuild " not in f"{command} ":
        api_env = {**project_env(tracked_project), "REINDEX_ES_URL": es_url}
        subprocess.run(
            [f"{venv}/bin/reindex", "--settings", "mysite.settings", "rebuild"],
            env=api_env,
            cwd=tracked_project,
            check=True,
            capture_output=True,
        )

    done = subprocess.run(["env", "-i", *env, "/bin/sh", "-c", command], capture_output=True, text=True, timeout=120)

    assert (done.returncode, done.stderr) == (0, ""), f"{where}: {command}"
    assert es.count(index="shopproducts")["count"] == 12
