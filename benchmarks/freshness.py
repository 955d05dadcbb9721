"""Freshness figures: what ``update`` costs as the table grows, ``sweep`` and ``verify --full`` on large
tables, and how long a change takes to become searchable with ``update`` run every minute.

    python benchmarks/freshness.py update --db sqlite --rows 10000,1000000
    python benchmarks/freshness.py walk --db postgres --rows 100000,1000000
    python benchmarks/freshness.py lag --interval 60 --minutes 6

- ``update``: 1,000 rows of the table changed (spread over it), then ``update`` of
  ``benchmarks.definitions.ProductRowsIndex``: its SQL queries and seconds, at each
  table size (``--repeat`` times, a fresh 1,000 each time); on PostgreSQL also the plan
  of the query that pages through the changed keys.
- ``walk``: ``sweep`` and ``verify --full`` of the whole index: documents per second
  and the process's peak RSS, at each table size.
- ``lag``: a row changes every few seconds while ``reindex update`` runs every
  ``--interval`` seconds as cron would (a fresh process each time), against
  osmem-server; a poller searches for each change: change -> searchable, in seconds.

``update`` and ``walk`` run against ``benchmarks/store.py``, an in-memory store that
keeps the documents and costs next to nothing, so the figures are the client's and
the database's; each measured step runs in a process of its own. The datasets are
seeded once per size and kept (``/tmp/reindex-fresh-bench-<rows>.sqlite3``, or
``reindex_fresh_bench_<rows>`` on PostgreSQL): separate from ``rebuild.py``'s, since
these benchmarks change rows. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from rebuild import start_server  # noqa: E402  (the same servers as the rebuild benchmark)

DEFINITION = "benchmarks.definitions.ProductRowsIndex"
CHANGED = 1000


# -- the driver ------------------------------------------------------------------------------


def dataset_env(db: str, rows: int, url: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "example")]),
        REINDEX_BENCH_DB=db,
        REINDEX_BENCH_SQLITE=f"{tempfile.gettempdir()}/reindex-fresh-bench-{rows}.sqlite3",
        REINDEX_BENCH_PG_NAME=f"reindex_fresh_bench_{rows}",
        REINDEX_ES_URL=url,
    )
    return env


def stop(server: subprocess.Popen[str]) -> None:
    assert server.stdin is not None
    server.stdin.close()
    server.wait(timeout=60)


def child(step: str, db: str, rows: int, url: str, *extra: str, timeout: float = 3600) -> dict[str, Any]:
    """Run one measured step in a process of its own; its JSON line."""
    command = [sys.executable, str(Path(__file__).resolve()), "child", step, *extra]
    done = subprocess.run(
        command, env=dataset_env(db, rows, url), capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if done.returncode:
        raise SystemExit(f"{step} ({rows} rows) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def seed(db: str, rows: int) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "contenders.py"), "seed", "--rows", str(rows)]
    done = subprocess.run(command, env=dataset_env(db, rows), capture_output=True, text=True, timeout=7200)
    if done.returncode:
        raise SystemExit(f"seeding {rows} rows failed:\n{done.stderr[-3000:]}")
    print(f"dataset {rows}: {done.stdout.strip()}", file=sys.stderr)


def against_a_rebuilt_store(
    args: argparse.Namespace, rows: int, steps: Callable[[argparse.Namespace, int, str], T]
) -> T:
    """Seed ``rows``, start the store, rebuild the alias into it, then run ``steps`` against its URL."""
    seed(args.db, rows)
    server, url = start_server("store")
    try:
        child("rebuild", args.db, rows, url)
        return steps(args, rows, url)
    finally:
        stop(server)


def updates(args: argparse.Namespace, rows: int, url: str) -> list[dict[str, Any]]:
    return [child("update", args.db, rows, url, str(n)) for n in range(args.repeat)]


def walks(args: argparse.Namespace, rows: int, url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sweeps = [child("sweep", args.db, rows, url) for _ in range(args.repeat)]
    return sweeps, [child("verify", args.db, rows, url) for _ in range(args.repeat)]


def run_update(args: argparse.Namespace) -> list[dict[str, Any]]:
    figures = []
    for rows in args.rows:
        runs = against_a_rebuilt_store(args, rows, updates)
        figures.append(
            {
                "rows": rows,
                "changed": runs[0]["changed"],
                "queries": statistics.median(r["queries"] for r in runs),
                "seconds": statistics.median(r["seconds"] for r in runs),
                "seconds_min": min(r["seconds"] for r in runs),
                "seconds_max": max(r["seconds"] for r in runs),
                "plan": runs[0].get("plan"),
            }
        )
    return figures


def run_walk(args: argparse.Namespace) -> list[dict[str, Any]]:
    figures = []
    for rows in args.rows:
        sweeps, verifies = against_a_rebuilt_store(args, rows, walks)
        figures.append(
            {
                "rows": rows,
                "sweep_docs_per_s": statistics.median(r["documents"] / r["seconds"] for r in sweeps),
                "sweep_rss_mb": max(r["rss_mb"] for r in sweeps),
                "verify_rows_per_s": statistics.median(r["rows"] / r["seconds"] for r in verifies),
                "verify_rss_mb": max(r["rss_mb"] for r in verifies),
                "verify_agrees": all(r["agrees"] for r in verifies),
            }
        )
    return figures


def run_lag(args: argparse.Namespace) -> dict[str, Any]:
    """Change a row every few seconds; update every ``interval`` seconds; time each change until it is found."""
    rows = args.rows[0]
    seed(args.db, rows)
    server, url = start_server("osmem")
    env = dataset_env(args.db, rows, url)
    reindex = [sys.executable, "-m", "reindex", "--settings", "benchmarks.settings", "-q"]
    try:
        subprocess.run([*reindex, "rebuild", "products"], env=env, check=True, cwd=ROOT, timeout=3600)
        found = child("lag", args.db, rows, url, str(args.interval), str(args.minutes), timeout=args.minutes * 60 + 600)
    finally:
        stop(server)
    lags = found["lags"]
    return {
        "rows": rows,
        "interval": args.interval,
        "changes": len(lags),
        "lag_min": min(lags),
        "lag_median": statistics.median(lags),
        "lag_mean": statistics.mean(lags),
        "lag_p90": statistics.quantiles(lags, n=10)[-1],
        "lag_max": max(lags),
        "run_seconds_median": statistics.median(found["runs"]),
        "run_seconds_max": max(found["runs"]),
        "unfound": found["unfound"],
        "lags": sorted(round(lag, 1) for lag in lags),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["update", "walk", "lag"])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", default="", help="table sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--interval", type=float, default=60, help="lag: seconds between two updates")
    parser.add_argument("--minutes", type=float, default=6, help="lag: how long to measure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    default_rows = {"update": "10000,1000000", "walk": "100000,1000000", "lag": "20000"}[args.what]
    args.rows = [int(r) for r in (args.rows or default_rows).split(",")]
    figures: Any = {"update": run_update, "walk": run_walk, "lag": run_lag}[args.what](args)
    if args.json:
        print(json.dumps({"what": args.what, "db": args.db, "figures": figures}, indent=2))
        return
    print(f"{args.what}, {args.db}; {os.cpu_count()} CPUs")
    for figure in figures if isinstance(figures, list) else [figures]:
        plan = figure.pop("plan", None)
        print("  " + ", ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figure.items()))
        if plan:
            print("  plan of the changed-keys query:\n    " + "\n    ".join(plan.splitlines()))


# -- the measured steps, each in a process of its own ------------------------------------------


def step_rebuild(config: Any, definition: Any, es: Any) -> dict[str, Any]:
    from reindex.operations.rebuilding import rebuild

    return {"indexed": rebuild(definition, es, config).indexed}


def step_update(config: Any, definition: Any, es: Any, n: int) -> dict[str, Any]:
    """Change ``CHANGED`` rows spread over the table (the ``n``-th such set), then update: queries and seconds."""
    from catalog.models import Product
    from django.db import connection
    from django.db.models import Max, Min
    from django.utils import timezone

    from reindex.operations.updating import update
    from reindex.server.watermarks import database_now

    bounds = Product.objects.aggregate(low=Min("pk"), high=Max("pk"))
    step = max(1, (bounds["high"] - bounds["low"]) // CHANGED)
    picked = [bounds["low"] + n + i * step for i in range(CHANGED)]
    since = database_now(connection.alias)
    # A bulk update sets the timestamp itself: auto_now is for save() only.
    Product.objects.filter(pk__in=picked).update(updated_at=timezone.now())
    queries: list[tuple[str, Any]] = []
    started = time.perf_counter()
    with connection.execute_wrapper(
        lambda execute, sql, params, *rest: queries.append((sql, params)) or execute(sql, params, *rest)
    ):
        result = update(definition, es, config, since=since)
    seconds = time.perf_counter() - started
    figures = {"changed": result.changed, "indexed": result.indexed, "queries": len(queries), "seconds": seconds}
    if connection.vendor == "postgresql" and n == 0:  # the plan of the query that reads the changed keys
        sql, params = next(
            (sql, params) for sql, params in queries if sql.startswith("WITH changed (pk)") and "ORDER BY" in sql
        )
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}", params)
            figures["plan"] = "\n".join(row[0] for row in cursor.fetchall())
    return figures


def step_sweep(config: Any, definition: Any, es: Any) -> dict[str, Any]:
    from reindex.operations.sweeping import sweep

    started = time.perf_counter()
    result = sweep(definition, es, config)
    return {"documents": result.documents, "deleted": result.deleted, "seconds": time.perf_counter() - started, **rss()}


def step_verify(config: Any, definition: Any, es: Any) -> dict[str, Any]:
    from reindex.operations.verification import verify

    started = time.perf_counter()
    result = verify(definition, es, config, full=True)
    seconds = time.perf_counter() - started
    return {"rows": result.checked_rows, "agrees": result.agrees, "seconds": seconds, **rss()}


def step_lag(es: Any, interval: float, minutes: float) -> dict[str, Any]:
    """Rename a random product every 2-8 s; run ``reindex update`` every ``interval`` s; poll for each name."""
    from catalog.models import Product
    from django.db.models import Max, Min

    env = dict(os.environ)
    command = [sys.executable, "-m", "reindex", "--settings", "benchmarks.settings", "-q", "update", "products"]
    bounds = Product.objects.aggregate(low=Min("pk"), high=Max("pk"))
    pending: dict[str, float] = {}
    lags: list[float] = []
    runs: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + minutes * 60
    rng = random.Random(7)
    run = uuid.uuid4().hex[:12]

    def cron() -> None:
        next_run = time.monotonic() + interval
        while next_run < stop_at + interval:  # one run after the last change
            time.sleep(max(0.0, next_run - time.monotonic()))
            started = time.monotonic()
            subprocess.run(command, env=env, cwd=ROOT, check=False)
            runs.append(time.monotonic() - started)
            next_run += interval

    def poll() -> None:
        while time.monotonic() < stop_at + 2 * interval + 30:
            with lock:
                names = list(pending)
            for name in names:
                hits = es.search(index="products", query={"term": {"name.raw": name}}, size=0)
                if hits["hits"]["total"]["value"]:
                    with lock:
                        lags.append(time.monotonic() - pending.pop(name))
            if not names and time.monotonic() > stop_at:
                return
            time.sleep(0.1)

    threads = [threading.Thread(target=cron), threading.Thread(target=poll)]
    for thread in threads:
        thread.start()
    n = 0
    while time.monotonic() < stop_at:
        product = Product.objects.filter(pk__gte=rng.randint(bounds["low"], bounds["high"])).order_by("pk").first()
        n += 1
        name = f"lag probe {run} {n}"  # never searchable before: the dataset outlives the run
        product.name = name
        product.save()
        with lock:
            pending[name] = time.monotonic()
        time.sleep(rng.uniform(2, 8))
    for thread in threads:
        thread.join()
    return {"lags": lags, "runs": runs, "unfound": len(pending)}


def configured() -> tuple[Any, Any, Any]:
    """The configuration, the benchmark's definition and a client, in a child process."""
    sys.path[:0] = [str(ROOT), str(ROOT / "example")]
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.utils.module_loading import import_string

    from reindex.config import Config
    from reindex.server.connection import Connection

    config = Config.load()
    return config, import_string(DEFINITION)(), Connection(config).client()


def rss() -> dict[str, float]:
    return {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_main(step: str, extra: list[str]) -> None:
    config, definition, es = configured()
    steps: dict[str, Any] = {
        "rebuild": lambda: step_rebuild(config, definition, es),
        "update": lambda: step_update(config, definition, es, int(extra[0])),
        "sweep": lambda: step_sweep(config, definition, es),
        "verify": lambda: step_verify(config, definition, es),
        "lag": lambda: step_lag(es, float(extra[0]), float(extra[1])),
    }
    print(json.dumps(steps[step]()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child_main(sys.argv[2], sys.argv[3:])
    else:
        main()
