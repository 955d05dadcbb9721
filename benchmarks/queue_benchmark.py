"""Change-queue figures: what capture adds to a save, drain against rebuild throughput, and the lag.

    python benchmarks/queue_benchmark.py --db postgres --rows 20000 --saves 2000 --seconds 30 --rate 20

- ``save``: ``--saves`` saves of random products, each in its own transaction (as a site
  with ``ATOMIC_REQUESTS``), alternately with capture on and paused
  (``reindex.capture.paused()``): the seconds of each save, median and p99 of both.
  The demo's ``ProductIndex`` and ``CategoryIndex`` both watch products, so a save
  with capture on runs one query for the product's category and one upsert for both.
- ``triggers`` (PostgreSQL): the same saves with the signal handlers paused, alternately
  with the products' and categories' triggers (``reindex triggers install``) queueing
  and with them paused (``SET LOCAL reindex.paused = 'on'``); then one raw ``UPDATE``
  of 1,000 products, with and without the triggers: what a trigger costs a row.
- ``throughput``: every row queued, then one ``drain`` in this process, against one
  ``rebuild`` (single process) of the same alias: documents per second of each.
- ``lag``: ``reindex drain --loop`` runs in a process of its own while this one renames
  a random product ``--rate`` times a second for ``--seconds`` (after one change found,
  so that the drainer's start is not measured); a poller searches for each new name
  every 20 ms: commit -> searchable, p50 and p99 in seconds. ``QUEUE_POLL_INTERVAL``
  is the default, 1 s.

All against osmem-server (in memory, on this machine) and the dataset of
``benchmarks/contenders.py seed`` (``reindex_bench_<rows>`` on PostgreSQL, or
``/tmp/reindex-bench-<rows>.sqlite3``). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from lag import LagProbes, searchable  # noqa: E402
from rebuild import dataset_env, seed_dataset, start_server  # noqa: E402  (the rebuild benchmark's datasets)


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1..99) of ``values``."""
    return statistics.quantiles(values, n=100)[q - 1]


