"""The index's health at a glance: every figure of ``status``, ``queue status``, ``diff`` and a sampled
``verify`` per alias, and a verdict by the ``HEALTH_*`` thresholds. Never raises.

The health endpoint (``reindex.urls``) and the admin page show this report; the figures
come from the public functions the commands call, each computed there once::

    import reindex

    report = reindex.health()
    if not report.healthy:
        print(report.problems)  # ["products: queue: the oldest change has waited 412 s (over 300 s)", ...]
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex import api
from reindex.config import Config
from reindex.errors import ReindexError, first_line
from reindex.operations.alias_status import AliasStatus
from reindex.operations.verification import VerifyResult
from reindex.queue.entries import QueueStatus
from reindex.queue.throughput import DrainPass
from reindex.results import JsonResult, json_as
from reindex.server.drift import IndexDrift
from reindex.stream.slots import SlotStatus

#: The HTTP status of a healthy and of an unhealthy report.
HEALTHY, UNHEALTHY = 200, 503


def _queue_json(queue: QueueStatus | None) -> dict[str, Any] | None:
    return None if queue is None else {**queue.as_dict(), "depth": queue.depth}


def _watermark_age(each: AliasHealth) -> float | None:
    watermark = each.status.watermark if each.status else None
    return None if watermark is None else round(watermark.age(), 1)


@dataclass
class AliasHealth(JsonResult):
    """One alias: what ``status``, ``queue_status``, ``diff``, ``verify`` and the last drain say, and its problems."""

    json_placed: ClassVar = {"alias": ("healthy",), "status": (("watermark_age", _watermark_age),)}

    alias: str
    problems: list[str] = field(default_factory=list)
    status: AliasStatus | None = None
    queue: QueueStatus | None = field(default=None, metadata=json_as(convert=_queue_json))
    last_drain: DrainPass | None = None
    drift: list[IndexDrift] = field(default_factory=list, metadata=json_as("diff"))
    verify: VerifyResult | None = None
    #: The alias's replication slot, where ``reindex stream`` follows PostgreSQL's log (None: no slot).
    slot: SlotStatus | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def differences(self) -> int | None:
        """``diff``'s verdict: differences between the live index and the code (None when none was compared)."""
        compared = [d for d in self.drift if d.built]
        return sum(len(d.differences) for d in compared) if compared else None


