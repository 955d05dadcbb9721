"""Rebuild throughput, CPU, memory and SQL queries of reindex and its peers, side by side.

    python benchmarks/rebuild.py --rows 100000 --db sqlite --server sink
    python benchmarks/rebuild.py --rows 100000 --db postgres --server osmem --json

Contenders (each run in its own process; several repetitions, median and min-max):

- ``reindex``: ``rebuild()`` with the defaults of ``benchmarks.definitions.ProductRowsIndex``,
  the products written the way the README recommends for large tables (the heavy
  document; ``--document light`` or ``derived`` picks another for this contender and
  the next two);
- ``reindex-workers``: the same with ``--workers N`` (``reindex-celery``: in
  ``benchmarks/scaleout.py``);
- ``reindex-light``: the light document (no sellers) of ``ProductLightIndex``;
- ``reindex-orm``: the heavy document with its rows read through the ORM's iterator;
- ``main``, ``main-light``: the heavy and light documents with the reindex code of
  ``--baseline DIR`` (a checkout of an earlier commit, e.g. ``git archive main``), the
  sellers fetched by hand in ``load_batch()`` as that code recommended;
- ``reindex-models``: the demo's ``catalog.indexes.ProductIndex`` (model instances);
- ``raw``: a hand-written script: ``values()`` rows built into dicts, ``helpers.bulk``;
- ``dbapi``, ``dbapi-light``: a hand-written script on the DB-API cursor building the
  same documents, one NDJSON body per batch (``benchmarks/handwritten.py``);
- ``ceiling``: bulk bodies serialised beforehand, only the sending timed;
- ``ceiling-helper``: the same documents sent through ``helpers.streaming_bulk``;
- ``django-elasticsearch-dsl``: its ``search_index --rebuild`` (with ``--dedsl-python``,
  the interpreter of a virtualenv that has django-elasticsearch-dsl and elasticsearch 9.3).

``--server sink`` sends to ``benchmarks/sink.py``, which accepts bulk requests and
stores nothing, so the figures are the client's own; ``--server osmem`` measures end
to end against an in-memory osmem-server. Every run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = [
    "reindex",
    "reindex-light",
    "reindex-orm",
    "main",
    "main-light",
    "reindex-workers",
    "reindex-models",
    "raw",
    "dbapi",
    "dbapi-light",
    "ceiling",
    "ceiling-helper",
    "django-elasticsearch-dsl",
]
#: Rates compared round by round when both contenders ran: (faster, slower).
PAIRS = [
    ("reindex", "main"),
    ("reindex-light", "main-light"),
    ("reindex", "dbapi"),
    ("reindex-light", "dbapi-light"),
    ("reindex", "reindex-orm"),
    ("reindex-workers", "reindex"),
    ("ceiling", "ceiling-helper"),
]
SERVERS = {
    "sink": [str(ROOT / "benchmarks" / "sink.py")],
    "store": [str(ROOT / "benchmarks" / "store.py")],
    "osmem": ["-m", "reindex.testserver"],
}


def start_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    """Start the sink, the store or osmem-server; it stops when its stdin closes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, *SERVERS[kind]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def dataset_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment that selects the database: one per engine and size, seeded once and kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS")}
    env.update(
        REINDEX_BENCH_DB=args.db,
        REINDEX_BENCH_SQLITE=f"{tempfile.gettempdir()}/reindex-bench-{args.rows}.sqlite3",
        REINDEX_BENCH_PG_NAME=f"reindex_bench_{args.rows}",
    )
    return env


def seed_dataset(args: argparse.Namespace) -> None:
    """Create and fill the dataset of ``args.rows`` rows unless it is there already (contenders.py seed)."""
    seeding = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "contenders.py"), "seed", "--rows", str(args.rows)],
        env=dataset_env(args),
        capture_output=True,
        text=True,
        timeout=args.timeout,
    )
    if seeding.returncode:
        raise SystemExit(f"seeding failed:\n{seeding.stderr[-3000:]}")
    print(f"dataset: {seeding.stdout.strip()}", file=sys.stderr)


def add_document_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--document",
        choices=["heavy", "light", "derived"],
        default="heavy",
        help="the document of reindex, reindex-workers and reindex-celery: heavy (the catalog's), light (no"
        " sellers) or derived (heavy plus fields built in prepare())",
    )


