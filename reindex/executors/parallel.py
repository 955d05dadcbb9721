"""The processes executor (``--workers N``): worker processes each build, serialise and send their own ranges.

The parent hands a build's primary-key ranges (``reindex.executors.ranges``: split at quantiles,
a few per worker) to worker processes and merges what comes back: rows read, documents
indexed, failures, and the progress bar. Each worker records the ranges it loads in the
search server like any executor (``reindex.executors.load_range``). Each worker reads the very databases the
parent reads, over its own connections, and sends its bulk requests with its own
client, built from the very ``Config`` the parent resolved (so every flag and
override reaches it); the parent neither serialises nor sends anything. A worker
that dies fails the run (a ``multiprocessing.Pool`` would wait forever for its range)::

    run_ranges(Job(client, ProductIndex(), build, Config(workers=2), merger.absorb, bar), [0, 1, 2, 3])

Workers are forked on Linux: they inherit the booted Django and start in
milliseconds, where a spawned worker spends about half a CPU second importing and
setting up the site. Elsewhere, or with ``worker_start="spawn"``, they are spawned
and set Django up themselves.
"""

from __future__ import annotations

import datetime
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
from reindex.errors import ConfigurationError, Interrupted, ReindexError, RunFailed
from reindex.executors.ranges import BuildState, RangeResult, pk_ranges
from reindex.pipeline.loading import FailureCallback, LoadCounts, ProgressFactory, check_failures

if TYPE_CHECKING:
    from reindex.definitions.definition import IndexDefinition
    from reindex.executors.local import Job

#: Ranges per worker for ``update --workers``: enough that a slow range does not hold up the end.
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
    """Range ``number`` of ``build`` to load with the definition at dotted path ``definition``."""

    definition: str
    build: BuildState
    number: int


@dataclass(frozen=True)
class UpdateTask:
    """Rows with ``after < pk <= upto`` (``None``: unbounded) to write in place into ``index`` (``update``).

    ``since``: only the rows changed since then; else every row (``update --all``).
    """

    definition: str
    index: str
    after: Any
    upto: Any
    since: datetime.datetime | None = None


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


def run_ranges(job: Job, numbers: list[int]) -> None:
    """The processes executor: load ranges ``numbers`` with ``config.workers`` processes, ``absorb`` each result."""
    tasks = [RangeTask(job.definition.path, job.build, number) for number in numbers]
    for result in run_tasks(job.config, tasks, job.bar):
        if result is not None:  # None: the range was done already
            job.absorb(result)


def update_parallel(
    definition: IndexDefinition,
    index: str,
    counts: LoadCounts,
    config: Config,
    progress: ProgressFactory | None,
    total: int,
    on_failure: FailureCallback | None = None,
    *,
    since: datetime.datetime | None = None,
) -> None:
    """``update`` with ``config.workers`` processes: the rows changed ``since`` (else every row), in place.

    The rows (or the changed keys) are split at primary-key quantiles into a few ranges
    per worker; each worker writes its ranges into ``index`` and the parent merges the
    counts into ``counts``.
    """
    from django.db.models import QuerySet

    from reindex.pipeline.changes import changed_keys

    keys = definition.get_queryset() if since is None else changed_keys(definition, since)
    parts = config.workers * RANGES_PER_WORKER if isinstance(keys, QuerySet) else 1
    tasks = [UpdateTask(definition.path, index, after, upto, since) for after, upto in pk_ranges(keys, total, parts)]
    bar = progress(total, definition.alias) if progress else None
    try:
        for part in run_tasks(config, tasks, bar):
            counts.merge(part)
            if on_failure is not None:
                for failure in part.failures:
                    on_failure(failure)
            check_failures(counts, config.max_errors, definition.alias)
    finally:
        if bar is not None:
            bar.close()


