"""Loading with worker processes: each builds, serialises and sends its own primary-key ranges.

The parent splits the rows at primary-key quantiles into a few ranges per worker,
hands them to a pool of processes and merges what comes back: rows read, documents
indexed, failures, and the progress bar. Each worker reads the very databases the
parent reads, over its own connections, and sends its bulk requests with its own
client built from ``settings.REINDEX`` (``RebuildOptions.es_url`` first), so the
parent neither serialises nor sends anything::

    rebuild(ProductIndex(), client, RebuildOptions(workers=2))

Workers are forked on Linux: they inherit the booted Django and start in
milliseconds, where a spawned worker spends about half a CPU second importing and
setting up the site. Elsewhere, or with ``worker_start="spawn"``, they are spawned
and set Django up themselves.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import signal
import sys
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from reindex.errors import ConfigurationError, ReindexError, RunFailed

if TYPE_CHECKING:
    from reindex.definitions import IndexDefinition
    from reindex.rebuild import ProgressFactory, RebuildOptions, RebuildResult

#: Ranges per worker: enough that a worker with a slow range does not hold up the end.
RANGES_PER_WORKER = 4


@dataclass(frozen=True)
class WorkerSetup:
    """What a spawned worker needs to read and send what its parent would."""

    settings_module: str
    databases: dict[str, str]  # alias -> NAME, as the parent's connections see them
    es_url: str | None


@dataclass(frozen=True)
class RangeTask:
    """Rows with ``after < pk <= upto`` (``None``: unbounded) to load into ``index``."""

    definition: str
    index: str
    after: Any
    upto: Any
    options: RebuildOptions


def pk_ranges(queryset: Any, total: int, parts: int) -> list[tuple[Any, Any]]:
    """Split the rows into at most ``parts`` ranges of about equal size, at primary-key quantiles.

    One query, numbering the rows in primary-key order with a window function (no
    OFFSET); works for any orderable primary key, however sparse.
    """
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    if parts <= 1 or total <= parts:
        return [(None, None)]
    step = math.ceil(total / parts)
    bounds = list(
        queryset.order_by()
        .values_list("pk", flat=True)
        .annotate(position=Window(RowNumber(), order_by=F("pk").asc()))
        .annotate(phase=F("position") % step)
        .filter(phase=0, position__lt=total)
        .order_by("pk")
    )
    return list(zip([None, *bounds], [*bounds, None], strict=True))


def start_method(wanted: str | None = None) -> str:
    """``wanted``, else ``fork`` on Linux and ``spawn`` elsewhere (where fork is unsafe or missing)."""
    method = wanted or ("fork" if sys.platform.startswith("linux") else "spawn")
    if method not in multiprocessing.get_all_start_methods():
        choices = ", ".join(multiprocessing.get_all_start_methods())
        raise ConfigurationError(f"WORKER_START {method!r} is not a start method here (one of {choices})")
    return method


def worker_setup(es_url: str | None, method: str = "spawn") -> WorkerSetup:
    """The settings module and database names the workers must use.

    Refuses in-memory SQLite (another process cannot see it) and, for ``fork``, a
    database transaction (the workers could not see its rows; closing the parent's
    connections before forking would break it).
    """
    from django.db import connections

    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if not module and method != "fork":
        raise ConfigurationError("--workers needs a settings module (--settings or DJANGO_SETTINGS_MODULE)")
    names = {}
    for alias in connections:
        name = str(connections[alias].settings_dict["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise ConfigurationError(f"--workers cannot share the in-memory database {alias!r} between processes")
        if connections[alias].in_atomic_block:
            raise ConfigurationError(
                f"--workers cannot load inside a transaction on {alias!r}: workers would not see its rows"
            )
        names[alias] = name
    return WorkerSetup(module or "", names, es_url)


def load_parallel(
    definition: IndexDefinition,
    queryset: Any,
    result: RebuildResult,
    options: RebuildOptions,
    progress: ProgressFactory | None,
    total: int,
) -> None:
    """Load ``result.new_index`` with ``options.workers`` processes and merge what they report."""
    from django.db import connections

    from reindex.rebuild import check_failures

    assert result.new_index is not None
    method = start_method(options.worker_start)
    setup = worker_setup(options.es_url, method)
    per_worker = replace(options, workers=1, on_failure=None)  # failures come back with the results
    tasks = [
        RangeTask(definition.path, result.new_index, after, upto, per_worker)
        for after, upto in pk_ranges(queryset, total, options.workers * RANGES_PER_WORKER)
    ]
    context = multiprocessing.get_context(method)
    updates = context.Queue()
    if method == "fork":
        connections.close_all()  # a forked child must not share the parent's database sockets
    pool = context.Pool(min(options.workers, len(tasks)), initializer=_start_worker, initargs=(setup, updates))
    bar = progress(total, definition.alias) if progress else None
    stop_relay = threading.Event()
    relay = threading.Thread(target=_relay_progress, args=(updates, bar, stop_relay), daemon=True)
    relay.start()
    try:
        for part in _results(pool.imap_unordered(_load_range, tasks)):
            merge(result, part)
            if options.on_failure is not None:
                for failure in part.failures:
                    options.on_failure(failure)
            check_failures(result, options.max_errors)
        pool.close()  # let workers exit normally
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
        # Not a sentinel on the queue: a terminated worker may have died holding its
        # write lock, and a put() from here would then wait forever.
        stop_relay.set()
        relay.join()
        updates.close()
        updates.cancel_join_thread()
        if bar is not None:
            bar.close()


def _results(parts: Any) -> Any:
    """The ranges' results as they finish, checking for SIGTERM/SIGINT while waiting."""
    from reindex import interrupts

    while True:
        try:
            yield parts.next(timeout=0.5)
        except multiprocessing.TimeoutError:
            interrupts.check()
        except StopIteration:
            return