def step_env(args: argparse.Namespace, url: str) -> dict[str, str]:
    """The environment of a step: the dataset's database, the server, the demo on the path."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "example")])
    return {**dataset_env(args), "PYTHONPATH": path, "REINDEX_ES_URL": url}


def run_child(step: str, args: argparse.Namespace, url: str, *extra: str) -> dict[str, Any]:
    """Run one measured step in a process of its own; its JSON line."""
    command = [sys.executable, str(Path(__file__).resolve()), "child", step, *extra]
    done = subprocess.run(command, env=step_env(args, url), capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"step {step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--saves", type=int, default=2000, help="save: saves measured, half with capture on")
    parser.add_argument("--seconds", type=float, default=30, help="lag: how long the writes last")
    parser.add_argument("--rate", type=float, default=20, help="lag: renames a second")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds the seeding may take")
    parser.add_argument("--steps", default="save,triggers,throughput,lag", help="which figures (comma-separated)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seed_dataset(args)
    server, url = start_server("osmem")
    try:
        subprocess.run(
            [sys.executable, "-m", "reindex", "--settings", "benchmarks.settings", "-q", "rebuild", "products"],
            env=step_env(args, url),
            check=True,
            cwd=ROOT,
        )
        extra = {"save": [str(args.saves)], "triggers": [str(args.saves)], "lag": [str(args.seconds), str(args.rate)]}
        steps = [s for s in args.steps.split(",") if s != "triggers" or args.db == "postgres"]
        figures = {step: run_child(step, args, url, *extra.get(step, [])) for step in steps}
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
    conditions = {"db": args.db, "rows": args.rows, "cpus": os.cpu_count(), "server": "osmem-server"}
    if args.json:
        print(json.dumps({"conditions": conditions, "figures": figures}, indent=2))
        return
    print(", ".join(f"{k} {v}" for k, v in conditions.items()))
    for name, figure in figures.items():
        print(
            f"  {name}: "
            + ", ".join(f"{k} {v:,.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in figure.items())
        )


# -- the measured steps, each in a process of its own ------------------------------------------


def setup() -> tuple[Any, Any]:
    sys.path[:0] = [str(ROOT), str(ROOT / "example")]
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from reindex.config import Config
    from reindex.server.connection import Connection

    call_command("migrate", "reindex", verbosity=0)  # the queue's table, in a dataset seeded before it existed
    config = Config.load()
    return config, Connection(config).client()


def step_save(saves: int) -> dict[str, Any]:
    from catalog.models import Product
    from django.db import transaction

    from reindex.capture import paused
    from reindex.models import QueueEntry

    pks = list(Product.objects.values_list("pk", flat=True))
    rng = random.Random(3)
    timings: dict[bool, list[float]] = {True: [], False: []}
    for n in range(saves):
        captured = n % 2 == 0
        product = Product.objects.get(pk=rng.choice(pks))
        product.price = rng.randrange(100, 9999) / 100
        started = time.perf_counter()
        if captured:
            with transaction.atomic():
                product.save()
        else:
            with paused(), transaction.atomic():
                product.save()
        timings[captured].append(time.perf_counter() - started)
    QueueEntry.objects.all().delete()
    return save_figures(timings[True], timings[False])


def save_figures(on: list[float], off: list[float]) -> dict[str, Any]:
    """Median and p99 of the saves with the queueing on and off, in milliseconds."""
    return {
        "saves_each": len(on),
        "off_median_ms": statistics.median(off) * 1000,
        "off_p99_ms": percentile(off, 99) * 1000,
        "on_median_ms": statistics.median(on) * 1000,
        "on_p99_ms": percentile(on, 99) * 1000,
        "added_median_ms": (statistics.median(on) - statistics.median(off)) * 1000,
    }


def step_triggers(saves: int) -> dict[str, Any]:
    from catalog.models import Product
    from django.db import connection, transaction

    import reindex
    from reindex.capture import paused
    from reindex.models import QueueEntry

    reindex.triggers_install("products", "categories")
    pks = list(Product.objects.values_list("pk", flat=True))
    rng = random.Random(5)
    timings: dict[bool, list[float]] = {True: [], False: []}
    queued = 0
    try:
        for n in range(saves):
            triggered = n % 2 == 0
            product = Product.objects.get(pk=rng.choice(pks))
            product.price = rng.randrange(100, 9999) / 100
            started = time.perf_counter()
            with paused(), transaction.atomic():
                with connection.cursor() as cursor:  # the same statements either way, only the setting differs
                    cursor.execute("SELECT set_config('reindex.paused', %s, true)", ["off" if triggered else "on"])
                product.save()
            timings[triggered].append(time.perf_counter() - started)
            queued += triggered
        entries = QueueEntry.objects.filter(alias="products").count()
        assert 0 < entries <= queued, "the triggers queued nothing: the figures would measure nothing"
        bulk = {}
        for triggered in (False, True, False, True):
            chosen = rng.sample(pks, 1000)
            started = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT set_config('reindex.paused', %s, true)", ["off" if triggered else "on"])
                cursor.execute("UPDATE catalog_product SET price = price + 1 WHERE id = ANY(%s)", [chosen])
            bulk[triggered] = min(bulk.get(triggered, float("inf")), time.perf_counter() - started)
    finally:
        reindex.triggers_remove("products", "categories")
        QueueEntry.objects.all().delete()
    return {
        **save_figures(timings[True], timings[False]),
        "update_1000_off_ms": bulk[False] * 1000,
        "update_1000_on_ms": bulk[True] * 1000,
    }


def step_throughput(config: Any, client: Any) -> dict[str, Any]:
    from catalog.models import Product

    import reindex
    from reindex.operations.rebuilding import rebuild
    from reindex.queue.draining import drain

    [definition] = reindex.definitions("products", config=config)
    reindex.enqueue(definition, Product.objects.values_list("pk", flat=True), config=config)
    started = time.perf_counter()
    [drained] = drain([definition], client, config)
    drain_seconds = time.perf_counter() - started
    started = time.perf_counter()
    built = rebuild(definition, client, config)
    rebuild_seconds = time.perf_counter() - started
    done = drained.indexed + drained.deleted
    return {
        "drained": done,
        "drain_docs_per_s": done / drain_seconds,
        "rebuilt": built.indexed,
        "rebuild_docs_per_s": built.indexed / rebuild_seconds,
    }


def step_lag(client: Any, seconds: float, rate: float) -> dict[str, Any]:
    from catalog.models import Product
    from django.db import transaction

    env = dict(os.environ)
    command = [
        sys.executable,
        "-m",
        "reindex",
        "--settings",
        "benchmarks.settings",
        "-q",
        "drain",
        "products",
        "--loop",
    ]
    drainer = subprocess.Popen(command, env=env, cwd=ROOT)
    pks = list(Product.objects.filter(is_active=True).values_list("pk", flat=True))
    rng, run = random.Random(5), uuid.uuid4().hex[:12]
    probes = LagProbes(lambda name: searchable(client, "products", name), interval=0.02)

    def rename(name: str) -> None:
        with transaction.atomic():
            product = Product.objects.get(pk=rng.choice(pks))
            product.name = name
            product.save()

    rename(f"lag warm-up {run}")  # not measured: the drainer's start
    while not searchable(client, "products", f"lag warm-up {run}"):
        time.sleep(0.1)
    stop_at = probes.start(seconds)
    n, due = 0, time.monotonic()
    while due < stop_at:
        n += 1
        rename(f"lag probe {run} {n}")
        probes.written(f"lag probe {run} {n}")
        due += 1 / rate
        time.sleep(max(0.0, due - time.monotonic()))
    probes.join()
    lags = probes.lags
    drainer.terminate()
    drainer.wait(timeout=60)
    return {
        "changes": n,
        "found": len(lags),
        "lag_p50_s": percentile(lags, 50),
        "lag_p99_s": percentile(lags, 99),
        "lag_max_s": max(lags),
    }


def child_main(step: str, extra: list[str]) -> None:
    config, client = setup()
    steps: dict[str, Any] = {
        "save": lambda: step_save(int(extra[0])),
        "triggers": lambda: step_triggers(int(extra[0])),
        "throughput": lambda: step_throughput(config, client),
        "lag": lambda: step_lag(client, float(extra[0]), float(extra[1])),
    }
    print(json.dumps(steps[step]()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child_main(sys.argv[2], sys.argv[3:])
    else:
        main()
