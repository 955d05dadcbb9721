"""The public Python API: what the CLI does, called from plain Python with the site's settings.

A site calls ``reindex.rebuild()`` from a management command, a Celery task or a deploy
script; it must read ``settings.REINDEX`` exactly as the command line does, and every
setting must reach the worker processes too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import reindex
from reindex.errors import STATUS_PRECEDENCE, worst_status
from reindex.server import indexes
from tests.conftest import ROOT, subprocess_env
from tests.faultproxy import FaultProxy
from tests.helpers import building_index, hold_lock_as, wait_for
from tests.httpproxy import HttpProxy

BATCHES = "tests.definitions.BatchesIndex"


@pytest.fixture
def batch_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Where BatchesIndex writes the size of every batch it reads: a function returning [(pid, size)]."""
    path = tmp_path / "batches.log"
    monkeypatch.setenv("REINDEX_TEST_BATCH_LOG", str(path))

    def read() -> list[tuple[int, int]]:
        if not path.exists():
            return []
        return [(int(pid), int(size)) for pid, size, _ in (line.split() for line in path.read_text().splitlines())]

    read.clear = lambda: path.unlink(missing_ok=True)  # type: ignore[attr-defined]
    return read


@pytest.fixture
def site(settings: Any, es_url: str) -> Any:
    """``settings.REINDEX`` of a site that points at the test server: ``site(BATCH_SIZE=7)``."""

    base = dict(settings.REINDEX)

    def configure(**values: Any) -> None:
        settings.REINDEX = {**base, "HOSTS": [es_url], "INDEXES": [BATCHES], **values}

    return configure


class TestSettingsReachTheCore:
    def test_batch_size_keep_and_min_ratio_come_from_the_settings(self, catalog, site, batch_log, es):
        from catalog.models import Product

        site(BATCH_SIZE=7, KEEP=1, MIN_RATIO=0.9)
        catalog(products=30)

        [first] = reindex.rebuild("batches")
        [second] = reindex.rebuild("batches")

        assert [size for _, size in batch_log()] == [7, 7, 7, 7, 2] * 2
        assert second.kept == [first.new_index]
        Product.objects.filter(pk__in=Product.objects.order_by("pk").values("pk")[:4]).delete()  # 26 of 30 left
        with pytest.raises(reindex.TooFewDocuments) as refused:
            reindex.rebuild("batches")
        assert refused.value.exit_status == 1
        assert indexes.alias_targets(es, "batches") == [second.new_index]

    def test_an_override_wins_over_the_settings(self, catalog, site, batch_log, es):
        site(BATCH_SIZE=7, KEEP=1)
        catalog(products=12)

        reindex.rebuild("batches")
        [result] = reindex.rebuild("batches", batch_size=5, keep=0)

        assert [size for _, size in batch_log()] == [7, 5, 5, 5, 2]  # the first run in 7s, the second in 5s
        assert (result.kept, len(result.dropped)) == ([], 1)

    def test_a_definitions_own_batch_size_beats_the_setting_and_loses_to_an_override(self, catalog, site, batch_log):
        from tests.definitions import SmallBatchesIndex

        site(BATCH_SIZE=7)
        catalog(products=12)

        reindex.rebuild(SmallBatchesIndex)
        assert [size for _, size in batch_log()] == [5, 5, 2]
        batch_log.clear()
        reindex.rebuild(SmallBatchesIndex, batch_size=4)
        assert [size for _, size in batch_log()] == [4, 4, 4]

    def test_an_unknown_setting_or_option_is_a_configuration_error(self, db, site):
        site(BATCHSIZE=7)
        with pytest.raises(reindex.ConfigurationError, match=r"settings.REINDEX has an unknown key 'BATCHSIZE'"):
            reindex.rebuild()
        site()
        with pytest.raises(reindex.ConfigurationError, match=r"unknown option 'bacth_size'"):
            reindex.rebuild(bacth_size=5)
        with pytest.raises(reindex.ConfigurationError, match=r"batch_size must be a whole number >= 1, not 0"):
            reindex.rebuild(batch_size=0)

    def test_settings_without_hosts_connect_to_the_default_address(self, db, settings):
        settings.REINDEX = {}

        config = reindex.load_config()

        assert config.hosts == ("http://localhost:9200",)
        assert reindex.load_config(es_url="http://search:9200").hosts == ("http://search:9200",)


PLAIN_PYTHON = """
import json, os, sys
import django

django.setup()
import reindex

try:
    results = reindex.rebuild(*sys.argv[1:], **json.loads(os.environ["OVERRIDES"]))
    print(json.dumps({"results": [r.as_dict() for r in results]}))
except reindex.ReindexError as exc:
    print(json.dumps({"error": str(exc), "type": type(exc).__name__, "exit_status": exc.exit_status}))
"""


