"""What unattended safety costs: the lock's round trips, and how long an outage a bulk request rides out.

    python benchmarks/unattended_benchmark.py [--outages 1,3,10] [--docs 500]

Starts an in-memory osmem-server and a fault-injecting proxy in front of it (the one
the tests use), then prints:

- the time to take and release an alias lock (best of twenty);
- for each outage length, with the default retry settings, how long one bulk request
  of ``--docs`` documents took to succeed when the proxy dropped every connection (or
  answered 429) for that long, and how many retries it logged;
- the longest outage the defaults ride out (the sum of the backoff waits).

Needs the ``dev`` extra.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout, and its tests' proxy

from reindex.config import Config
from reindex.server.connection import Connection
from reindex.server.locking import AliasLock
from reindex.server.retries import worst_case_wait
from tests.faultproxy import FaultProxy


class Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def lock_round_trip(client: Any, runs: int = 20) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        with AliasLock(client, "bench", ttl=60):
            pass
        best = min(best, time.perf_counter() - started)
    return best


def ride_out(client: Any, proxy: FaultProxy, fault: str, seconds: float, docs: int) -> tuple[float, int]:
    counter = Counter()
    logger = logging.getLogger("reindex.server.retries")
    logger.addHandler(counter)
    operations: list[dict[str, Any]] = []
    for n in range(docs):
        operations += [{"index": {"_index": "bench", "_id": str(n)}}, {"n": n}]
    proxy.fail(fault, seconds)
    started = time.perf_counter()
    try:
        client.bulk(operations=operations)
    finally:
        logger.removeHandler(counter)
    return time.perf_counter() - started, counter.count


def main() -> None:
    from osmem_server import OsmemServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", default="1,3,10", help="outage lengths in seconds, comma-separated")
    parser.add_argument("--docs", type=int, default=500)
    args = parser.parse_args()
    logging.getLogger("reindex.server.retries").setLevel(logging.WARNING)
    logging.getLogger("reindex.server.retries").propagate = False
    server = OsmemServer.start(japanese=False)
    try:
        direct = Connection(Config(hosts=(server.url,))).client()
        print(f"lock acquire + release: {lock_round_trip(direct) * 1000:.1f} ms (best of 20)")
        bound = worst_case_wait(Config.max_retries, Config.retry_backoff, Config.retry_backoff_max)
        print(f"defaults ride out outages up to {bound:.1f} s per request ({Config.max_retries} retries)")
        with FaultProxy(server.url) as proxy:
            client = Connection(Config(hosts=(proxy.url,))).client()
            for fault in ("refuse", "429"):
                for seconds in [float(s) for s in args.outages.split(",")]:
                    took, retries = ride_out(client, proxy, fault, seconds, args.docs)
                    print(
                        f"{fault:>6} for {seconds:4.1f} s: bulk of {args.docs} succeeded after {took:5.2f} s, "
                        f"{retries} retries (waited {took - seconds:+.2f} s past the outage)"
                    )
    finally:
        server.close()


if __name__ == "__main__":
    main()
