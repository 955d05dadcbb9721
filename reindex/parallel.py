"""Loading with worker processes: each builds, serialises and sends its own primary-key ranges.

The parent splits the rows at primary-key quantiles into a few ranges per worker,
hands them to a pool of processes and merges what comes back: rows read, documents
indexed, failures, and the progress bar. Each worker reads the very databases the
parent reads, over its own connections, and sends its bulk requests with its own
client built from ``settings.REINDEX`` (``RebuildOptions.es_url`` first), so the
parent neither serialises nor sends anything. A worker that dies fails the run (a
``multiprocessing.Pool`` would wait forever for its range)::

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
import time
from collections.abc import Iterator
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
    parent: int = 0  # the parent's pid (0: not our child): a worker dies with it


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

    Refuses in-memory SQLite (another process cannot see it) and a database
    transaction (the workers could not see its rows; closing the parent's
    connections before forking would also break it).
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
    parent = os.getpid() if method in ("fork", "spawn") else 0  # a forkserver's workers are not our children
    return WorkerSetup(module or "", names, es_url, parent)


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
    context: Any = multiprocessing.get_context(method)
    if method == "fork":
        connections.close_all()  # a forked child must not share the parent's database sockets
    todo, messages = context.Queue(), context.Queue()
    workers = [
        context.Process(target=_work, args=(setup, todo, messages), name=f"reindex-worker-{i + 1}", daemon=True)
        for i in range(min(options.workers, len(tasks)))
    ]
    bar = progress(total, definition.alias) if progress else None
    finished = False
    try:
        for worker in workers:
            worker.start()
        for task in [*tasks, *[None] * len(workers)]:  # a None tells a worker to exit
            todo.put(task)
        for part in _results(messages, workers, len(tasks), bar):
            merge(result, part)
            if options.on_failure is not None:
                for failure in part.failures:
                    options.on_failure(failure)
            check_failures(result, options.max_errors)
        finished = True
    finally:
        _stop(workers, wait=finished)
        for channel in (todo, messages):
            channel.close()
            channel.cancel_join_thread()  # never wait on a pipe that a killed worker left
        if bar is not None:
            bar.close()


def _results(messages: Any, workers: list[Any], count: int, bar: Any) -> Iterator[RebuildResult]:
    """The ``count`` ranges' results as they finish, updating ``bar`` on the way.

    Raises what a worker raised, RunFailed when a worker dies (killed, out of memory),
    and Interrupted on SIGTERM/SIGINT, which it checks while waiting.
    """
    from reindex import interrupts

    while count:
        interrupts.check()
        # Read before waiting: what a worker put before it exited is in the pipe by then.
        all_gone = all(worker.exitcode is not None for worker in workers)
        try:
            kind, payload = messages.get(timeout=0.2)
        except queue.Empty:
            for worker in workers:  # nothing came: is everyone still there?
                if worker.exitcode not in (None, 0):
                    raise RunFailed(f"worker {worker.pid} died ({_exit_reason(worker.exitcode)})") from None
            if all_gone:
                raise RunFailed(f"the workers exited with {count} of their ranges not loaded") from None
            continue
        if kind == "progress":
            if bar is not None:
                bar.update(payload)
        elif kind == "error":
            raise payload
        else:
            count -= 1
            yield payload


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _stop(workers: list[Any], wait: bool) -> None:
    """Terminate, and at last kill, the workers; with ``wait``, first give them 5 s to exit by themselves."""
    workers = [worker for worker in workers if worker.pid is not None]  # started
    deadline = time.monotonic() + (5 if wait else 0)
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout=5)
        if worker.is_alive():
            worker.kill()
            worker.join()


def merge(result: RebuildResult, part: RebuildResult) -> None:
    """Add one range's counts and failures to the run's result."""
    result.rows_read += part.rows_read
    result.indexed += part.indexed
    result.duplicates += part.duplicates
    failed_before = result.failed
    for failure in part.failures:
        result.add_failure(failure)
    result.failed = failed_before + part.failed  # failures beyond those reported count too


# -- in the worker processes ---------------------------------------------------------

_worker: dict[str, Any] = {}


class _QueueProgress:
    """A progress bar stand-in that forwards its updates to the parent."""

    def __init__(self, messages: Any) -> None:
        self.messages = messages

    def update(self, n: int) -> None:
        self.messages.put(("progress", n))

    def close(self) -> None:
        return None


def _work(setup: WorkerSetup, todo: Any, messages: Any) -> None:
    """A worker: load ranges until told to stop; report each result, or the first error and exit."""
    try:
        _start_worker(setup, messages)
        while (task := todo.get()) is not None:
            messages.put(("result", _load_range(task)))
    except ReindexError as exc:
        messages.put(("error", exc))
    except Exception as exc:
        messages.put(("error", RunFailed(f"worker {os.getpid()}: {type(exc).__name__}: {exc}")))


def _start_worker(setup: WorkerSetup, messages: Any) -> None:
    from django.db import connections

    from reindex import interrupts
    from reindex.config import reindex_settings, setup_django
    from reindex.connection import Connection

    # The parent decides about SIGINT (Ctrl-C reaches the whole process group) and
    # stops workers with SIGTERM; a forked worker must not keep the parent's handlers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(setup.parent)
    interrupts.reset()
    setup_django(setup.settings_module or None)
    for alias, name in setup.databases.items():
        connections[alias].settings_dict["NAME"] = name
    _worker["client"] = Connection(reindex_settings(), setup.es_url).client()
    _worker["progress"] = _QueueProgress(messages)
    _worker["definitions"] = {}


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this worker when its parent dies, even by SIGKILL (Linux).

    A run killed with ``kill -9`` on this host is taken over at once by the next run,
    which deletes the index it was loading: its workers must not go on writing into it.
    """
    if not parent:
        return
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)


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
    try:
        # The lower bound is where the keyset starts, not a second "pk >" condition,
        # which PostgreSQL may misestimate into scanning the rest of the range per batch.
        stream_rows(_worker["client"], definition, queryset, part, task.options, _worker["progress"], after=task.after)
    except ReindexError:
        raise
    except Exception as exc:
        raise RunFailed(f"{definition.alias}: worker {os.getpid()}: {type(exc).__name__}: {exc}") from None
    return part