def plain_python(es_url: str, *aliases: str, wait: bool = True, **overrides: Any) -> Any:
    """Run ``reindex.rebuild(*aliases, **overrides)`` in a script of its own, with ``tests.tuned_settings``."""
    env = subprocess_env(
        DJANGO_SETTINGS_MODULE="tests.tuned_settings", REINDEX_ES_URL=es_url, OVERRIDES=json.dumps(overrides)
    )
    command = [sys.executable, "-c", PLAIN_PYTHON, *aliases]
    if wait:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert done.stdout, done.stderr
        return json.loads(done.stdout.splitlines()[-1])
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


class TestAScriptWithASettingsModule:
    def test_the_settings_reach_the_worker_processes(self, catalog, es_url, es, batch_log, transactional_db):
        catalog(products=60)

        first = plain_python(es_url, "batches", workers=2)
        second = plain_python(es_url, "batches", workers=2)

        [report] = second["results"]
        assert (report["indexed"], report["kept"]) == (60, [first["results"][0]["new_index"]])
        batches = batch_log()
        assert len({pid for pid, _ in batches}) >= 4  # two workers in each of two runs
        assert max(size for _, size in batches) == 7 and sum(size for _, size in batches) == 120

    def test_the_retry_settings_reach_the_worker_processes(self, catalog, es_url, es, monkeypatch, transactional_db):

        catalog(products=300)
        monkeypatch.setenv("REINDEX_TEST_BATCH_DELAY", "0.1")  # a load of a few seconds
        with FaultProxy(es_url) as proxy:
            run = plain_python(proxy.url, "batches", wait=False, workers=2)
            wait_for(lambda: building_index(es, "batches"), "the load to start", run)
            proxy.fail("refuse", seconds=6)  # the defaults (8 retries from 0.5 s) would ride this out
            stdout, stderr = run.communicate(timeout=120)

        outcome = json.loads(stdout.splitlines()[-1])
        assert (outcome["type"], outcome["exit_status"]) == ("RunFailed", 1), stderr
        assert "ConnectionError" in outcome["error"]
        assert "retry 1 of 1" in stderr and "retry 2 of" not in stderr
        assert indexes.alias_targets(es, "batches") == []


class TestOneLineForAServerError:
    @pytest.mark.parametrize(
        "command",
        [
            ["status", "products"],
            ["diff", "products"],
            ["migrate", "products"],
            ["rollback", "products"],
            ["prune", "products", "--keep", "0"],
            ["rebuild", "--dry-run", "products"],
            ["verify", "products"],
        ],
    )
    def test_every_command_answers_a_server_error_with_one_line_and_exit_2(self, db, es_url, reindex, command):
        with HttpProxy(es_url) as proxy:
            proxy.answer_with(500, unless=lambda method, path: path == "/", reason="boom")
            run = reindex(*command, url=proxy.url)

        assert run.exit_code == 2, run.stderr
        assert run.stderr == "reindex: error: the search server answered 500: boom\n"

    @pytest.mark.parametrize("command", [["rebuild"], ["update", "--since", "1h"], ["sweep"]])
    def test_a_run_that_meets_a_server_error_fails_with_its_reason_and_exit_1(self, db, es_url, reindex, command):
        with HttpProxy(es_url) as proxy:
            proxy.answer_with(500, unless=lambda method, path: path == "/", reason="boom")
            run = reindex(command[0], "products", *command[1:], url=proxy.url)

        assert run.exit_code == 1, run.stderr
        assert run.stderr == "reindex: error: products: the search server answered 500: boom\n"

    @pytest.mark.parametrize("command", [["rebuild"], ["update", "--since", "1h"], ["sweep"]])
    def test_a_write_refused_midway_fails_the_run_with_the_servers_reason_and_leaves_the_alias(
        self, catalog, es, es_url, reindex, command
    ):
        """The server takes every request but the bulk ones, which it refuses, as a write-blocked cluster does."""
        from catalog.models import Product

        catalog(products=20)
        assert reindex("rebuild", "products").exit_code == 0
        [live] = indexes.alias_targets(es, "products")
        Product.objects.filter(pk__in=list(Product.objects.values_list("pk", flat=True)[:3])).delete()  # to sweep
        Product.objects.update(name="Renamed")  # to update
        reason = "index [products] blocked by: [FORBIDDEN/8/index write (api)]"

        with HttpProxy(es_url) as proxy:
            proxy.answer_with(500, unless=lambda method, path: not path.endswith("/_bulk"), reason=reason)
            run = reindex(command[0], "products", *command[1:], url=proxy.url)

        assert proxy.bulk_sizes(), "no document was sent: the test proved nothing"
        assert run.exit_code == 1, run.stderr
        [line] = [line for line in run.stderr.splitlines() if line.startswith("reindex: error:")]
        assert line.startswith(f"reindex: error: products: the search server answered 500: {reason}"), line
        assert indexes.alias_targets(es, "products") == [live]

    def test_the_api_raises_a_server_error(self, db, es_url, settings):
        settings.REINDEX = {**settings.REINDEX, "HOSTS": [es_url]}
        with HttpProxy(es_url) as proxy:
            proxy.answer_with(500, unless=lambda method, path: path == "/")
            with pytest.raises(reindex.ServerError) as caught:
                reindex.status("products", es_url=proxy.url)

        assert caught.value.exit_status == 2


