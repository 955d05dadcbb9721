"""Scale-out: a rebuild loaded range by range by real Celery workers, and ``--resume`` for every executor.

The Celery tests run on the local Redis and RabbitMQ, each with a queue of its own
served by one prefork worker with two processes started for the test; the coordinator
runs as ``python -m reindex`` does from cron.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reindex.config import Config
from reindex.executors.local import BEAT_INTERVAL
from reindex.executors.ranges import DONE, BuildState
from reindex.server import indexes
from reindex.server.locking import read_holder
from tests.conftest import ROOT, subprocess_env
from tests.helpers import alive, lock_free_or_stale, sources, wait_for

pytest.importorskip("celery")

BROKERS = {"redis": "redis://127.0.0.1:6379/0", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//"}
PORTS = {"redis": 6379, "rabbitmq": 5672}
BATCHES = "tests.definitions.BatchesIndex"
ROWS = 300


def left_in_lock_index(es: Any) -> list[str]:
    """The documents a build left beside the locks (the watermarks, which stay, aside)."""
    hits = es.search(index=Config.lock_index, size=100)["hits"]["hits"]
    return [hit["_id"] for hit in hits if not hit["_id"].endswith(":watermark")]


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    """The URL of a real broker: the local Redis, then the local RabbitMQ."""
    if not reachable(PORTS[request.param]):
        if os.environ.get("REINDEX_REQUIRE_SERVICES"):
            raise RuntimeError(f"{request.param} is not reachable on 127.0.0.1:{PORTS[request.param]}")
        pytest.skip(f"no {request.param} on 127.0.0.1:{PORTS[request.param]}")
    return BROKERS[request.param]


@dataclass
class Site:
    """The environment the coordinator and the workers share, and the workers started."""

    broker: str
    env: dict[str, str]
    log: Path
    queue: str = field(default_factory=lambda: f"reindex-test-{uuid.uuid4().hex[:12]}")
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_workers(self, processes: int = 2) -> subprocess.Popen[bytes]:
        """A Celery worker (prefork, ``processes`` child processes) serving this test's queue."""
        command = [sys.executable, "-m", "celery", "-A", "demo.celery", "worker", "-Q", self.queue]
        command += ["-c", str(processes), "-n", f"{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle"]
        command += ["--loglevel", "WARNING"]
        worker = subprocess.Popen(
            command, env=self.env, cwd=ROOT / "example", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        """A warm shutdown: each process finishes its range; ranges not started go back to the queue."""
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.workers.clear()

    def purge(self) -> None:
        """Drop what is left in this test's queue (and only there)."""
        from kombu import Connection

        with Connection(self.broker) as connection, suppress(connection.channel_errors):
            connection.default_channel.queue_purge(self.queue)  # RabbitMQ: a queue no task reached is not there

    def rebuild(self, *args: str, wait: bool = True) -> Any:
        """``python -m reindex rebuild ARGS --executor celery --queue <this test's>``."""
        command = [sys.executable, "-m", "reindex", "--settings", "tests.settings", "rebuild", *args]
        command += ["--executor", "celery", "--queue", self.queue]
        if wait:
            return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        return subprocess.Popen(command, env=self.env, text=True, cwd=ROOT, **pipes)

    def batches(self) -> list[tuple[int, int, int]]:
        """(pid, rows, first pk) of every batch BatchesIndex read, in any process."""
        if not self.log.exists():
            return []
        return [tuple(map(int, line.split())) for line in self.log.read_text().splitlines()]  # type: ignore[misc]


@pytest.fixture
def site(broker: str, es_url: str, transactional_db: Any, tmp_path: Path) -> Iterator[Site]:
    env = subprocess_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        REINDEX_ES_URL=es_url,
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND="cache+memory://",  # the executor needs none: results are in the range documents
        REINDEX_TEST_INDEXES=BATCHES,
        REINDEX_TEST_BATCH_LOG=str(tmp_path / "batches.log"),
        REINDEX_TEST_LOCK_TTL="2",
    )
    running = Site(broker, env, tmp_path / "batches.log")
    try:
        yield running
    finally:
        running.stop_workers()
        running.purge()


