"""A search page of 20 rows through ``reindex.search()`` against a hand-written view, same query, same server.

    python benchmarks/search_benchmark.py [--db sqlite|postgres] [--rows 5000] [--rounds 5] [--json]

Seeds the demo catalog (its own database: ``/tmp/reindex-search-bench.sqlite3`` or
``reindex_search_bench`` on PostgreSQL), starts an in-memory osmem-server, rebuilds
``products``, then renders the same pages both ways in paired rounds (the order of the
two alternating page by page): ``reindex.search()`` + ``Paginator``, and a raw client call +
``in_bulk()`` over the same queryset. Each page is timed from the request to the
rendered HTML; search requests and SQL queries are counted. Then the first page of a
query with 30% of its hits' rows deleted since the rebuild (rolled back after): how
many rows it holds both ways, and what the top-up cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "example")]

PER_PAGE = 20
QUERIES = ["teapot", "oak", "linen throw", "copper", "ceramic bowl", "lamp", "walnut board", "glass vase"]
PAGES = (1, 2, 3)
TEMPLATE = (
    "<ol>{% for p in rows %}<li>{{ p.name }} · {{ p.category.name }} · {{ p.price }}"
    "{% for s in p.sellers.all %} {{ s.name }}{% endfor %}</li>{% endfor %}</ol><p>{{ count }} found</p>"
)


def body_query(q: str) -> dict[str, Any]:
    return {"multi_match": {"query": q, "fields": ["name^3", "description"]}}


def through_reindex(q: str, number: int, template: Any) -> tuple[str, int]:
    """The page as a view using ``reindex.search()`` renders it; and the search requests it took."""
    from django.core.paginator import Paginator

    import reindex

    results = reindex.search("products", body_query(q), page=number)
    page = Paginator(results, PER_PAGE).page(number)
    html = template.render(_context({"rows": page.object_list, "count": page.paginator.count}))
    return html, results.searches


def by_hand(client: Any, q: str, number: int, template: Any) -> tuple[str, int]:
    """The page as a hand-written view renders it: one raw search, ``in_bulk()``, rows in hit order."""
    from catalog.indexes import ProductIndex

    answer = client.search(
        index="products",
        query=body_query(q),
        from_=(number - 1) * PER_PAGE,
        size=PER_PAGE,
        track_total_hits=10_000,
        source=False,
    )
    ids = [int(hit["_id"]) for hit in answer["hits"]["hits"]]
    found = ProductIndex().get_queryset().in_bulk(ids)
    rows = [found[pk] for pk in ids if pk in found]
    html = template.render(_context({"rows": rows, "count": answer["hits"]["total"]["value"]}))
    return html, 1


def _context(values: dict[str, Any]) -> Any:
    from django.template import Context

    return Context(values)


def timed(render: Callable[[], tuple[str, int]]) -> tuple[float, int, int, str]:
    """Seconds, search requests and SQL queries of one page; and its HTML."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        html, searches = render()
        seconds = time.perf_counter() - started
    return seconds, searches, len(queries.captured_queries), html


