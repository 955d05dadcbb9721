"""The lag from commit to searchable: probe names written at a known moment, polled on a thread until found.

Shared by the change queue's and the drain's benchmarks::

    probes = LagProbes(lambda name: searchable(client, "products", name), interval=0.05)
    stop_at = probes.start(seconds)
    while time.monotonic() < stop_at:
        rename_a_product(name)  # committed
        probes.written(name)
    probes.join()
    print(probes.lags)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: Seconds the poller goes on after the writes stop, for the last probes to be found.
GRACE = 60


def searchable(client: Any, index: str, name: str) -> bool:
    """Whether a document named ``name`` (its ``name.raw``) is searchable in ``index``."""
    answer = client.search(index=index, query={"term": {"name.raw": name}}, size=0)
    return bool(answer["hits"]["total"]["value"])


class LagProbes:
    """Names written, each with the moment its transaction committed; ``lags`` once found."""

    def __init__(self, found: Callable[[str], bool], interval: float) -> None:
        self.found, self.interval = found, interval
        self.pending: dict[str, float] = {}
        self.lags: list[float] = []
        self.lock = threading.Lock()
        self.stop_at = float("inf")
        self.thread = threading.Thread(target=self.poll)

    def start(self, seconds: float) -> float:
        """Start polling; the moment the writes should stop."""
        self.stop_at = time.monotonic() + seconds
        self.thread.start()
        return self.stop_at

    def written(self, name: str) -> None:
        """``name`` was committed just now."""
        with self.lock:
            self.pending[name] = time.monotonic()

    def join(self) -> None:
        """Wait until every probe was found, or ``GRACE`` seconds after the writes stopped."""
        self.thread.join()

    def poll(self) -> None:
        while time.monotonic() < self.stop_at + GRACE:
            with self.lock:
                names = list(self.pending)
            if not names and time.monotonic() > self.stop_at:
                return
            for name in names:
                if self.found(name):
                    with self.lock:
                        self.lags.append(time.monotonic() - self.pending.pop(name))
            time.sleep(self.interval)