def report_of(done: Any) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    return report


def build_of(es: Any, alias: str) -> BuildState | None:
    """The build of ``alias`` under way (its recorded ranges), if one is."""
    for info in indexes.owned_indexes(es, alias, with_counts=False):
        found = info.building and BuildState.find(es, Config.lock_index, info.name)
        if found:
            return found[0]
    return None


def ranges_done(es: Any, alias: str) -> list[Any]:
    build = build_of(es, alias)
    return [] if build is None else [r for r in build.read(es) if r.state == DONE]


def test_a_rebuild_through_celery_equals_a_local_rebuild(catalog, site, reindex, es):
    catalog(products=230)
    local = reindex("rebuild", "products", "--batch-size", "20", "--json")
    [local_report] = json.loads(local.stdout)
    alone = sources(es, "products")
    site.start_workers()

    report = report_of(site.rebuild("products", "--batch-size", "20", "--workers", "2", "--json"))

    counts = ("rows_read", "indexed", "failed", "duplicates", "swapped")
    assert [report[k] for k in counts] == [local_report[k] for k in counts] == [230, 230, 0, 0, True]
    assert indexes.alias_targets(es, "products") == [report["new_index"]]
    assert sources(es, "products") == alone
    assert build_of(es, "products") is None and not left_in_lock_index(es)


def test_a_worker_killed_mid_range_has_its_range_delivered_again_and_the_count_is_exact(catalog, site, es):
    catalog(products=ROWS)
    site.env["REINDEX_TEST_BATCH_DELAY"] = "0.05"
    site.start_workers()
    run = site.rebuild("batches", "--batch-size", "10", "--workers", "2", "--json", wait=False)
    victim = wait_for(lambda: next(iter(site.batches()), (None,))[0], "a worker to read a batch", run)
    os.kill(victim, signal.SIGKILL)  # mid-range: it sleeps 0.05 s in every batch
    stdout, stderr = run.communicate(timeout=120)

    assert run.returncode == 0, stderr
    [report] = json.loads(stdout)
    assert (report["rows_read"], report["indexed"], report["failed"], report["duplicates"]) == (ROWS, ROWS, 0, 0)
    assert report["failures"] == []
    assert not alive(victim)
    assert sum(rows for _, rows, _ in site.batches()) > ROWS  # the victim's range was read again, elsewhere
    assert es.count(index="batches")["count"] == ROWS


def test_a_coordinator_killed_at_half_is_resumed_without_reading_its_done_ranges_again(catalog, site, es):
    from catalog.models import Product

    catalog(products=ROWS)
    site.env["REINDEX_TEST_BATCH_DELAY"] = "0.05"
    site.start_workers()
    run = site.rebuild("batches", "--batch-size", "10", "--workers", "4", wait=False)
    wait_for(lambda: len(ranges_done(es, "batches")) >= 8, "half of the 16 ranges to be done", run, timeout=60)
    run.kill()
    run.wait()
    site.stop_workers()  # the ranges they had started are finished; the others wait in the queue ...
    site.purge()  # ... and are dropped, so that the resumed run has ranges left to send
    build = build_of(es, "batches")
    assert build is not None
    done = {r.number: (r.after, r.upto) for r in ranges_done(es, "batches")}
    assert 8 <= len(done) < build.ranges == 16
    read_before = len(site.batches())
    assert read_holder(es, "batches").pid == run.pid  # the killed coordinator's lock, ...
    site.env["REINDEX_TEST_LOCK_TTL"] = "300"  # ... taken over at once on its host: its process is gone
    site.start_workers()

    report = report_of(site.rebuild("batches", "--batch-size", "10", "--resume", "--json"))

    def in_done_range(pk: int) -> bool:
        return any((a is None or pk > a) and (u is None or pk <= u) for a, u in done.values())

    read_again = [pk for _, _, pk in site.batches()[read_before:] if in_done_range(pk)]
    assert read_again == []
    assert (report["resumed"], report["new_index"], report["swapped"]) == (True, build.index, True)
    assert (report["rows_read"], report["indexed"], report["failed"]) == (ROWS, ROWS, 0)
    assert indexes.alias_targets(es, "batches") == [build.index]
    assert es.count(index="batches")["count"] == Product.objects.count() == ROWS
    assert sorted(dict(es.indices.get(index="batches-*"))) == [build.index]
    assert read_holder(es, "batches") is None


