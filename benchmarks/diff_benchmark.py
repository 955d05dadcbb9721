"""How long ``reindex diff`` takes on a large mapping: reading it back, normalising, comparing.

    python benchmarks/diff_benchmark.py [--fields 2000]

Starts an in-memory osmem-server, creates one index with the generated mapping,
and prints the time of each step (best of five). Needs the ``dev`` extra.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from reindex.config import Config
from reindex.definitions.mappings import compare_mappings, compare_settings, field_paths, fingerprint
from reindex.server.connection import Connection
from reindex.server.drift import live_definition

TYPES = [
    {"type": "keyword", "ignore_above": 256},
    {"type": "text", "analyzer": "simple", "fields": {"raw": {"type": "keyword"}}},
    {"type": "long"},
    {"type": "date", "format": "yyyy-MM-dd"},
    {"type": "scaled_float", "scaling_factor": 100},
]


def large_mapping(fields: int) -> dict[str, Any]:
    """About ``fields`` leaf fields, some inside nested objects of ten."""
    properties: dict[str, Any] = {}
    for i in range(fields * 9 // 10):
        properties[f"f{i}"] = dict(TYPES[i % len(TYPES)])
    for group in range(min(fields // 100, 40)):  # the server allows 50 nested fields
        inner = {f"g{j}": dict(TYPES[j % len(TYPES)]) for j in range(10)}
        properties[f"n{group}"] = {"type": "nested", "properties": inner}
    return {"dynamic": "strict", "properties": properties}


def best_of(runs: int, step: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    from osmem_server import OsmemServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=2000)
    args = parser.parse_args()
    server = OsmemServer.start(japanese=False)
    try:
        client = Connection(Config(hosts=(server.url,))).client()
        settings = {"number_of_shards": 1, "refresh_interval": "30s", "mapping.total_fields.limit": 100_000}
        mappings = large_mapping(args.fields)
        client.indices.create(index="bench", settings=settings, mappings=mappings)
        live_mappings, live_settings = live_definition(client, "bench")
        known = field_paths(mappings)
        figures = {
            "read live definition": best_of(5, lambda: live_definition(client, "bench")),
            "compare mappings": best_of(5, lambda: compare_mappings(mappings, live_mappings, known)),
            "compare settings": best_of(5, lambda: compare_settings(settings, live_settings)),
            "fingerprint": best_of(5, lambda: fingerprint(settings, mappings)),
        }
        assert compare_mappings(mappings, live_mappings, known) == []
        print(f"{len(known)} field paths ({args.fields} requested)")
        for name, seconds in figures.items():
            print(f"{name:22} {seconds * 1000:8.2f} ms")
    finally:
        server.close()


if __name__ == "__main__":
    main()
