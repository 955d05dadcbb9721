"""What one poll of the health endpoint costs: requests to the search server, SQL queries, milliseconds.

    python benchmarks/health_benchmark.py --db sqlite --rows 10000 --polls 30

The demo catalog's dataset (``benchmarks/contenders.py seed``: products and categories),
both aliases rebuilt into osmem-server (in memory, on this machine) behind a recording
HTTP proxy (``tests/httpproxy.py``). Each poll calls the endpoint's view (``reindex.views.health``)
in this process, as Django serves ``GET /reindex/health``: the requests the proxy saw and
the SQL statements Django executed, per poll; then the wall time of as many polls
straight to the server (no proxy hop); once with the default
``HEALTH_VERIFY_SAMPLE`` (100) and once with 0 (no sampled verify). Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from rebuild import dataset_env, seed_dataset, start_server  # noqa: E402  (the rebuild benchmark's datasets)


def polls(count: int, sample: int) -> dict[str, Any]:
    """Poll the view ``count`` times with ``HEALTH_VERIFY_SAMPLE = sample``: once through the recording proxy
    (requests, queries), once straight to the server (milliseconds, without the proxy's own hop)."""
    from django.conf import settings
    from django.db import connection
    from django.test import RequestFactory

    from reindex.views import health
    from tests.httpproxy import HttpProxy

    settings.REINDEX = {**settings.REINDEX, "HEALTH_VERIFY_SAMPLE": sample}
    upstream = os.environ["REINDEX_ES_URL"]
    requests, queries, ms, statuses = [], [], [], set()
    executed = [0]

    def counted(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed[0] += 1
        return execute(sql, params, many, context)

    with HttpProxy(upstream) as proxy, connection.execute_wrapper(counted):
        os.environ["REINDEX_ES_URL"] = proxy.url
        try:
            for _ in range(count):
                before, executed[0] = len(proxy.requests), 0
                statuses.add(health(RequestFactory().get("/reindex/health")).status_code)
                requests.append(len(proxy.requests) - before)
                queries.append(executed[0])
        finally:
            os.environ["REINDEX_ES_URL"] = upstream
    for _ in range(count):
        started = time.perf_counter()
        statuses.add(health(RequestFactory().get("/reindex/health")).status_code)
        ms.append((time.perf_counter() - started) * 1000)
    return {
        "verify_sample": sample,
        "statuses": sorted(statuses),
        "requests": statistics.median(requests),
        "queries": statistics.median(queries),
        "ms_median": round(statistics.median(ms), 1),
        "ms_p95": round(statistics.quantiles(ms, n=20)[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the seeding may take")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seed_dataset(args)
    server, url = start_server("osmem")
    os.environ.update(dataset_env(args), REINDEX_ES_URL=url, DJANGO_SETTINGS_MODULE="benchmarks.settings")
    sys.path[:0] = [str(ROOT), str(ROOT / "example")]
    import django

    django.setup()
    from django.core.management import call_command

    import reindex

    try:
        call_command("migrate", verbosity=0)
        reindex.rebuild()
        results = [polls(args.polls, sample) for sample in (100, 0)]
    finally:
        server.terminate()
    if args.json:
        print(json.dumps(results))
        return
    print(f"{args.db}, {args.rows} products, {len(reindex.definitions())} aliases, {args.polls} polls each")
    print("verify_sample  status  requests  queries  ms median  ms p95")
    for r in results:
        print(
            f"{r['verify_sample']:>13}  {'/'.join(map(str, r['statuses'])):>6}  {r['requests']:>8g}  "
            f"{r['queries']:>7g}  {r['ms_median']:>9}  {r['ms_p95']:>6}"
        )


if __name__ == "__main__":
    main()