def test_an_interrupted_coordinator_deletes_the_build_and_its_tasks_stop_and_leave_no_index(catalog, site, es):
    catalog(products=ROWS)
    site.env["REINDEX_TEST_BATCH_DELAY"] = "0.05"
    site.start_workers()
    run = site.rebuild("batches", "--batch-size", "10", "--workers", "2", wait=False)
    wait_for(lambda: ranges_done(es, "batches"), "a range to be done", run, timeout=60)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    # A task loading a range learns that its build is gone at its next heartbeat: it may
    # read on for up to BEAT_INTERVAL (a few batches of these small ones), then stops.
    time.sleep(BEAT_INTERVAL + 0.5)
    read_then = len(site.batches())
    time.sleep(1)  # the tasks still queued meet a build that is gone, and read nothing

    assert run.returncode == 1 and "interrupted by SIGTERM" in stderr
    assert len(site.batches()) == read_then
    assert dict(es.indices.get(index="batches-*")) == {}
    assert not left_in_lock_index(es)


def test_the_error_budget_is_global_over_the_ranges_of_all_workers(catalog, site, es, reindex, settings):
    from catalog.models import Product

    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PoisonIndex"]}
    site.env["REINDEX_TEST_INDEXES"] = "tests.definitions.PoisonIndex"
    catalog(products=80)
    assert reindex("rebuild", "poison").exit_code == 0
    live = indexes.alias_targets(es, "poison")
    pks = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    Product.objects.filter(pk__in=[pks[5], pks[75]]).update(name="POISON")  # one in the first range, one in the last
    site.start_workers()

    done = site.rebuild("poison", "--workers", "2", "--max-errors", "1")

    assert done.returncode == 1
    assert "2 rows failed, more than --max-errors 1" in done.stderr
    assert indexes.alias_targets(es, "poison") == live
    assert sorted(dict(es.indices.get(index="poison-*"))) == live


# -- resume with the executors of one machine ------------------------------------------------


@pytest.fixture
def batch_log(tmp_path: Path) -> Callable[[], list[int]]:
    """The first pk of every batch BatchesIndex reads (``$REINDEX_TEST_BATCH_LOG``)."""
    path = tmp_path / "batches.log"

    def first_pks() -> list[int]:
        return [int(line.split()[2]) for line in path.read_text().splitlines()] if path.exists() else []

    first_pks.path = path  # type: ignore[attr-defined]
    return first_pks


