"""Scale-out: documents/s of one process, ``--workers 2`` and the Celery executor with 1, 2 and 4 worker processes.

    python benchmarks/scaleout.py --rows 100000 --db sqlite --repeat 3
    python benchmarks/scaleout.py --rows 100000 --db postgres --broker rabbitmq --json

Every contender rebuilds ``benchmarks.definitions.ProductRowsIndex`` into the do-nothing
bulk endpoint (``benchmarks/sink.py``), so the figures are the client side's alone.
The Celery workers are started once, before the rounds, as a site's workers are always
running: one ``celery worker -c N`` per size, each serving a queue of its own. The
contenders run round by round (every one once, then again), and the speed-ups are
paired within a round. CPU is the coordinator's plus, for Celery, its workers'; on
PostgreSQL the database server's CPU is printed too.

The coordinator's overhead per range comes from one more contender: Celery with 2
processes and ranges of ``--small-ranges`` rows (many ranges) against the default
(8 ranges for 2 processes): the extra worker-seconds and CPU seconds, divided by the
extra ranges.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.rebuild import (  # noqa: E402  (the repository root first)
    add_document_option,
    clear_server,
    cpu_seconds,
    dataset_env,
    postgres_cpu_seconds,
    process_stats,
    run_contender,
    seed_dataset,
    start_server,
)

BROKERS = {"redis": "redis://127.0.0.1:6379/0", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//"}


@dataclass
class Contender:
    label: str
    name: str  # in benchmarks/contenders.py
    workers: int = 1
    pool: int = 0  # Celery worker processes (0: not Celery)
    range_size: int = 0

    def ranges(self, rows: int) -> int:
        from reindex.executors.ranges import range_count

        executor = "celery" if self.pool else ("processes" if self.workers > 1 else "local")
        return range_count(rows, executor, self.workers, self.range_size or 100_000)


def contenders(args: argparse.Namespace) -> list[Contender]:
    found = [Contender("one process", "reindex"), Contender("--workers 2", "reindex-workers", workers=2)]
    found += [Contender(f"celery, {n} process{'es' if n > 1 else ''}", "reindex-celery", n, n) for n in args.pools]
    probe = f"celery, 2 processes, {args.small_ranges:,}-row ranges"
    found.append(Contender(probe, "reindex-celery", 2, 2, args.small_ranges))
    return found


def start_pool(args: argparse.Namespace, url: str, processes: int) -> tuple[subprocess.Popen[bytes], str]:
    """A Celery worker with ``processes`` child processes on a queue of its own; waits until they are up."""
    queue = f"reindex-bench-{uuid.uuid4().hex[:10]}"
    env = dataset_env(args)
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.settings",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "example")]),
        REINDEX_ES_URL=url,
    )
    command = [sys.executable, "-m", "celery", "-A", "demo.celery", "worker", "-Q", queue, "-c", str(processes)]
    command += ["-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    worker = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sum(parent == worker.pid for _, parent, _, _ in process_stats().values()) < processes:
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit(f"the Celery worker with {processes} processes did not start")
        time.sleep(0.2)
    time.sleep(1)  # connected to the broker
    return worker, queue


def run_once(args: argparse.Namespace, contender: Contender, url: str, pool: Any) -> dict[str, Any]:
    extra = []
    worker_cpu = 0.0
    if pool is not None:
        worker, queue = pool
        extra = ["--queue", queue, "--range-size", str(contender.range_size)]
        worker_cpu = cpu_seconds(worker.pid)
    db_cpu = postgres_cpu_seconds() if args.db == "postgres" else 0.0
    run = run_contender(argparse.Namespace(**{**vars(args), "workers": contender.workers}), contender.name, url, extra)
    run["worker_cpu"] = cpu_seconds(pool[0].pid) - worker_cpu if pool is not None else 0.0
    run["db_cpu"] = postgres_cpu_seconds() - db_cpu if args.db == "postgres" else 0.0
    run["ranges"] = contender.ranges(args.rows)
    return run


def rate(run: dict[str, Any]) -> float:
    return float(run["docs"] / run["seconds"])


def paired(runs: dict[str, list[dict[str, Any]]], faster: str, slower: str) -> str:
    ratios = [rate(a) / rate(b) for a, b in zip(runs[faster], runs[slower], strict=False)]
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def overhead(runs: dict[str, list[dict[str, Any]]], many: Contender, few: Contender, rows: int) -> dict[str, float]:
    """Extra worker-seconds and CPU seconds per extra range, paired round by round."""
    extra_ranges = many.ranges(rows) - few.ranges(rows)
    walls, cpus, coordinator = [], [], []
    for a, b in zip(runs[many.label], runs[few.label], strict=False):
        walls.append((a["seconds"] - b["seconds"]) * many.pool / extra_ranges)
        cpus.append(((a["cpu"] + a["worker_cpu"]) - (b["cpu"] + b["worker_cpu"])) / extra_ranges)
        coordinator.append((a["cpu"] - b["cpu"]) / extra_ranges)
    return {
        "worker_ms_per_range": 1000 * statistics.median(walls),
        "cpu_ms_per_range": 1000 * statistics.median(cpus),
        "coordinator_cpu_ms_per_range": 1000 * statistics.median(coordinator),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--broker", choices=sorted(BROKERS), default="redis")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pools", type=lambda v: [int(n) for n in v.split(",")], default=[1, 2, 4])
    parser.add_argument("--small-ranges", type=int, default=2000, help="rows per range of the overhead probe")
    parser.add_argument("--batch-size", type=int, default=0)
    add_document_option(parser)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.max_chunk_bytes, args.compress, args.dedsl_python, args.workers = 0, False, None, 1

    everyone = contenders(args)
    if everyone[-1].ranges(args.rows) <= Contender("", "", 2, 2).ranges(args.rows):
        parser.error(f"--small-ranges {args.small_ranges} gives no more ranges than the default for 2 processes")
    if 2 not in args.pools:
        parser.error("--pools must include 2 (the overhead probe compares with it)")
    os.environ["CELERY_BROKER_URL"] = BROKERS[args.broker]  # for the workers and the coordinators
    os.environ["CELERY_BROKER_URL"] = BROKERS[args.broker]  # for the workers and the coordinators
    seed_dataset(args)
    server, url = start_server("sink")
    pools: dict[int, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {c.label: [] for c in everyone}
    try:
        for n in sorted({c.pool for c in everyone if c.pool}):
            pools[n] = start_pool(args, url, n)
        for i in range(args.repeat):
            for contender in everyone:
                clear_server(url)
                run = run_once(args, contender, url, pools.get(contender.pool))
                runs[contender.label].append(run)
                print(f"{contender.label} run {i + 1}: {rate(run):,.0f} docs/s", file=sys.stderr)
    finally:
        for worker, _ in pools.values():
            worker.terminate()
            worker.wait(timeout=60)
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    report(args, everyone, runs)


def report(args: argparse.Namespace, everyone: list[Contender], runs: dict[str, list[dict[str, Any]]]) -> None:
    rows = []
    for c in everyone:
        rates = [rate(r) for r in runs[c.label]]
        cpu = statistics.median(10_000 * (r["cpu"] + r["worker_cpu"]) / r["docs"] for r in runs[c.label])
        db_cpu = statistics.median(10_000 * r["db_cpu"] / r["docs"] for r in runs[c.label])
        over_one = paired(runs, c.label, everyone[0].label)
        figures = {"docs_per_s": statistics.median(rates), "min": min(rates), "max": max(rates), "cpu_s_per_10k": cpu}
        figures["db_cpu_s_per_10k"] = db_cpu
        figures["coordinator_cpu_s_per_10k"] = statistics.median(10_000 * r["cpu"] / r["docs"] for r in runs[c.label])
        rows.append({"contender": c.label, "ranges": c.ranges(args.rows), "docs": runs[c.label][0]["docs"], **figures})
        rows[-1]["over_one_process"] = over_one
    workers_2 = everyone[1].label
    celery_2 = next(c.label for c in everyone if c.pool == 2 and not c.range_size)
    probe = overhead(runs, everyone[-1], next(c for c in everyone if c.label == celery_2), args.rows)
    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
    summary = {
        "rows": args.rows, "db": args.db, "broker": args.broker, "machine": machine, "results": rows,
        "celery_2_over_workers_2": paired(runs, celery_2, workers_2), "overhead": probe,
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{args.rows:,} rows, {args.db}, broker {args.broker}, do-nothing endpoint, {args.repeat} rounds; {machine}")
    header = f"{'docs/s median (min-max)':>28}{'CPU s/10k':>11}{'db':>6}{'x one process':>22}"
    print(f"{'contender':<40}{'ranges':>7}{header}")
    for r in rows:
        spread = f"{r['docs_per_s']:,.0f} ({r['min']:,.0f}-{r['max']:,.0f})"
        cpu = f"{r['cpu_s_per_10k']:>11.2f}{r['db_cpu_s_per_10k']:>6.2f}"
        print(f"{r['contender']:<40}{r['ranges']:>7}{spread:>28}{cpu}{r['over_one_process']:>22}")
    print(f"celery with 2 processes over --workers 2, round by round: {summary['celery_2_over_workers_2']}")
    print(
        f"per range: {probe['worker_ms_per_range']:.1f} ms of a worker process, {probe['cpu_ms_per_range']:.1f} ms CPU "
        f"in all, {probe['coordinator_cpu_ms_per_range']:.1f} ms CPU of the coordinator"
    )


if __name__ == "__main__":
    main()
