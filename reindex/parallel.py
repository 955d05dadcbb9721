"""Loading with worker processes: each builds, serialises and sends its own primary-key ranges.

The parent splits the rows at primary-key quantiles into a few ranges per worker,
hands them to worker processes and merges what comes back: rows read, documents
indexed, failures, and the progress bar. Each worker reads the very databases the
parent reads, over its own connections, and sends its bulk requests with its own
client, built from the very ``Config`` the parent resolved (so every flag and
override reaches it); the parent neither serialises nor sends anything. A worker
that dies fails the run (a ``multiprocessing.Pool`` would wait forever for its range)::

    counts = LoadCounts()
    load_parallel(ProductIndex(), queryset, "products-2026...", counts, Config(workers=2), None, total)

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reindex.config import Config
from reindex.errors import ConfigurationError, ReindexError, RunFailed
from reindex.loading import FailureCallback, LoadCounts, ProgressFactory, check_failures, stream_rows

if TYPE_CHECKING:
    from reindex.definitions import IndexDefinition

#: Ranges per worker: enough that a worker with a slow range does not hold up the end.
RANGES_PER_WORKER = 4


@dataclass(frozen=True)
class WorkerSetup:
    """What a spawned worker needs to read and send what its parent would."""

    settings_module: str
    databases: dict[str, str]  # alias -> NAME, as the parent's connections see them
    config: Config
    parent: int = 0  # the parent's pid (0: not our child): a worker dies with it


@dataclass(frozen=True)
class RangeTask:
    """Rows with ``after < pk <= upto`` (``None``: unbounded) to load into ``index``."""

    definition: str
    index: str
    after: Any
    upto: Any


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
    return wanted or ("fork" if sys.platform.startswith("linux") else "spawn")


def worker_setup(config: Config, method: str = "spawn") -> WorkerSetup:
    """The settings module and database names the workers must use.

    Refuses in-memory SQLite (another process cannot see it) and a database
    transaction (the workers could not see its rows; closing the parent's
    connections before forking would also break it).
    """
    from django.db import connections

    if multiprocessing.current_process().daemon:
        raise ConfigurationError(
            "--workers cannot start processes from a daemonic process (a Celery prefork worker, for one); "
            "use workers=1 there"
        )
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
    return WorkerSetup(module or "", names, config, parent)


def load_parallel(
    definition: IndexDefinition,
    queryset: Any,
    index: str,
    counts: LoadCounts,
    config: Config,
    progress: ProgressFactory | None,
    total: int,
    on_failure: FailureCallback | None = None,
) -> None:
    """Load ``index`` with ``config.workers`` processes and merge what they report into ``counts``."""
    from django.db import connections

    method = start_method(config.worker_start)
    setup = worker_setup(config, method)
    tasks = [
        RangeTask(definition.path, index, after, upto)
        for after, upto in pk_ranges(queryset, total, config.workers * RANGES_PER_WORKER)
    ]
    context: Any = multiprocessing.get_context(method)
    if method == "fork":
        connections.close_all()  # a forked child must not share the parent's database sockets
    todo, messages = context.Queue(), context.Queue()
    workers = [
        context.Process(target=_work, args=(setup, todo, messages), name=f"reindex-worker-{i + 1}", daemon=True)
        for i in range(min(config.workers, len(tasks)))
    ]
    bar = progress(total, definition.alias) if progress else None
    finished = False
    try:
        for worker in workers:
            worker.start()
        for task in [*tasks, *[None] * len(workers)]:  # a None tells a worker to exit
            todo.put(task)
        for part in _results(messages, workers, len(tasks), bar):
            counts.merge(part)
            if on_failure is not None:
                for failure in part.failures:
                    on_failure(failure)
            check_failures(counts, config.max_errors, definition.alias)
        finished = True
    finally:
        _stop(workers, wait=finished)
        for channel in (todo, messages):
            channel.close()
            channel.cancel_join_thread()  # never wait on a pipe that a killed worker left
        if bar is not None:
            bar.close()


def _results(messages: Any, workers: list[Any], count: int, bar: Any) -> Iterator[LoadCounts]:
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
    from reindex.boot import setup_django
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
    _worker["client"] = Connection(setup.config).client()
    _worker["config"] = setup.config
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


def _load_range(task: RangeTask) -> LoadCounts:
    from django.utils.module_loading import import_string

    definitions = _worker["definitions"]
    if task.definition not in definitions:
        definitions[task.definition] = import_string(task.definition)()
    definition = definitions[task.definition]
    queryset = definition.get_queryset()
    if task.upto is not None:
        queryset = queryset.filter(pk__lte=task.upto)
    part = LoadCounts()
    try:
        # The lower bound is where the keyset starts, not a second "pk >" condition,
        # which PostgreSQL may misestimate into scanning the rest of the range per batch.
        # Failures go back with the part (the parent calls on_failure); max_errors is
        # checked here per range and again by the parent on the merged counts.
        stream_rows(
            _worker["client"],
            definition,
            queryset,
            task.index,
            part,
            _worker["config"],
            bar=_worker["progress"],
            after=task.after,
        )
    except ReindexError:
        raise
    except Exception as exc:
        raise RunFailed(f"{definition.alias}: worker {os.getpid()}: {type(exc).__name__}: {exc}") from None
    return part
