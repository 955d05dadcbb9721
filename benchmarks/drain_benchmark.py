"""`drain` against `rebuild` of the same rows on the same server, round by round; and the lag of `drain --loop`.

    python benchmarks/drain_benchmark.py --db sqlite --rows 20000 --rounds 3 --document light
    python benchmarks/drain_benchmark.py --db postgres --rows 20000 --rounds 3 --document heavy --json
    python benchmarks/drain_benchmark.py --db postgres --rows 20000 --steps lag --seconds 30 --rate 1000

- ``throughput``: in each round, in processes of their own and back to back, one
  ``rebuild()`` (single process) of the alias and one ``drain()`` of every row of its
  queryset queued beforehand (the queueing is not timed): documents per second of each,
  client CPU seconds per 10,000 documents (``os.times()``, the sender thread included;
  on PostgreSQL also its server's, all its processes),
  and the SQL statements each ran (counted by an execute wrapper around the timed call
  only). The two swap places every other round, so that a slow spell of the shared
  machine does not always hit the same one. Their ratio is taken round by round.
- ``lag``: ``reindex drain --loop`` runs in a process of its own while this one queues
  about ``--rate`` documents a second for ``--seconds``: every 100 ms, one transaction
  renames one category (each product of it queued by capture: the fan-out) or a run of
  products, whichever brings the documents of that tick closest to the rate. A
  poller searches for the newest name of each tick every 50 ms: commit -> searchable, p50
  and p99 in seconds. Needs a server that stores documents: ``--server store`` (searchable
  the moment a bulk request is answered, next to no cost: the client's own lag) or
  ``osmem``.

``--document heavy`` is ``benchmarks.definitions.ProductRowsIndex`` (the sellers as
``Related`` rows), ``light`` is ``ProductLightIndex``. ``--server sink`` is the
do-nothing endpoint of ``benchmarks/sink.py`` (the client's own cost); ``store`` the
in-memory store of ``benchmarks/store.py`` (the sink that keeps documents); ``osmem`` the
in-memory osmem-server. The dataset is ``benchmarks/contenders.py seed``'s. On
PostgreSQL the queue's table is vacuumed and analysed after the queueing (not timed),
as autovacuum would have done. The load
average of the machine is printed with every round (the machine may be shared).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from lag import LagProbes, searchable  # noqa: E402
from rebuild import (  # noqa: E402  (the rebuild benchmark's datasets)
    clear_server,
    dataset_env,
    postgres_cpu_seconds,
    ratio_line,
    seed_dataset,
    spread,
    start_server,
)

DEFINITIONS = {"heavy": "benchmarks.definitions.ProductRowsIndex", "light": "benchmarks.definitions.ProductLightIndex"}


def step_env(args: argparse.Namespace, url: str) -> dict[str, str]:
    """The environment of a child: the dataset's database, the server, the demo on the path."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "example")])
    return {**dataset_env(args), "PYTHONPATH": path, "REINDEX_ES_URL": url}