def paired_rounds(client: Any, rounds: int, template: Any) -> dict[str, Any]:
    """Every page both ways, one right after the other (who goes first alternates), ``rounds`` times."""
    ways = {
        "reindex.search": lambda q, n: through_reindex(q, n, template),
        "hand-written": lambda q, n: by_hand(client, q, n, template),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    totals: dict[str, list[float]] = {name: [] for name in ways}
    counts: dict[str, set[tuple[int, int]]] = {name: set() for name in ways}
    pairs = 0
    for _ in range(rounds):
        round_total = dict.fromkeys(ways, 0.0)
        for q in QUERIES:
            for number in PAGES:
                order = list(ways) if pairs % 2 == 0 else list(reversed(ways))
                pairs += 1
                for name in order:
                    took, searches, queries, html = timed(lambda way=ways[name], q=q, n=number: way(q, n))
                    assert html.count("<li>") == PER_PAGE, (name, q, number)
                    seconds[name].append(took)
                    counts[name].add((searches, queries))
                    round_total[name] += took
        for name, total in round_total.items():
            totals[name].append(total)
    ratios = [a / b for a, b in zip(totals["reindex.search"], totals["hand-written"], strict=True)]
    page_ratios = [a / b for a, b in zip(seconds["reindex.search"], seconds["hand-written"], strict=True)]
    return {
        "pages_per_round": len(QUERIES) * len(PAGES),
        "median_ms_per_page": {name: round(statistics.median(v) * 1000, 2) for name, v in seconds.items()},
        "round_totals_ms": {name: [round(t * 1000, 1) for t in v] for name, v in totals.items()},
        "ratio_per_round": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "median_ratio_of_pairs": round(statistics.median(page_ratios), 3),
        "searches_and_queries_per_page": {name: sorted(v) for name, v in counts.items()},
    }


def stale_page(client: Any, template: Any, repeat: int) -> dict[str, Any]:
    """The first page of a query after 30% of its first 60 hits' rows were deleted (rolled back after).

    Each way ``repeat`` times, alternating; the median time.
    """
    from catalog.models import Product
    from django.db import transaction

    q = "teapot"
    hits = client.search(index="products", query=body_query(q), size=60, source=False)["hits"]["hits"]
    doomed = [int(hit["_id"]) for position, hit in enumerate(hits) if position % 10 in (0, 3, 6)]
    report: dict[str, Any] = {"query": q, "deleted": f"{len(doomed)} of the first {len(hits)} hits (30%)"}
    ways = {
        "reindex.search": lambda: through_reindex(q, 1, template),
        "hand-written": lambda: by_hand(client, q, 1, template),
    }
    with transaction.atomic():
        Product.objects.filter(pk__in=doomed).delete()
        runs: dict[str, list[tuple[float, int, int, str]]] = {name: [] for name in ways}
        for _ in range(repeat):
            for name, render in ways.items():
                runs[name].append(timed(render))
        transaction.set_rollback(True)
    for name, measured in runs.items():
        _, searches, queries, html = measured[-1]
        report[name] = {
            "rows": html.count("<li>"),
            "searches": searches,
            "sql_queries": queries,
            "median_ms": round(statistics.median(run[0] for run in measured) * 1000, 2),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ["REINDEX_BENCH_DB"] = args.db
    os.environ.setdefault("REINDEX_BENCH_SQLITE", "/tmp/reindex-search-bench.sqlite3")
    os.environ.setdefault("REINDEX_BENCH_PG_NAME", "reindex_search_bench")
    os.environ.pop("REINDEX_ES_URL", None)

    from osmem_server import OsmemServer

    from benchmarks import contenders

    server = OsmemServer.start(japanese=False)
    try:
        os.environ["REINDEX_ES_URL"] = server.url
        contenders.setup_settings_only()
        import django

        django.setup()
        contenders.create_database()
        seeded = contenders.seed(args.rows)
        from django.template import Engine

        import reindex

        reindex.rebuild("products")
        client = contenders.client(server.url)
        template = Engine().from_string(TEMPLATE)
        for q in QUERIES:  # warm both paths (the client's connection, Django's first queries)
            through_reindex(q, 1, template)
            by_hand(client, q, 1, template)
        report = {
            "db": args.db,
            "rows": args.rows,
            "seeded": seeded,
            "server": "osmem-server (in memory), loopback",
            "python": sys.version.split()[0],
            "rounds": args.rounds,
            "paired": paired_rounds(client, args.rounds, template),
            "stale_page": stale_page(client, template, args.rounds),
        }
    finally:
        server.close()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    paired, stale = report["paired"], report["stale_page"]
    print(f"{args.db}, {args.rows} products, {args.rounds} paired rounds of {paired['pages_per_round']} pages")
    for name, ms in paired["median_ms_per_page"].items():
        print(f"  {name:15} median {ms:6.2f} ms a page; (searches, SQL queries) a page: "
              f"{paired['searches_and_queries_per_page'][name]}")  # fmt: skip
    print(f"  reindex.search / hand-written, each round: {paired['ratio_per_round']} (median {paired['median_ratio']})")
    print(f"  median of the {args.rounds * paired['pages_per_round']} pages' ratios: {paired['median_ratio_of_pairs']}")
    print(f"stale page ({stale['deleted']} deleted):")
    for name in ("reindex.search", "hand-written"):
        figures = stale[name]
        print(f"  {name:15} {figures['rows']} rows, {figures['searches']} searches, "
              f"{figures['sql_queries']} SQL queries, median {figures['median_ms']} ms")  # fmt: skip


if __name__ == "__main__":
    main()
