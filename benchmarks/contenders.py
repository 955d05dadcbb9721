"""One benchmark contender in its own process, so that its CPU and peak RSS are its own.

``python benchmarks/contenders.py NAME --url URL`` indexes the catalog's products and
prints one JSON line: documents, seconds, client CPU seconds, peak RSS. ``seed``
fills the benchmark database instead. ``rebuild.py`` runs these; see there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS: dict[str, Callable[[Any, argparse.Namespace], int]] = {}


def contender(name: str) -> Callable[[Callable[[Any, argparse.Namespace], int]], Any]:
    def register(f: Callable[[Any, argparse.Namespace], int]) -> Any:
        CONTENDERS[name] = f
        return f

    return register


def setup_settings_only() -> None:
    if str(ROOT) not in sys.path:
        sys.path[:0] = [str(ROOT), str(ROOT / "example")]
    baseline = os.environ.get("REINDEX_BENCH_CODE")
    if baseline:  # the "main" contenders: the reindex package of another checkout, these benchmarks
        import_package("reindex", Path(baseline) / "reindex")
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"


def import_package(name: str, directory: Path) -> None:
    """Import package ``name`` from ``directory``, whatever ``sys.path`` would find first."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        name, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def setup() -> None:
    setup_settings_only()
    import django

    django.setup()


def client(url: str) -> Any:
    from reindex.config import Config
    from reindex.server.connection import Connection

    return Connection(Config.load(es_url=url)).client()