@pytest.mark.parametrize("workers", ["1", "2"])
def test_resume_after_kill_9_keeps_the_ranges_done_for_the_local_and_processes_executors(
    catalog, reindex_process, es, batch_log, workers
):
    catalog(products=ROWS)
    env = {
        "REINDEX_TEST_INDEXES": BATCHES,
        "REINDEX_TEST_BATCH_LOG": str(batch_log.path),  # type: ignore[attr-defined]
        "REINDEX_TEST_BATCH_DELAY": "0.03",
        "REINDEX_TEST_RANGE_SIZE": "50",
        "REINDEX_TEST_LOCK_TTL": "2",
    }
    run = reindex_process("rebuild", "batches", "--batch-size", "10", "--workers", workers, wait=False, env=env)
    wait_for(lambda: len(ranges_done(es, "batches")) >= 3, "3 of the 6 ranges to be done", run, timeout=60)
    run.kill()
    run.wait()
    time.sleep(0.3)  # forked workers notice their parent is gone at their next batch
    build = build_of(es, "batches")
    assert build is not None
    done = {r.number: (r.after, r.upto) for r in ranges_done(es, "batches")}
    read_before = len(batch_log())
    wait_for(lambda: lock_free_or_stale(es, "batches"), "the lock to go stale")

    again = reindex_process("rebuild", "batches", "--batch-size", "10", "--resume", "--json", env=env)

    report = report_of(again)
    read_again = [
        pk
        for pk in batch_log()[read_before:]
        if any((a is None or pk > a) and (u is None or pk <= u) for a, u in done.values())
    ]
    assert read_again == []
    assert (report["resumed"], report["new_index"], report["swapped"]) == (True, build.index, True)
    assert (report["rows_read"], report["indexed"], report["failed"], report["duplicates"]) == (ROWS, ROWS, 0, 0)
    assert es.count(index="batches")["count"] == ROWS
    assert sorted(dict(es.indices.get(index="batches-*"))) == [build.index]


def test_the_core_never_imports_celery_unless_the_executor_is_asked_for(catalog, es_url, transactional_db):
    catalog(products=5)
    script = (
        "import sys, django; django.setup(); import reindex, reindex.cli, reindex.api; "
        "reindex.rebuild('products', workers=2); print(sorted(m for m in sys.modules if m.split('.')[0] == 'celery'))"
    )
    env = subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings", REINDEX_ES_URL=es_url)
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the range documents --------------------------------------------------------------------


@pytest.fixture
def tiny_build(catalog, es, settings) -> Callable[..., BuildState]:
    """A build of the ``tiny`` alias under way: its index created and ``parts`` ranges recorded."""
    from reindex.executors.ranges import pk_ranges
    from reindex.operations.rebuilding import create_new_index
    from tests.definitions import TinyIndex

    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.TinyIndex"]}

    def start(products: int = 30, parts: int = 3) -> BuildState:
        catalog(products=products)
        definition = TinyIndex()
        queryset = definition.get_queryset()
        index = create_new_index(es, definition)
        return BuildState.start(es, Config.lock_index, definition, index, pk_ranges(queryset, products, parts))

    return start


def test_a_range_sent_twice_is_loaded_and_recorded_once(tiny_build, es, es_url):
    from reindex.executors.local import load_range
    from tests.definitions import TinyIndex

    build = tiny_build(products=30, parts=3)
    config = Config(hosts=(es_url,), batch_size=4)

    first = load_range(es, TinyIndex(), build, 1, config)
    again = load_range(es, TinyIndex(), build, 1, config)

    assert first is not None and (first.counts.rows_read, first.counts.indexed) == (10, 10)
    assert again is None  # done already: nothing read, nothing written
    [state] = build.read(es, [1])
    assert (state.state, state.attempts, state.result.counts.indexed) == (DONE, 1, 10)


def test_an_attempt_whose_range_was_claimed_again_stops_without_recording(tiny_build, es):
    from reindex.errors import Superseded
    from reindex.executors.ranges import RangeResult

    build = tiny_build()
    killed = build.claim(es, 0)  # a worker that went silent ...
    again = build.claim(es, 0)  # ... and the attempt that took its range over
    assert killed is not None and again is not None and again.rerun

    with pytest.raises(Superseded, match="claimed by another attempt"):
        killed.finish(RangeResult(0))
    again.finish(RangeResult(0))
    assert [r.attempts for r in build.read(es, [0])] == [2]