def run_child(args: argparse.Namespace, url: str, step: str, *extra: str, script: str = __file__) -> dict[str, Any]:
    """Run one measured step in a process of its own (``script child STEP DOCUMENT BATCH_SIZE ...``); its JSON line."""
    command = [sys.executable, str(Path(script).resolve()), "child", step, args.document, str(args.batch_size)]
    done = subprocess.run(
        [*command, *extra], env=step_env(args, url), capture_output=True, text=True, timeout=3600, cwd=ROOT
    )
    if done.returncode:
        raise SystemExit(f"step {step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rate(run: dict[str, Any]) -> float:
    return float(run["docs"] / run["seconds"]) if run["seconds"] else 0.0


def cpu_per_doc(run: dict[str, Any]) -> float:
    """Client CPU seconds per document of a run."""
    return float(run["cpu"] / max(run["docs"], 1))


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and range of the rates, CPU s per 10,000 documents, SQL statements per 1,000 documents."""
    rates = [rate(r) for r in runs]
    return {
        "docs": runs[0]["docs"],
        "docs_per_s": statistics.median(rates),
        "docs_per_s_min": min(rates),
        "docs_per_s_max": max(rates),
        "cpu_s_per_10k": statistics.median(10_000 * cpu_per_doc(r) for r in runs),
        "db_cpu_s_per_10k": statistics.median(10_000 * r["db_cpu"] / max(r["docs"], 1) for r in runs),
        "queries": statistics.median(r["queries"] for r in runs),
        "queries_per_1k": statistics.median(1_000 * r["queries"] / max(r["docs"], 1) for r in runs),
    }


def throughput(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Paired rounds of a rebuild and a drain of the same rows; their figures and the ratios round by round."""
    clear_server(url)
    run_child(args, url, "rebuild")  # the alias the first drain writes to (not measured)

    def before(step: str) -> None:
        if step == "rebuild":  # the sink counts what the drains wrote: the rebuild would refuse to swap
            clear_server(url)

    return paired(args, url, "drain", "rebuild", before=before)


def paired(
    args: argparse.Namespace,
    url: str,
    first: str,
    second: str,
    *,
    script: str = __file__,
    before: Callable[[str], None] = lambda step: None,
) -> dict[str, Any]:
    """``args.rounds`` rounds of two steps of ``script``, back to back, ``second`` going first in the even ones.

    Each step's figures (``summary``), and ``first``'s rate and CPU per document over
    ``second``'s, round by round; ``before(step)`` runs ahead of each step (not timed).
    """
    runs: dict[str, list[dict[str, Any]]] = {first: [], second: []}
    rounds = []
    for n in range(args.rounds):
        load = [round(v, 2) for v in os.getloadavg()]
        for step in [second, first] if n % 2 == 0 else [first, second]:
            before(step)
            runs[step].append(run_child(args, url, step, script=script))
        one, other = runs[first][-1], runs[second][-1]
        ratio = rate(one) / rate(other)
        cpu_ratio = cpu_per_doc(one) / cpu_per_doc(other)
        rounds.append({"load_1min": load[0], "load": load, "ratio": ratio, "cpu_ratio": cpu_ratio})
        print(
            f"round {n + 1} (load {load[0]:.2f}): {second} {rate(other):,.0f} docs/s, {first} {rate(one):,.0f}"
            f" docs/s ({one['docs']:,} documents, {one['failed']:,} failed): {ratio:.2f}x; CPU {cpu_ratio:.2f}x",
            file=sys.stderr,
        )
    report: dict[str, Any] = {first: summary(runs[first]), second: summary(runs[second])}
    for key, name in (("ratio", f"{first}_over_{second}"), ("cpu_ratio", f"cpu_{first}_over_{second}")):
        report[name] = spread([r[key] for r in rounds])
    return {**report, "rounds": rounds, "runs": runs}


def print_paired(report: dict[str, Any], first: str, second: str) -> None:
    """The figures of ``paired()``, a line per step and per ratio."""
    for name in (second, first):
        print(step_line(name, report[name]))
    for key in (f"{first}_over_{second}", f"cpu_{first}_over_{second}"):
        print(f"  {ratio_line(key, report[key])}")


def step_line(name: str, s: dict[str, Any]) -> str:
    """One step's ``summary()`` as the benchmarks print it."""
    return (
        f"  {name}: {s['docs_per_s']:,.0f} docs/s ({s['docs_per_s_min']:,.0f}-{s['docs_per_s_max']:,.0f}),"
        f" {s['docs']:,} documents, CPU {s['cpu_s_per_10k']:.2f} s/10k"
        f" (the database server's {s['db_cpu_s_per_10k']:.2f}),"
        f" {s['queries']:.0f} SQL statements ({s['queries_per_1k']:.1f} per 1,000)"
    )


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """The options that pick the dataset and the rounds: --db, --rows, --rounds, --document, --timeout."""
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--document", choices=sorted(DEFINITIONS), default="heavy")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the seeding may take")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_options(parser)
    parser.add_argument("--server", choices=["sink", "store", "osmem"], default="sink")
    parser.add_argument("--batch-size", type=int, default=0, help="BATCH_SIZE of both (default: the tool's)")
    parser.add_argument("--steps", default="throughput", help="throughput, lag (comma-separated)")
    parser.add_argument("--seconds", type=float, default=30, help="lag: how long the writes last")
    parser.add_argument("--rate", type=float, default=1000, help="lag: documents queued a second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    steps = args.steps.split(",")
    if "lag" in steps and args.server == "sink":
        parser.error("the lag step searches for what it wrote: --server store or osmem")
    seed_dataset(args)
    server, url = start_server(args.server)
    figures: dict[str, Any] = {}
    try:
        run_child(args, url, "migrate")
        if "throughput" in steps:
            figures["throughput"] = throughput(args, url)
        if "lag" in steps:
            run_child(args, url, "rebuild")
            figures["lag"] = run_child(args, url, "lag", str(args.seconds), str(args.rate))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
    conditions = {
        "db": args.db,
        "rows": args.rows,
        "document": args.document,
        "server": args.server,
        "batch_size": args.batch_size or "default",
        "cpus": os.cpu_count(),
        "load_1min_at_end": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps({"conditions": conditions, "figures": figures}, indent=2))
        return
    print(", ".join(f"{k} {v}" for k, v in conditions.items()))
    if "throughput" in figures:
        print_paired(figures["throughput"], "drain", "rebuild")
    if "lag" in figures:
        print(
            "  lag: "
            + ", ".join(f"{k} {v:,.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures["lag"].items())
        )


# -- the measured steps, each in a process of its own ------------------------------------------


def setup(document: str, batch_size: int) -> tuple[Any, Any, Any]:
    """Django set up; the definition, the configuration and a client."""
    sys.path[:0] = [str(ROOT), str(ROOT / "example")]
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.utils.module_loading import import_string

    from reindex.config import Config
    from reindex.server.connection import Connection

    config = Config.load(**({"batch_size": batch_size} if batch_size else {}))
    return import_string(DEFINITIONS[document])(), config, Connection(config).client()


class Statements:
    """Counts the SQL statements run inside ``with`` on the default connection and on any connection opened
    meanwhile (the drain's claims and acknowledgements run on a thread and connection of their own)."""

    def __init__(self) -> None:
        self.count = 0
        self.connections: list[Any] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)

    def watch(self, sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)
            self.connections.append(connection)

    def __enter__(self) -> Statements:
        from django.db import connection
        from django.db.backends.signals import connection_created

        connection.ensure_connection()
        self.watch(connection=connection)
        connection_created.connect(self.watch)
        return self

    def __exit__(self, *exc: Any) -> None:
        from django.db.backends.signals import connection_created

        connection_created.disconnect(self.watch)
        for connection in self.connections:
            if self in connection.execute_wrappers:
                connection.execute_wrappers.remove(self)


def measured(work: Any) -> dict[str, Any]:
    """Run ``work()`` (it returns documents done and failed): wall and CPU seconds, SQL statements.

    ``db_cpu``: on PostgreSQL, the CPU seconds its server's processes used meanwhile
    (``rebuild.postgres_cpu_seconds``: the backends that ended, as the drain's second
    connection does, included); on SQLite the database's work is the client's own CPU.
    """
    from django.db import connection

    postgres = connection.vendor == "postgresql"
    with Statements() as statements:
        before, db_before, started = os.times(), postgres_cpu_seconds() if postgres else 0.0, time.perf_counter()
        docs, failed = work()
        seconds, after = time.perf_counter() - started, os.times()
    db_cpu = 0.0
    if postgres:
        time.sleep(0.2)  # a backend whose connection just closed is reaped, its CPU counted
        db_cpu = postgres_cpu_seconds() - db_before
    cpu = sum(after[:4]) - sum(before[:4])
    figures = {"docs": docs, "failed": failed, "seconds": seconds, "cpu": cpu, "db_cpu": db_cpu}
    return {**figures, "queries": statements.count}


def step_rebuild(definition: Any, config: Any, client: Any) -> dict[str, Any]:
    from reindex.operations.rebuilding import rebuild

    def work() -> tuple[int, int]:
        built = rebuild(definition, client, config)
        return built.indexed, built.failed

    return measured(work)


def step_drain(definition: Any, config: Any, client: Any) -> dict[str, Any]:
    import reindex
    from reindex.models import QueueEntry

    QueueEntry.objects.filter(alias=definition.alias).delete()
    reindex.enqueue(definition, definition.get_queryset().values_list("pk", flat=True), config=config)
    vacuum_queue()
    return timed_drain(definition, config, client)


def timed_drain(definition: Any, config: Any, client: Any) -> dict[str, Any]:
    """One ``drain()`` of what is queued for the alias, measured; then its queue emptied."""
    from reindex.models import QueueEntry
    from reindex.queue.draining import drain

    def work() -> tuple[int, int]:
        [drained] = drain([definition], client, config)
        if drained.error:
            raise SystemExit(drained.error)
        return drained.indexed + drained.deleted, drained.failed

    figures = measured(work)
    QueueEntry.objects.filter(alias=definition.alias).delete()  # failed entries, if any: the next round starts clean
    return figures


def vacuum_queue() -> None:
    """VACUUM ANALYZE the queue's table on PostgreSQL, as autovacuum would have (it is off on the benchmark machine).

    Without it every round leaves 20,000 dead rows behind, and the statistics say the
    table is empty: the planner then scans it whole for every claim.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE reindex_queue")


def step_lag(definition: Any, config: Any, client: Any, seconds: float, per_second: float) -> dict[str, Any]:
    """Queue about ``per_second`` documents a second for ``seconds`` with a ``drain --loop`` running; the lag.

    Every 2 s, one category saved (capture queues each product of it: the fan-out),
    and the rest of those 2 s's documents as runs of products renamed with one
    ``UPDATE`` and queued with ``reindex.enqueue()``, one transaction each 100 ms. Each
    transaction also saves one product under a new name: the probe the poller looks for.
    """
    from catalog.models import Category, Product
    from django.db import transaction

    import reindex
    from reindex.models import QueueEntry

    QueueEntry.objects.all().delete()
    vacuum_queue()
    drainer = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "child", "drainloop", *sys.argv[3:5], str(seconds + 60)],
        env=os.environ,
        cwd=ROOT,
    )
    categories = list(Category.objects.values_list("pk", flat=True))
    per_category = {c: Product.objects.filter(category_id=c).count() for c in categories}
    pks = list(Product.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    run, tick, cycle = uuid.uuid4().hex[:12], 0.1, 20

    def found(name: str) -> bool:
        return searchable(client, definition.alias, name)

    probes = LagProbes(found, interval=0.05)

    def write(n: int) -> tuple[int, str]:
        """One tick's transaction; the documents it queued and its probe's name."""
        name = f"lag probe {run} {n}"
        with transaction.atomic():
            if n % cycle == 0:
                category = Category.objects.get(pk=categories[(n // cycle) % len(categories)])
                category.name = f"c {run} {n}"
                category.save()  # capture queues every product of it
                queued = per_category[category.pk]
                probe = Product.objects.filter(category_id=category.pk, is_active=True).first()
            else:
                size = max(1, int((per_second * tick * cycle - statistics.mean(per_category.values())) / (cycle - 1)))
                start = (n * size) % max(1, len(pks) - size)
                chosen = pks[start : start + size]
                Product.objects.filter(pk__in=chosen).update(description=f"bulk {run} {n}")
                reindex.enqueue(definition.alias, chosen)
                queued, probe = len(chosen), Product.objects.get(pk=chosen[-1])
            assert probe is not None
            probe.name = name
            probe.save()
        return queued, name

    warm_up = f"lag warm-up {run}"
    with transaction.atomic():
        product = Product.objects.get(pk=pks[0])
        product.name = warm_up
        product.save()
    while not found(warm_up):  # the drainer's start is not measured
        time.sleep(0.1)
    stop_at = probes.start(seconds)
    n, queued, due = 0, 0, time.monotonic()
    while due < stop_at:
        done, name = write(n)
        n += 1
        queued += done
        probes.written(name)
        due += tick
        time.sleep(max(0.0, due - time.monotonic()))
    probes.join()
    lags = probes.lags
    drainer.terminate()
    drainer.wait(timeout=60)
    centiles = statistics.quantiles(lags, n=100)
    return {
        "transactions": n,
        "queued_per_s": queued / seconds,
        "probes_found": len(lags),
        "lag_p50_s": centiles[49],
        "lag_p99_s": centiles[98],
        "lag_max_s": max(lags),
        "load_1min": os.getloadavg()[0],
    }


def step_drainloop(definition: Any, config: Any, client: Any, seconds: float) -> dict[str, Any]:
    """``drain --loop`` of the definition (as the command runs it) until SIGTERM or ``seconds``."""
    from reindex import interrupts
    from reindex.queue.draining import drain

    with interrupts.signals_raise_interrupted():
        [drained] = drain([definition], client, config, loop=True, max_seconds=seconds)
    return {"indexed": drained.indexed, "batches": drained.batches}


def step_migrate() -> dict[str, Any]:
    from django.core.management import call_command

    call_command("migrate", "reindex", verbosity=0)  # the queue's table, in a dataset seeded before it existed
    return {}


def steps_of(definition: Any, config: Any, client: Any, extra: list[str]) -> dict[str, Callable[[], dict[str, Any]]]:
    return {
        "migrate": step_migrate,
        "rebuild": lambda: step_rebuild(definition, config, client),
        "drain": lambda: step_drain(definition, config, client),
        "lag": lambda: step_lag(definition, config, client, float(extra[0]), float(extra[1])),
        "drainloop": lambda: step_drainloop(definition, config, client, float(extra[0])),
    }


def run(steps: Callable[..., dict[str, Callable[[], dict[str, Any]]]], main: Callable[[], None]) -> None:
    """``script child STEP DOCUMENT BATCH_SIZE [EXTRA...]`` (``run_child``): the step's figures as a JSON line.

    Otherwise ``main()``. ``steps(definition, config, client, extra)`` names the script's steps.
    """
    if sys.argv[1:2] != ["child"]:
        return main()
    definition, config, client = setup(sys.argv[3], int(sys.argv[4]))
    print(json.dumps(steps(definition, config, client, sys.argv[5:])[sys.argv[2]]()))


if __name__ == "__main__":
    run(steps_of, main)