def merge(result: RebuildResult, part: RebuildResult) -> None:
    """Add one range's counts and failures to the run's result."""
    result.rows_read += part.rows_read
    result.indexed += part.indexed
    result.duplicates += part.duplicates
    failed_before = result.failed
    for failure in part.failures:
        result.add_failure(failure)
    result.failed = failed_before + part.failed  # failures beyond those reported count too


def _relay_progress(updates: Any, bar: Any, stop: threading.Event) -> None:
    while True:
        try:
            n = updates.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return
            continue
        if bar is not None:
            bar.update(n)


# -- in the worker processes ---------------------------------------------------------

_worker: dict[str, Any] = {}


class _QueueProgress:
    """A progress bar stand-in that forwards its updates to the parent."""

    def __init__(self, updates: Any) -> None:
        self.updates = updates

    def update(self, n: int) -> None:
        self.updates.put(n)

    def close(self) -> None:
        return None


def _start_worker(setup: WorkerSetup, updates: Any) -> None:
    from django.db import connections

    from reindex import interrupts
    from reindex.config import reindex_settings, setup_django
    from reindex.connection import Connection

    # The parent decides about SIGINT (Ctrl-C reaches the whole process group) and
    # stops workers with SIGTERM; a forked worker must not keep the parent's handlers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    interrupts.reset()
    setup_django(setup.settings_module or None)
    for alias, name in setup.databases.items():
        connections[alias].settings_dict["NAME"] = name
    _worker["client"] = Connection(reindex_settings(), setup.es_url).client()
    _worker["progress"] = _QueueProgress(updates)
    _worker["definitions"] = {}


def _load_range(task: RangeTask) -> RebuildResult:
    from django.utils.module_loading import import_string

    from reindex.rebuild import RebuildResult, stream_rows

    definitions = _worker["definitions"]
    if task.definition not in definitions:
        definitions[task.definition] = import_string(task.definition)()
    definition = definitions[task.definition]
    queryset = definition.get_queryset()
    if task.upto is not None:
        queryset = queryset.filter(pk__lte=task.upto)
    part = RebuildResult(alias=definition.alias, definition=definition.path, new_index=task.index)
    progress = _worker["progress"]
    try:
        # The lower bound is where the keyset starts, not a second "pk >" condition,
        # which PostgreSQL may misestimate into scanning the rest of the range per batch.
        stream_rows(_worker["client"], definition, queryset, part, task.options, progress, False, task.after)
    except ReindexError:
        raise
    except Exception as exc:
        raise RunFailed(f"{definition.alias}: worker {os.getpid()}: {type(exc).__name__}: {exc}") from None
    return part