@dataclass
class HealthReport(JsonResult):
    """Every alias's health, the problems outside any alias (server, database), the thresholds applied."""

    json_placed: ClassVar = {"": ("healthy", ("status", lambda report: report.http_status), "problems")}

    #: Problems of no one alias: the search server or the database unreachable, the settings wrong.
    errors: list[str] = field(default_factory=list, metadata=json_as(None))
    checked_at: str = ""
    seconds: float = field(default=0.0, metadata=json_as(rounded=3))
    thresholds: dict[str, Any] = field(default_factory=dict)
    aliases: list[AliasHealth] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Every problem, those of an alias prefixed by its name."""
        return [*self.errors, *(f"{a.alias}: {p}" for a in self.aliases for p in a.problems)]

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def http_status(self) -> int:
        """200 when healthy, else 503."""
        return HEALTHY if self.healthy else UNHEALTHY


def health(*targets: Any, config: Config | None = None, **overrides: Any) -> HealthReport:
    """Check each alias (all when none) against the ``HEALTH_*`` thresholds; never raises.

    A search server that cannot be reached, a database that cannot be read, settings
    that are wrong: each is a problem in the report, not an exception. Overrides of any
    setting (``health_verify_sample=0``, ``es_url=...``).
    """
    started = time.monotonic()
    report = HealthReport(checked_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    try:
        # One try per request: a monitor polls again soon, and must not wait out the run's retries.
        config = (config or api.load_config()).replace(max_retries=0, **overrides)
        aliases = [d.alias for d in api.definitions(*targets, config=config)]
    except ReindexError as exc:
        report.errors.append(f"configuration: {exc}")
        return _finished(report, started)
    report.thresholds = thresholds(config)
    report.aliases = [AliasHealth(alias) for alias in aliases]
    by_alias = {a.alias: a for a in report.aliases}
    _read_queues(report, aliases, config)
    _read_slots(report, by_alias, config)
    _read_server(report, by_alias, config)
    for each in report.aliases:
        each.problems = problems(each, config)
    return _finished(report, started)


def _finished(report: HealthReport, started: float) -> HealthReport:
    report.seconds = time.monotonic() - started
    return report


def thresholds(config: Config) -> dict[str, Any]:
    """The settings the verdict applies, as the report shows them."""
    return {
        "verify_sample": config.health_verify_sample,
        "max_queue_lag": config.health_max_queue_lag,
        "max_dead": config.health_max_dead,
        "stream_max_lag": config.stream_max_lag,
        "stream_max_retained": config.stream_max_retained,
    }


def _read_queues(report: HealthReport, aliases: list[str], config: Config) -> None:
    from django.db import DatabaseError

    try:
        for queue in api.queue_status(*aliases, config=config):
            next(a for a in report.aliases if a.alias == queue.alias).queue = queue
    except DatabaseError as exc:
        report.errors.append(f"database: {first_line(exc)}")
    except ReindexError as exc:  # the queue's table not migrated, the database unreachable
        report.errors.append(first_line(exc))


def _read_slots(report: HealthReport, by_alias: dict[str, AliasHealth], config: Config) -> None:
    """The slots of the aliases that have one (``reindex stream``)."""
    from django.db import DatabaseError

    try:
        for alias, slot in api.slots_of(*by_alias, config=config).items():
            by_alias[alias].slot = slot
    except DatabaseError as exc:
        report.errors.append(f"database: {first_line(exc)}")
    except ReindexError as exc:
        report.errors.append(first_line(exc))


def _read_server(report: HealthReport, by_alias: dict[str, AliasHealth], config: Config) -> None:
    """Status, diff, the last drains, then a sampled verify of the aliases built; the first error ends it."""
    from django.db import DatabaseError

    aliases = list(by_alias)
    try:
        statuses = api.status(*aliases, config=config)
        for status in statuses:
            by_alias[status.alias].status = status
        for drift in api.diff(*aliases, config=config):
            by_alias[drift.alias].drift.append(drift)
        for alias, drained in zip(aliases, api.last_drains(*aliases, config=config), strict=True):
            by_alias[alias].last_drain = drained
        built = [status.alias for status in statuses if status.built]
        if built and config.health_verify_sample:
            for result in api.verify(*built, sample=config.health_verify_sample, config=config):
                by_alias[result.alias].verify = result
    except ReindexError as exc:
        report.errors.append(first_line(exc))
    except DatabaseError as exc:
        report.errors.append(f"database: {first_line(exc)}")


def problems(each: AliasHealth, config: Config) -> list[str]:
    """What is wrong with one alias by the thresholds of ``config`` (empty: healthy)."""
    found: list[str] = []
    status, queue, verify = each.status, each.queue, each.verify
    if status is not None:
        if not status.built and not status.concrete:
            found.append("the alias does not exist (not built)")
        elif not status.count:
            found.append("the alias is empty (0 documents)")
        if status.lock is not None and status.lock.stale:
            holder = status.lock.holder
            found.append(f"lock: stale ({status.lock.reason}), left by {holder.host}:{holder.pid}")
    if verify is not None and not verify.agrees:
        found.append(
            f"verify: {verify.rows} rows, {verify.documents} documents; in a sample of {verify.checked_rows} rows "
            f"and {verify.checked_documents} documents: {verify.missing} missing, {verify.orphans} orphans, "
            f"{verify.stale} stale"
        )
    if queue is not None:
        if queue.lag is not None and queue.lag > config.health_max_queue_lag:
            found.append(
                f"queue: the oldest change has waited {queue.lag:.0f} s (over {config.health_max_queue_lag:g} s)"
            )
        if queue.dead > config.health_max_dead:
            found.append(f"queue: {queue.dead} dead entries (over {config.health_max_dead})")
    if each.slot is not None:
        found += [f"stream: {problem}" for problem in each.slot.problems]
    return found