def create_database() -> None:
    """Create the PostgreSQL database of this dataset if it does not exist yet."""
    from django.conf import settings

    config = settings.DATABASES["default"]
    if config["ENGINE"] != "django.db.backends.postgresql":
        return
    import psycopg

    params = {"host": config["HOST"], "port": config["PORT"], "user": config["USER"], "dbname": "postgres"}
    with psycopg.connect(**params, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{config["NAME"]}"')


def seed(rows: int) -> dict[str, Any]:
    """Migrate, and generate ``rows`` products unless the database holds them already.

    Then ANALYZE, as a live database would have been: without statistics PostgreSQL
    plans the keyset queries of a freshly loaded table badly.
    """
    from catalog.models import Product, Seller
    from catalog.seed import date_back, generate
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if Product.objects.count() == rows and Seller.objects.count() == 50:
        report: dict[str, Any] = {"seeded": False, "rows": rows}
    else:
        result = generate(products=rows, categories=20, sellers=50, seed=42, flush=True)
        report = {"seeded": True, "rows": rows, "seconds": round(result.seconds, 1)}
        # Saved a day ago: rows saved within UPDATE_OVERLAP of a rebuild's start are read
        # again by its catch-up, which would double the first contender's work.
        date_back(days=1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return report


@contender("reindex")
def reindex_defaults(es: Any, args: argparse.Namespace) -> int:
    """``reindex rebuild`` with its defaults, the definition written as the README recommends."""
    return run_rebuild(es, args, rows_definition())


def rows_definition() -> str:
    """The ``values()`` definition of the document the run measures (``--document``)."""
    names = {"heavy": "ProductRowsIndex", "light": "ProductLightIndex", "derived": "DerivedProductRowsIndex"}
    return f"benchmarks.definitions.{names[os.environ.get('REINDEX_BENCH_DOCUMENT', 'heavy')]}"


@contender("reindex-workers")
def reindex_workers(es: Any, args: argparse.Namespace) -> int:
    """The same with ``--workers N``."""
    return run_rebuild(es, args, rows_definition(), workers=args.workers)


@contender("reindex-celery")
def reindex_celery(es: Any, args: argparse.Namespace) -> int:
    """The same with ``--executor celery`` (ranges for ``--workers N`` processes) on workers started beforehand."""
    options: dict[str, Any] = {"executor": "celery", "celery_queue": args.queue, "workers": args.workers}
    if args.range_size:
        options["range_size"] = args.range_size
    return run_rebuild(es, args, rows_definition(), **options)


@contender("reindex-light")
def reindex_light(es: Any, args: argparse.Namespace) -> int:
    """The light document (the product's columns and category, no sellers)."""
    return run_rebuild(es, args, "benchmarks.definitions.ProductLightIndex")


@contender("reindex-orm")
def reindex_orm(es: Any, args: argparse.Namespace) -> int:
    """The heavy document with its rows read through the ORM's iterator (``cursor_reads = False``)."""
    return run_rebuild(es, args, "benchmarks.definitions.ProductOrmReadsIndex")


@contender("main")
def main_code(es: Any, args: argparse.Namespace) -> int:
    """The code of ``--baseline`` (e.g. before the cursor reads): the heavy document, sellers by ``load_batch()``."""
    return run_rebuild(es, args, "benchmarks.definitions.ProductLoadBatchIndex")


@contender("main-light")
def main_light(es: Any, args: argparse.Namespace) -> int:
    """The code of ``--baseline``: the light document."""
    return run_rebuild(es, args, "benchmarks.definitions.ProductLightIndex")


@contender("dbapi")
def dbapi(es: Any, args: argparse.Namespace) -> int:
    """A hand-written script: the heavy documents from the DB-API cursor, one NDJSON body per batch."""
    from benchmarks.handwritten import send_bodies

    return send_bodies(es, "bench-dbapi", args.batch_size or 1000, light=False)


@contender("dbapi-light")
def dbapi_light(es: Any, args: argparse.Namespace) -> int:
    """The same script building the light documents."""
    from benchmarks.handwritten import send_bodies

    return send_bodies(es, "bench-dbapi-light", args.batch_size or 1000, light=True)


@contender("reindex-models")
def reindex_models(es: Any, args: argparse.Namespace) -> int:
    """``reindex rebuild`` of the demo's model-instance definition (select/prefetch_related)."""
    return run_rebuild(es, args, "catalog.indexes.ProductIndex")


def run_rebuild(es: Any, args: argparse.Namespace, path: str, **options: Any) -> int:
    from django.utils.module_loading import import_string

    from reindex.config import Config
    from reindex.operations.rebuilding import rebuild

    definition = import_string(path)()
    config = Config.load(es_url=args.url, **options, **rebuild_options(args))
    return rebuild(definition, es, config).indexed


def rebuild_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {}
    if args.batch_size:
        options["batch_size"] = args.batch_size
    if args.max_chunk_bytes:
        options["max_chunk_bytes"] = args.max_chunk_bytes
    return options


def raw_documents(index: str) -> Iterator[dict[str, Any]]:
    """A hand-written script's documents: one values() query for products, one for the links."""
    from catalog.models import Product, Seller

    sellers = {
        s["pk"]: {"id": s["pk"], "name": s["name"], "country": s["country"]}
        for s in Seller.objects.values("pk", "name", "country")
    }
    links = Product.sellers.through.objects.order_by("product_id", "pk").values_list("product_id", "seller_id")
    link_iter = iter(links.iterator(chunk_size=5000))
    pending = next(link_iter, None)
    columns = ["pk", "name", "description", "price", "sku", "in_stock", "category_id", "category__name"]
    for row in Product.objects.order_by("pk").values(*columns, "created_at", "updated_at").iterator(chunk_size=5000):
        offered = []
        while pending is not None and pending[0] <= row["pk"]:
            if pending[0] == row["pk"]:
                offered.append(sellers[pending[1]])
            pending = next(link_iter, None)
        yield {
            "_index": index,
            "_id": str(row["pk"]),
            "_source": {
                "name": row["name"],
                "description": row["description"],
                "price": float(row["price"]),
                "sku": str(row["sku"]),
                "in_stock": row["in_stock"],
                "category": {"id": row["category_id"], "name": row["category__name"]},
                "sellers": offered,
                "created_at": row["created_at"].isoformat(),
                "updated_at": row["updated_at"].isoformat(),
            },
        }


def create_bench_index(es: Any, name: str) -> None:
    from catalog.indexes import ProductIndex

    definition = ProductIndex()
    es.options(ignore_status=404).indices.delete(index=name)
    es.indices.create(index=name, settings=definition.get_settings(), mappings=definition.get_mappings())


@contender("raw")
def raw(es: Any, args: argparse.Namespace) -> int:
    """The raw ceiling: values() rows built into dicts, sent with ``helpers.bulk``."""
    from elasticsearch.helpers import bulk

    indexed, _ = bulk(es, raw_documents("bench-raw"), chunk_size=args.batch_size or 1000, stats_only=True)
    return int(indexed)


@contender("ceiling")
def ceiling(es: Any, args: argparse.Namespace) -> Any:
    """The server's ceiling: documents serialised into bulk bodies beforehand (not timed), then sent."""
    from reindex.definitions.documents import dumps

    size = args.batch_size or 1000
    lines = [
        b"".join((dumps({"index": {"_index": a["_index"], "_id": a["_id"]}}), b"\n", dumps(a["_source"]), b"\n"))
        for a in raw_documents("bench-ceiling")
    ]
    bodies = [b"".join(lines[i : i + size]) for i in range(0, len(lines), size)]

    def send() -> int:
        sent = 0
        for body in bodies:
            answer = es.bulk(body=body)
            sent += sum(1 for item in answer["items"] if item["index"]["status"] < 300)
        return sent

    return send  # timed by the caller


@contender("ceiling-helper")
def ceiling_helper(es: Any, args: argparse.Namespace) -> Any:
    """The same documents serialised beforehand, sent through ``helpers.streaming_bulk`` (as reindex did)."""
    from elasticsearch.helpers import streaming_bulk

    from reindex.definitions.documents import dumps

    actions = [
        ({"index": {"_index": a["_index"], "_id": a["_id"]}}, dumps(a["_source"]))
        for a in raw_documents("bench-ceiling-helper")
    ]

    def send() -> int:
        sent = 0
        for ok, _ in streaming_bulk(
            es,
            actions,  # type: ignore[arg-type]
            chunk_size=args.batch_size or 1000,
            expand_action_callback=lambda action: action,  # already split
            raise_on_error=True,
        ):
            sent += ok
        return sent

    return send  # timed by the caller


@contender("django-elasticsearch-dsl")
def dedsl(es: Any, args: argparse.Namespace) -> int:
    """django-elasticsearch-dsl's ``search_index --rebuild``, its queryset prefetching set up."""
    from django.core.management import call_command

    call_command("search_index", "--rebuild", "-f", "--models", "catalog.Product", verbosity=0)
    es.indices.refresh(index="products-dedsl")
    return int(es.count(index="products-dedsl")["count"])


def measure(work: Callable[[], Any]) -> dict[str, Any]:
    """Run ``work``; wall and CPU seconds (children included), peak RSS."""
    before, started = os.times(), time.perf_counter()
    docs = work()
    if callable(docs):  # preparation done: time only what it returns
        before, started = os.times(), time.perf_counter()
        docs = docs()
    seconds, after = time.perf_counter() - started, os.times()
    cpu = sum(after[:4]) - sum(before[:4])
    return {
        "docs": docs,
        "seconds": seconds,
        "cpu": cpu,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=["seed", *CONTENDERS])
    parser.add_argument("--url", default="")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--max-chunk-bytes", type=int, default=0)
    parser.add_argument("--queue", default="reindex", help="reindex-celery: the workers' queue")
    parser.add_argument("--range-size", type=int, default=0, help="reindex-celery: rows per range at most")
    args = parser.parse_args()
    if args.name == "seed":
        setup_settings_only()
        create_database()
    setup()
    if args.name == "seed":
        print(json.dumps(seed(args.rows)))
        return
    es = client(args.url)
    if args.name in ("raw", "ceiling", "ceiling-helper", "dbapi", "dbapi-light"):
        create_bench_index(es, f"bench-{args.name}")
    print(json.dumps(measure(lambda: CONTENDERS[args.name](es, args))))


if __name__ == "__main__":
    main()