def run_tasks(config: Config, tasks: list[Any], bar: Any) -> Iterator[Any]:
    """Hand ``tasks`` to ``config.workers`` worker processes; yield each task's result as it comes."""
    from django.db import connections

    method = start_method(config.worker_start)
    setup = worker_setup(config, method)
    context: Any = multiprocessing.get_context(method)
    if method == "fork":
        connections.close_all()  # a forked child must not share the parent's database sockets
    todo, messages = context.Queue(), context.Queue()
    workers = [
        context.Process(target=_work, args=(setup, todo, messages), name=f"reindex-worker-{i + 1}", daemon=True)
        for i in range(min(config.workers, len(tasks)))
    ]
    finished = False
    try:
        for worker in workers:
            worker.start()
        for task in [*tasks, *[None] * len(workers)]:  # a None tells a worker to exit
            todo.put(task)
        yield from _results(messages, workers, len(tasks), bar)
        finished = True
    finally:
        _stop(workers, wait=finished)
        for channel in (todo, messages):
            channel.close()
            channel.cancel_join_thread()  # never wait on a pipe that a killed worker left


def _results(messages: Any, workers: list[Any], count: int, bar: Any) -> Iterator[Any]:
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
    """A progress bar stand-in that forwards its updates to the parent, while there is one.

    A parent killed with ``kill -9`` cannot stop its workers: each stops at its next
    update instead of loading on for a run that is over (the range stays unfinished
    for ``--resume``).
    """

    def __init__(self, messages: Any) -> None:
        self.messages = messages
        self.parent = os.getppid()

    def update(self, n: int) -> None:
        if os.getppid() != self.parent:
            raise Interrupted(f"worker {os.getpid()}: the run that started it is gone")
        self.messages.put(("progress", n))

    def close(self) -> None:
        return None


def _work(setup: WorkerSetup, todo: Any, messages: Any) -> None:
    """A worker: load ranges until told to stop; report each result, or the first error and exit."""
    try:
        _start_worker(setup, messages)
        while (task := todo.get()) is not None:
            run = _update_range if isinstance(task, UpdateTask) else _load_range
            messages.put(("result", run(task)))
    except ReindexError as exc:
        messages.put(("error", exc))
    except Exception as exc:
        messages.put(("error", RunFailed(f"worker {os.getpid()}: {type(exc).__name__}: {exc}")))


def _start_worker(setup: WorkerSetup, messages: Any) -> None:
    from django.db import connections

    from reindex import interrupts
    from reindex.boot import setup_django
    from reindex.server.connection import Connection

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


def _definition(path: str) -> Any:
    from django.utils.module_loading import import_string

    definitions = _worker["definitions"]
    if path not in definitions:
        definitions[path] = import_string(path)()
    return definitions[path]


def _load_range(task: RangeTask) -> RangeResult | None:
    from reindex.executors.local import load_range

    definition = _definition(task.definition)
    try:
        # Failures go back with the result (the parent calls on_failure); max_errors is
        # checked per range here and on the merged counts by the parent.
        client, config, bar = _worker["client"], _worker["config"], _worker["progress"]
        return load_range(client, definition, task.build, task.number, config, bar)
    except ReindexError:
        raise
    except Exception as exc:
        raise RunFailed(f"{definition.alias}: worker {os.getpid()}: {type(exc).__name__}: {exc}") from None


def _update_range(task: UpdateTask) -> LoadCounts:
    from reindex.pipeline.changes import changed_pk_chunks
    from reindex.pipeline.loading import stream_changes, stream_rows

    definition = _definition(task.definition)
    client, config, bar = _worker["client"], _worker["config"], _worker["progress"]
    part = LoadCounts()
    try:
        # Failures go back with the part (the parent calls on_failure); max_errors is
        # checked here per range and again by the parent on the merged counts.
        if task.since is not None:
            size = config.batch_size_for(definition)
            chunks = changed_pk_chunks(definition, task.since, size, after=task.after, upto=task.upto)
            stream_changes(client, definition, chunks, task.index, part, config, bar=bar)
        else:
            queryset = definition.get_queryset()
            if task.upto is not None:
                queryset = queryset.filter(pk__lte=task.upto)
            stream_rows(
                client, definition, queryset, task.index, part, config, bar=bar, after=task.after, in_place=True
            )
    except ReindexError:
        raise
    except Exception as exc:
        raise RunFailed(f"{definition.alias}: worker {os.getpid()}: {type(exc).__name__}: {exc}") from None
    return part
