"""The health report as Prometheus text (exposition format 0.0.4): one gauge per figure, by alias.

    reindex_healthy 1
    reindex_queue_depth{alias="products"} 12

Figures that are unknown (the server down, nothing queued) are left out, not written as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from reindex.healthcheck import AliasHealth, HealthReport

#: Each gauge: its name, its help text, and how to read it from one alias's health (None: unknown).
GAUGES: list[tuple[str, str, Callable[[AliasHealth], Any]]] = [
    ("reindex_alias_healthy", "1 when the alias passes every health threshold", lambda a: int(a.healthy)),
    ("reindex_documents", "documents in the live index", lambda a: a.status.count if a.status else None),
    ("reindex_rows", "rows of the definition's queryset (the sampled verify)", lambda a: a.verify and a.verify.rows),
    ("reindex_differences", "differences between the live index and the code (diff)", lambda a: a.differences),
    (
        "reindex_watermark_age_seconds",
        "seconds since the watermark of the last update or rebuild",
        lambda a: a.status.watermark.age() if a.status and a.status.watermark else None,
    ),
    (
        "reindex_lock_stale",
        "1 when the alias's lock is stale, 0 when held and live",
        lambda a: int(a.status.lock.stale) if a.status and a.status.lock else None,
    ),
    ("reindex_queue_depth", "entries waiting in the change queue", lambda a: a.queue.depth if a.queue else None),
    ("reindex_queue_dead", "dead entries in the change queue", lambda a: a.queue.dead if a.queue else None),
    (
        "reindex_queue_lag_seconds",
        "seconds the oldest change waiting in the queue has waited",
        lambda a: a.queue.lag if a.queue else None,
    ),
    (
        "reindex_drain_rate",
        "entries per second of the last drain pass",
        lambda a: a.last_drain.rate if a.last_drain else None,
    ),
    (
        "reindex_stream_lag_seconds",
        "seconds since the oldest change the stream has not sent was committed",
        lambda a: a.slot.lag_seconds if a.slot else None,
    ),
    (
        "reindex_stream_retained_bytes",
        "bytes of WAL the alias's replication slot makes PostgreSQL keep",
        lambda a: a.slot.retained_bytes if a.slot else None,
    ),
]


def exposition(report: HealthReport) -> str:
    """The report as Prometheus text."""
    return "".join(f"{line}\n" for line in _lines(report))


def _lines(report: HealthReport) -> Iterator[str]:
    yield "# HELP reindex_healthy 1 when every alias passes every health threshold"
    yield "# TYPE reindex_healthy gauge"
    yield f"reindex_healthy {int(report.healthy)}"
    for name, text, read in GAUGES:
        values = [(a.alias, read(a)) for a in report.aliases]
        values = [(alias, value) for alias, value in values if value is not None]
        if not values:
            continue
        yield f"# HELP {name} {text}"
        yield f"# TYPE {name} gauge"
        for alias, value in values:
            yield f'{name}{{alias="{_escaped(alias)}"}} {_number(value)}'


def _number(value: Any) -> str:
    return str(value) if isinstance(value, int) else repr(round(float(value), 3))


def _escaped(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