class TestSeveralAliases:
    def test_a_failure_is_never_hidden_behind_a_skip(self, catalog, reindex, es, settings):

        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PoisonIndex"]}
        catalog(products=10)
        from catalog.models import Product

        Product.objects.filter(pk=Product.objects.order_by("pk")[0].pk).update(name="POISON pill")
        hold_lock_as(es, "categories", "web2", 4242, age=5)

        run = reindex("rebuild", "categories", "poison", "products", "--json")

        assert run.exit_code == 1, run.stderr
        reports = {r["alias"]: r for r in json.loads(run.stdout)}
        assert reports["categories"]["skipped"] == "locked"
        assert reports["poison"]["swapped"] is False and reports["poison"]["failed"] == 1
        assert reports["products"]["swapped"] is True  # the others still ran

    def test_the_api_raises_the_most_severe_error_with_every_result(self, catalog, es, es_url, settings):

        settings.REINDEX = {**settings.REINDEX, "HOSTS": [es_url]}
        catalog(products=5)
        hold_lock_as(es, "categories", "web2", 4242, age=5)

        with pytest.raises(reindex.Locked) as caught:
            reindex.rebuild("categories", "products")

        results = {r.alias: r for r in caught.value.results}
        assert results["categories"].skipped == "locked" and results["products"].swapped

    @pytest.mark.parametrize(
        "statuses, worst",
        [([0, 3], 3), ([3, 1], 1), ([1, 3, 0], 1), ([2, 1, 3], 2), ([0, 0], 0), ([], 0)],
    )
    def test_the_exit_status_precedence(self, statuses, worst):
        assert worst_status(statuses) == worst
        assert STATUS_PRECEDENCE == (2, 1, 3, 0)


class TestEveryCommandIsAFunction:
    def test_status_diff_plan_rollback_and_prune_from_python(self, catalog, es_url, settings):
        settings.REINDEX = {**settings.REINDEX, "HOSTS": [es_url]}
        catalog(products=8)
        [first] = reindex.rebuild("products", keep=1)
        [second] = reindex.rebuild("products", keep=1)

        [status] = reindex.status("products")
        [report] = reindex.diff("products")
        [plan] = reindex.plan("products")
        back = reindex.rollback("products")
        pruned = reindex.prune("products", keep=0)

        assert (status.live, status.count) == ([second.new_index], 8)
        assert report.built and report.differences == []
        assert (plan.rows, plan.keep) == (8, [])  # KEEP is 0 in the settings
        assert (back.to_index, back.from_indexes) == (first.new_index, [second.new_index])
        assert pruned.dropped == [second.new_index]
        assert [d.alias for d in reindex.definitions()] == ["categories", "products"]
        for result in (status, report, plan, back, pruned, first):
            assert json.loads(json.dumps(result.as_dict()))

    def test_the_core_never_imports_click(self):
        code = (
            "import sys, reindex, reindex.api, reindex.executors.parallel, reindex.operations.planning, "
            "reindex.operations.migration; "
            "print('click' in sys.modules)"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=os.environ)

        assert done.stdout.strip() == "False", done.stderr


class TestCursorRefusal:
    def test_a_values_queryset_is_read_on_the_cursor_and_a_prefetch_is_not(self, db):
        from catalog.models import Product

        import reindex

        assert reindex.cursor_refusal(Product.objects.values("pk", "name")) is None
        assert reindex.cursor_refusal(Product.objects.prefetch_related("sellers").values("pk")) == "prefetch_related()"
        assert reindex.cursor_refusal(Product.objects.all()).startswith("not a values() queryset")