def contender_env(args: argparse.Namespace, url: str, query_log: str, name: str) -> dict[str, str]:
    env = dataset_env(args)
    env.update(REINDEX_BENCH_QUERY_LOG=query_log, REINDEX_ES_URL=url)
    if args.compress:
        env["REINDEX_BENCH_COMPRESS"] = "1"
    env["REINDEX_BENCH_DOCUMENT"] = args.document
    if name == "django-elasticsearch-dsl":
        env["REINDEX_BENCH_DEDSL"] = "1"
    if name.startswith("main"):
        env["REINDEX_BENCH_CODE"] = str(Path(args.baseline).resolve())
    return env


def process_stats() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (command, parent pid, CPU ticks used, CPU ticks of its reaped children), from /proc."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        command = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        used, reaped = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
        stats[int(stat.parent.name)] = (command, int(fields[1]), used, reaped)
    return stats


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by a process and its descendants (Linux)."""
    tree, ticks = {pid}, 0
    for child, (_, parent, used, _) in sorted(process_stats().items()):
        if child in tree or parent in tree:
            tree.add(child)
            ticks += used
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by the local PostgreSQL server: its live processes and the backends it reaped."""
    stats = process_stats()
    ticks = 0
    for command, parent, used, reaped in stats.values():
        if command.startswith("postgres"):
            ticks += used
            if not stats.get(parent, ("",))[0].startswith("postgres"):  # the postmaster
                ticks += reaped
    return ticks / os.sysconf("SC_CLK_TCK")


