"""`reindex stream` against the change queue: what each costs a write, documents per second, and the lag.

    python benchmarks/stream_benchmark.py --rows 20000
    python benchmarks/stream_benchmark.py --rows 20000 --steps throughput --servers sink --documents light --json
    python benchmarks/stream_benchmark.py --rows 20000 --steps lag --seconds 30 --rates 100,1000

The stream needs PostgreSQL with ``wal_level = logical``: the script starts a private
cluster of its own (``scripts/logical_cluster.py``, on a free port; the machine's server
is left alone), seeds the dataset of ``benchmarks/contenders.py seed`` in it, and removes
it at the end. Every step runs in a process of its own; the load average of the machine
(what ``uptime`` prints) is recorded with every figure, as the machine may be shared.

- ``writes``: what capturing changes costs the writer. In each of ``--write-rounds``
  rounds, four blocks, one per way of capturing, in an order that rotates round by
  round: ``none`` (signal capture paused, no trigger, no slot), ``signals`` (capture on:
  the change queue, ``QUEUE_CAPTURE``), ``triggers`` (``reindex.triggers_install`` for
  products and categories, capture paused) and ``stream`` (``reindex.slot_setup`` for
  both, capture paused; nobody reads the slot during the block). Each block saves the
  same ``--saves`` products (each ``save()`` in its own transaction) and runs the same
  three raw ``UPDATE`` statements of ``--update-rows`` products: median and p95 of each.
  The triggers and the slots are set up before their block and removed after it (not
  timed); the queue is emptied between blocks. ``wal_level = logical`` is the
  cluster's for all four.
- ``throughput``: for each of ``--servers`` and ``--documents``, ``--rounds`` paired
  rounds, who goes first alternating, each step on an index rebuilt just before (not
  timed; writing into the same index one after the other, osmem-server made the second
  step of a round 2x to 16x slower, whichever it was): ``stream``, a slot set up, every product updated
  by one ``UPDATE`` (not timed), then one ``stream --once`` (``follow()``) timed; and
  ``drain``, the products' triggers installed, the same ``UPDATE`` (queued by the
  triggers; then the triggers removed and the queue's table vacuumed, not timed), then
  one ``drain()`` timed. Documents per second, client CPU per 10,000 documents (the
  decoding of the log is PostgreSQL's, in the backend: not counted) and SQL statements,
  with drain's own helpers (``benchmarks/drain_benchmark.py``).
- ``lag``: for each of ``--rates`` changes a second, ``reindex stream products`` (the
  demo's definition, through the CLI) runs in a process of its own for ``--seconds``
  while this one writes, and then the same with ``reindex drain products --loop`` and
  the products' triggers (who goes first alternating with the rate): every 100 ms one
  transaction updates a run of products with one ``UPDATE`` and saves one product under
  a new name (a probe); a poller searches for each probe every 50 ms
  (``benchmarks/lag.py``): commit -> searchable, p50 and p99. Against osmem-server.
  Each consumer with its defaults (the stream polls every ``STREAM_POLL_INTERVAL``,
  0.2 s, when the log is idle; drain every ``QUEUE_POLL_INTERVAL``, 1 s). ``--profile DIR``
  runs each consumer under pyinstrument and writes its report there.

``--documents heavy`` is ``benchmarks.definitions.ProductRowsIndex`` (the sellers as
``Related`` rows), ``light`` ``ProductLightIndex``; ``--servers sink`` the do-nothing
endpoint of ``benchmarks/sink.py``, ``osmem`` the in-memory osmem-server. The private
cluster runs with ``fsync = off`` (a commit costs less than on a real server, so a
capture's share of a write looks larger). Figures are printed, never asserted.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from drain_benchmark import measured, paired, print_paired, run, run_child, timed_drain, vacuum_queue  # noqa: E402
from lag import LagProbes, searchable  # noqa: E402
from queue_benchmark import percentile  # noqa: E402
from rebuild import clear_server, seed_dataset, start_server  # noqa: E402

from scripts.logical_cluster import LogicalCluster  # noqa: E402

WAYS = ["none", "signals", "triggers", "stream"]
#: The demo's aliases whose changes a save of a product queues (its own and its category's count).
CAPTURED = ("products", "categories")


def load() -> list[float]:
    """The load averages over 1, 5 and 15 minutes, as ``uptime`` prints them."""
    return [round(n, 2) for n in os.getloadavg()]


def child(args: argparse.Namespace, url: str, step: str, *extra: Any) -> dict[str, Any]:
    """One step of this script in a process of its own (drain_benchmark's runner); its figures."""
    return run_child(args, url, step, *map(str, extra), script=__file__)


def throughput(args: argparse.Namespace, url: str, server: str, document: str) -> dict[str, Any]:
    """Paired rounds of ``stream --once`` and ``drain`` of the same changes; figures and ratios round by round."""
    args.document = document

    def rebuild(step: str) -> None:
        """A fresh index holding every document (not timed): osmem-server slowed a second wave of updates."""
        clear_server(url)
        run_child(args, url, "rebuild")

    print(f"throughput, {server}, {document} document:", file=sys.stderr)
    figures = paired(args, url, "stream", "drain", script=__file__, before=rebuild)
    return {"server": server, "document": document, **figures}


def lag(args: argparse.Namespace, url: str) -> list[dict[str, Any]]:
    """The lag of the stream and of drain --loop at each rate, who goes first alternating."""
    args.document = "heavy"
    clear_server(url)
    run_child(args, url, "rebuild")  # the demo's products alias, the same documents
    figures = []
    for n, per_second in enumerate(float(r) for r in args.rates.split(",")):
        for consumer in ["stream", "drain"] if n % 2 == 0 else ["drain", "stream"]:
            profile = f"{args.profile}/{consumer}-{per_second:g}.txt" if args.profile else ""
            figure = {"consumer": consumer, **child(args, url, "lag", consumer, args.seconds, per_second, profile)}
            print(f"lag: {figure}", file=sys.stderr)
            figures.append(figure)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--steps", default="writes,throughput,lag", help="writes, throughput, lag (comma-separated)")
    parser.add_argument("--write-rounds", type=int, default=8, help="writes: rounds of the four blocks")
    parser.add_argument("--saves", type=int, default=100, help="writes: saves per block")
    parser.add_argument("--update-rows", type=int, default=1000, help="writes: rows of each raw UPDATE")
    parser.add_argument("--rounds", type=int, default=3, help="throughput: paired rounds")
    parser.add_argument("--servers", default="sink,osmem", help="throughput: sink, osmem (comma-separated)")
    parser.add_argument("--documents", default="light,heavy", help="throughput: light, heavy (comma-separated)")
    parser.add_argument("--batch-size", type=int, default=0, help="BATCH_SIZE (default: the tool's)")
    parser.add_argument("--seconds", type=float, default=30, help="lag: how long the writes last")
    parser.add_argument("--rates", default="100,1000", help="lag: changes a second (comma-separated)")
    parser.add_argument("--profile", default="", help="lag: a folder for pyinstrument's report of each consumer")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the seeding may take")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.db, args.document = "postgres", "heavy"
    steps = args.steps.split(",")
    figures: dict[str, Any] = {}
    with LogicalCluster.start() as cluster:
        print(f"logical-decoding cluster on 127.0.0.1:{cluster.port}", file=sys.stderr)
        os.environ.update(PGHOST="127.0.0.1", PGPORT=str(cluster.port), PGUSER="postgres")
        seed_dataset(args)
        run_child(args, "http://127.0.0.1:9", "migrate")  # the queue's table
        if "writes" in steps:
            extra = (args.write_rounds, args.saves, args.update_rows)
            figures["writes"] = {**child(args, "http://127.0.0.1:9", "writes", *extra), "load": load()}
            print(f"writes: {json.dumps(figures['writes'])}", file=sys.stderr)
        for server in args.servers.split(",") if "throughput" in steps else []:
            process, url = start_server(server)
            try:
                for document in args.documents.split(","):
                    figures.setdefault("throughput", []).append(throughput(args, url, server, document))
            finally:
                stop_server(process)
        if "lag" in steps:
            process, url = start_server("osmem")
            try:
                figures["lag"] = lag(args, url)
            finally:
                stop_server(process)
    conditions = {
        "db": "PostgreSQL (private cluster, wal_level logical, fsync off)",
        "rows": args.rows,
        "batch_size": args.batch_size or "default",
        "cpus": os.cpu_count(),
        "load_at_end": load(),
    }
    if args.json:
        print(json.dumps({"conditions": conditions, "figures": figures}, indent=2))
        return
    print(", ".join(f"{k} {v}" for k, v in conditions.items()))
    report(figures)


def stop_server(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=60)


def report(figures: dict[str, Any]) -> None:
    """The figures as lines of text, each with its conditions."""
    if "writes" in figures:
        writes = figures["writes"]
        print(
            f"writes ({writes['rounds']} rounds; {writes['saves']} saves and {writes['updates']} UPDATEs of"
            f" {writes['update_rows']:,} rows a block; load {writes['load']}): median (p95) ms"
        )
        for way in WAYS:
            w = writes[way]
            print(
                f"  {way:<9} save {w['save_median_ms']:.2f} ({w['save_p95_ms']:.2f}),"
                f" UPDATE {w['update_median_ms']:.1f} ({w['update_p95_ms']:.1f})"
            )
    for t in figures.get("throughput", []):
        print(f"throughput, {t['server']}, {t['document']} document, load by round {[r['load'] for r in t['rounds']]}:")
        print_paired(t, "stream", "drain")
    for f in figures.get("lag", []):
        print(
            f"lag, {f['consumer']} at {f['changes_per_s']:,.0f} changes/s (load {f['load']}):"
            f" p50 {f['lag_p50_s']:.3f} s, p99 {f['lag_p99_s']:.3f} s, max {f['lag_max_s']:.3f} s,"
            f" {f['probes_found']} of {f['transactions']} probes found"
        )


# -- the measured steps, each in a process of its own ------------------------------------------


@contextmanager
def capturing(way: str) -> Iterator[None]:
    """Set up one way of capturing for a block of writes (not timed); take it away after."""
    import reindex
    from reindex.models import QueueEntry

    if way == "triggers":
        reindex.triggers_install(*CAPTURED)
    elif way == "stream":
        reindex.slot_setup(*CAPTURED)
    try:
        yield
    finally:
        if way == "triggers":
            reindex.triggers_remove(*CAPTURED)
        elif way == "stream":
            reindex.slot_drop(*CAPTURED)
        QueueEntry.objects.all().delete()
        vacuum_queue()


@contextmanager
def signals(way: str) -> Iterator[None]:
    """The signal handlers on for ``signals``, paused for every other way."""
    from reindex.capture import paused

    if way == "signals":
        yield
    else:
        with paused():
            yield


def step_writes(rounds: int, saves: int, update_rows: int) -> dict[str, Any]:
    """Rounds of the four blocks of writes, the order rotating; each block the same saves and UPDATEs."""
    from catalog.models import Product
    from django.db import connection, transaction

    pks = list(Product.objects.values_list("pk", flat=True))
    timings: dict[str, dict[str, list[float]]] = {way: {"save": [], "update": []} for way in WAYS}
    for n in range(rounds):
        for way in WAYS[n % len(WAYS) :] + WAYS[: n % len(WAYS)]:
            rng = random.Random(n)  # the same rows in each block of the round
            with capturing(way):
                for _ in range(saves):
                    product = Product.objects.get(pk=rng.choice(pks))
                    product.price = rng.randrange(100, 9999) / 100
                    started = time.perf_counter()
                    with signals(way), transaction.atomic():
                        product.save()
                    timings[way]["save"].append(time.perf_counter() - started)
                for _ in range(3):
                    chosen = rng.sample(pks, min(update_rows, len(pks)))
                    started = time.perf_counter()
                    with signals(way), transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute("UPDATE catalog_product SET price = price + 1 WHERE id = ANY(%s)", [chosen])
                    timings[way]["update"].append(time.perf_counter() - started)
    figures: dict[str, Any] = {"rounds": rounds, "saves": saves, "updates": 3, "update_rows": update_rows}
    for way, measured_ in timings.items():
        figures[way] = {
            f"{kind}_{name}_ms": 1000 * value
            for kind, values in measured_.items()
            for name, value in (("median", statistics.median(values)), ("p95", percentile(values, 95)))
        }
    return figures


def update_every_product() -> None:
    """One ``UPDATE`` of every product, committed (capture paused: the statement sends no signal anyway)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_product SET price = price + 1")


def step_stream(definition: Any, config: Any, client: Any) -> dict[str, Any]:
    """A fresh slot, every product updated, then one ``stream --once`` of it measured."""
    from reindex.stream.following import follow
    from reindex.stream.slots import drop, setup

    drop([definition], "default")
    setup([definition], "default")
    update_every_product()

    def work() -> tuple[int, int]:
        [streamed] = follow([definition], client, config, once=True)
        if streamed.error:
            raise SystemExit(streamed.error)
        return streamed.indexed + streamed.deleted, streamed.failed

    try:
        return measured(work)
    finally:
        drop([definition], "default")


def step_drain(definition: Any, config: Any, client: Any) -> dict[str, Any]:
    """Every product updated with the triggers queueing, then one ``drain`` of the queue measured."""
    from reindex.models import QueueEntry
    from reindex.queue.triggers import install, remove

    QueueEntry.objects.filter(alias=definition.alias).delete()
    install([definition], "default")
    try:
        update_every_product()
    finally:
        remove([definition.alias], "default")
    vacuum_queue()
    return timed_drain(definition, config, client)


def step_lag(client: Any, consumer: str, seconds: float, per_second: float, profile: str) -> dict[str, Any]:
    """``per_second`` changes a second for ``seconds`` with the stream or ``drain --loop`` running; the lag.

    ``profile``: where pyinstrument writes the consumer's profile (as text), if anywhere.
    """
    import reindex

    if consumer == "stream":
        reindex.slot_setup("products")
    else:
        reindex.triggers_install("products")
    command = {"stream": ["stream", "products"], "drain": ["drain", "products", "--loop"]}[consumer]
    profiler = ["-m", "pyinstrument", "-r", "text", "-o", profile] if profile else []
    follower = subprocess.Popen(
        [sys.executable, *profiler, "-m", "reindex", "--settings", "benchmarks.settings", "-q", *command],
        env=os.environ,
        cwd=ROOT,
    )
    try:
        figures = write_probes(client, seconds, per_second)
    finally:
        follower.terminate()
        follower.wait(timeout=60)
        if consumer == "stream":
            reindex.slot_drop("products")
        else:
            reindex.triggers_remove("products")
    return {**figures, "load": load()}


def write_probes(client: Any, seconds: float, per_second: float) -> dict[str, Any]:
    """Each 100 ms one transaction: an ``UPDATE`` of a run of products and a probe saved; the probes' lag."""
    from catalog.models import Product
    from django.db import connection, transaction

    from reindex.capture import paused

    pks = list(Product.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    tag, tick = uuid.uuid4().hex[:12], 0.1
    size = max(0, round(per_second * tick) - 1)  # the probe is the tick's last change

    def found(name: str) -> bool:
        return searchable(client, "products", name)

    def write(n: int, name: str) -> None:
        start = (n * (size + 1)) % max(1, len(pks) - size - 1)
        with paused(), transaction.atomic():
            with connection.cursor() as cursor:
                run_of = pks[start : start + size]
                cursor.execute("UPDATE catalog_product SET description = %s WHERE id = ANY(%s)", [name, run_of])
            probe = Product.objects.get(pk=pks[start + size])
            probe.name = name
            probe.save()

    write(0, f"lag warm-up {tag}")
    while not found(f"lag warm-up {tag}"):  # the consumer's start is not measured
        time.sleep(0.1)
    probes = LagProbes(found, interval=0.05)
    stop_at = probes.start(seconds)
    n, due = 0, time.monotonic()
    while due < stop_at:
        n += 1
        write(n, f"lag probe {tag} {n}")
        probes.written(f"lag probe {tag} {n}")
        due += tick
        time.sleep(max(0.0, due - time.monotonic()))
    probes.join()
    lags = probes.lags
    return {
        "transactions": n,
        "changes_per_s": n * (size + 1) / seconds,
        "probes_found": len(lags),
        "lag_p50_s": percentile(lags, 50),
        "lag_p99_s": percentile(lags, 99),
        "lag_max_s": max(lags),
    }


def steps_of(definition: Any, config: Any, client: Any, extra: list[str]) -> dict[str, Callable[[], dict[str, Any]]]:
    return {
        "writes": lambda: step_writes(int(extra[0]), int(extra[1]), int(extra[2])),
        "stream": lambda: step_stream(definition, config, client),
        "drain": lambda: step_drain(definition, config, client),
        "lag": lambda: step_lag(client, extra[0], float(extra[1]), float(extra[2]), extra[3]),
    }


if __name__ == "__main__":
    run(steps_of, main)