def test_a_task_for_a_build_that_is_gone_stops_without_writing(tiny_build, es, es_url):
    from reindex.executors.celery import load_range_task
    from reindex.executors.ranges import forget_builds

    build = tiny_build()
    forget_builds(es, Config.lock_index, [build.index])  # the coordinator gave up ...
    es.indices.delete(index=build.index)
    es.index(index=build.index, id="1", document={"name": "late"})  # ... and a late bulk request re-created it

    outcome = load_range_task("tests.definitions.TinyIndex", build.index, build.ranges, 0, {"hosts": [es_url]})

    assert outcome == "superseded"
    assert not es.indices.exists(index=build.index)


def test_status_shows_the_ranges_of_a_build_under_way(tiny_build, es, es_url, reindex):
    from reindex.executors.local import load_range
    from tests.definitions import TinyIndex

    build = tiny_build(products=30, parts=3)
    load_range(es, TinyIndex(), build, 0, Config(hosts=(es_url,)))
    build.claim(es, 1)

    text = reindex("status", "tiny").stdout
    [report] = json.loads(reindex("status", "tiny", "--json").stdout)

    assert f"{build.index}\tbuilding" in text
    assert "ranges: 1 of 3 done, 1 running, 1 pending (10 rows read)" in text
    assert report["ranges"] == {
        build.index: {"ranges": 3, "done": 1, "running": 1, "pending": 1, "failed": 0, "rows_read": 10}
    }


def test_without_resume_an_abandoned_build_and_its_ranges_are_deleted(tiny_build, es, reindex):
    build = tiny_build()

    run = reindex("rebuild", "tiny", "--json")

    [report] = json.loads(run.stdout)
    assert (report["resumed"], report["abandoned_dropped"]) == (False, [build.index])
    assert BuildState.find(es, Config.lock_index, build.index) is None
    assert not left_in_lock_index(es)


def test_resume_with_nothing_to_resume_builds_afresh(catalog, reindex, es):
    catalog(products=12)

    run = reindex("rebuild", "products", "--resume", "--json")

    [report] = json.loads(run.stdout)
    assert (run.exit_code, report["resumed"], report["indexed"]) == (0, False, 12)


def test_resume_refuses_a_build_made_from_another_definition(tiny_build, es, reindex):
    build = tiny_build()
    es.update(index=Config.lock_index, id=build.header_id, doc={"fingerprint": "an older definition"})

    run = reindex("rebuild", "tiny", "--resume")

    assert run.exit_code == 2
    assert f"tiny: cannot resume {build.index}: it was built from another definition" in run.stderr
    assert es.indices.exists(index=build.index)  # nothing was changed


def test_a_broker_url_naming_no_transport_is_a_configuration_error_with_one_line(catalog, site, es):
    catalog(products=30)
    site.env["CELERY_BROKER_URL"] = "nosuchtransport://127.0.0.1//"

    run = site.rebuild("batches")

    assert run.returncode == 2, run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith("reindex: error: --executor celery: the Celery broker URL (scheme nosuchtransport://)")
    assert "No such transport: nosuchtransport" in line and "CELERY_BROKER_URL" in line
    assert dict(es.indices.get(index="batches-*")) == {}
    assert not left_in_lock_index(es) and read_holder(es, "batches") is None


def test_a_broker_that_is_down_fails_the_run_with_one_line_and_leaves_nothing(catalog, site, es):
    catalog(products=30)
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    name = next(name for name, url in BROKERS.items() if url == site.broker)
    site.env["CELERY_BROKER_URL"] = site.broker.replace(f":{PORTS[name]}", f":{port}")  # nothing listens there

    run = site.rebuild("batches")

    assert run.returncode == 1, run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith("reindex: error: batches: cannot send the range tasks to the Celery broker at "), line
    assert f"127.0.0.1:{port}" in line and "Connection refused" in line and "guest:guest" not in line
    assert dict(es.indices.get(index="batches-*")) == {}
    assert not left_in_lock_index(es) and read_holder(es, "batches") is None