def run_contender(args: argparse.Namespace, name: str, url: str, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One run of one contender in a fresh process: its figures plus the SQL queries of all its processes.

    ``extra``: more options for ``contenders.py`` (``--queue``, ``--range-size``).
    """
    python = args.dedsl_python if name == "django-elasticsearch-dsl" else sys.executable
    with tempfile.NamedTemporaryFile("r", suffix=".queries") as log:
        command = [python, str(ROOT / "benchmarks" / "contenders.py"), name, "--url", url, *extra]
        command += ["--workers", str(args.workers), "--batch-size", str(args.batch_size)]
        command += ["--max-chunk-bytes", str(args.max_chunk_bytes)]
        done = subprocess.run(
            command, env=contender_env(args, url, log.name, name), capture_output=True, text=True, timeout=args.timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        figures["queries"] = sum(int(line) for line in log.read().split())
    return figures


def clear_server(url: str) -> None:
    """Drop what the previous run left, so that osmem-server's memory does not pile up."""
    sys.path.insert(0, str(ROOT))
    from reindex.config import Config
    from reindex.server.connection import Connection

    es = Connection(Config(hosts=(url,))).client()
    for pattern in ("products*", "bench-*"):
        es.options(ignore_status=404).indices.delete(index=pattern, expand_wildcards="all")


def summarise(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["docs"] / r["seconds"] for r in runs]
    return {
        "contender": name,
        "docs": runs[0]["docs"],
        "docs_per_s": statistics.median(rates),
        "docs_per_s_min": min(rates),
        "docs_per_s_max": max(rates),
        "cpu_s_per_10k": statistics.median(10_000 * r["cpu"] / r["docs"] for r in runs),
        # How many cores the client kept busy: what is left for --workers to take.
        "cores": statistics.median(r["cpu"] / r["seconds"] for r in runs),
        "server_cpu_s_per_10k": statistics.median(10_000 * r["server_cpu"] / r["docs"] for r in runs),
        "db_cpu_s_per_10k": statistics.median(10_000 * r["db_cpu"] / r["docs"] for r in runs),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "child_rss_mb": max(r["child_rss_mb"] for r in runs),
        "queries": statistics.median(r["queries"] for r in runs),
        "runs": runs,
    }


def speedup(runs: dict[str, list[dict[str, Any]]], faster: str, slower: str) -> dict[str, float] | None:
    """``faster``'s rate over ``slower``'s, round by round (runs of one round ran back to back)."""
    pairs = list(zip(runs.get(faster, []), runs.get(slower, []), strict=False))  # a failed contender stops early
    if not pairs:
        return None
    return spread([(a["docs"] / a["seconds"]) / (b["docs"] / b["seconds"]) for a, b in pairs])


def spread(ratios: list[float]) -> dict[str, float]:
    """The median of ratios taken round by round, and their range."""
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def ratio_line(name: str, ratio: dict[str, float]) -> str:
    """``name, round by round: 0.57x (0.49-0.69)``: a ``spread()`` as the benchmarks print it."""
    return f"{name}, round by round: {ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})"


def table(rows: list[dict[str, Any]]) -> str:
    raw = next((r["docs_per_s"] for r in rows if r["contender"] == "raw"), None)
    lines = [
        f"{'contender':<26}{'docs/s median (min-max)':>28}{'x raw':>7}{'CPU s/10k':>11}{'cores':>7}"
        f"{'server':>8}{'db':>6}{'RSS MB':>8}{'child RSS':>10}{'SQL':>8}"
    ]
    for r in rows:
        spread = f"{r['docs_per_s']:,.0f} ({r['docs_per_s_min']:,.0f}-{r['docs_per_s_max']:,.0f})"
        ratio = f"{r['docs_per_s'] / raw:.2f}" if raw else "-"
        child = f"{r['child_rss_mb']:.0f}" if r["child_rss_mb"] else "-"
        lines.append(
            f"{r['contender']:<26}{spread:>28}{ratio:>7}{r['cpu_s_per_10k']:>11.2f}{r['cores']:>7.2f}"
            f"{r['server_cpu_s_per_10k']:>8.2f}"
            f"{r['db_cpu_s_per_10k']:>6.2f}{r['rss_mb']:>8.0f}{child:>10}{r['queries']:>8.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--server", choices=list(SERVERS), default="sink")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    add_document_option(parser)
    parser.add_argument("--batch-size", type=int, default=0, help="override the contenders' batch size")
    parser.add_argument("--max-chunk-bytes", type=int, default=0, help="override reindex's bytes per request")
    parser.add_argument("--compress", action="store_true", help="gzip request bodies (the client's http_compress)")
    parser.add_argument(
        "--contenders", default="reindex,reindex-models,raw,ceiling", help=f"comma-separated: {CONTENDERS}"
    )
    parser.add_argument("--dedsl-python", help="python of a venv with django-elasticsearch-dsl (adds it)")
    parser.add_argument("--baseline", help="a checkout of earlier reindex code, for the main contenders")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    names = [n for n in args.contenders.split(",") if n]
    if args.dedsl_python and "django-elasticsearch-dsl" not in names:
        names.append("django-elasticsearch-dsl")
    unknown = set(names) - set(CONTENDERS)
    if unknown or ("django-elasticsearch-dsl" in names and not args.dedsl_python):
        parser.error(
            f"unknown contenders {sorted(unknown)}" if unknown else "django-elasticsearch-dsl needs --dedsl-python"
        )
    if any(name.startswith("main") for name in names) and not args.baseline:
        parser.error("the main contenders need --baseline DIR")

    seed_dataset(args)
    server, url = start_server(args.server)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    failed: set[str] = set()
    try:
        # Round by round, so that a slow spell of a shared machine hits every contender alike.
        for i in range(args.repeat):
            for name in names:
                if name in failed:
                    continue
                clear_server(url)
                server_cpu = cpu_seconds(server.pid)
                db_cpu = postgres_cpu_seconds() if args.db == "postgres" else 0.0
                try:
                    run = run_contender(args, name, url)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(exc, file=sys.stderr)  # the other contenders still count
                    failed.add(name)
                    continue
                run["server_cpu"] = cpu_seconds(server.pid) - server_cpu
                run["db_cpu"] = postgres_cpu_seconds() - db_cpu if args.db == "postgres" else 0.0
                runs[name].append(run)
                print(f"{name} run {i + 1}: {run['docs'] / run['seconds']:,.0f} docs/s", file=sys.stderr)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    results = [summarise(name, runs[name]) for name in names if runs[name]]
    paired = {f"{a} / {b}": ratio for a, b in PAIRS if (ratio := speedup(runs, a, b))}
    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
    if args.json:
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "db": args.db,
                    "server": args.server,
                    "document": args.document,
                    "machine": machine,
                    "results": results,
                    "paired": paired,
                },
                indent=2,
            )
        )
    else:
        print(
            f"{args.rows:,} rows, {args.document} document, {args.db}, server {args.server},"
            f" {args.repeat} runs each; {machine}"
        )
        print(table(results))
        for pair, ratio in paired.items():
            print(ratio_line(pair, ratio))


if __name__ == "__main__":
    main()
