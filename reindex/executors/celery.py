"""The Celery executor: one task per primary-key range, run by the site's own Celery workers.

The coordinator (``rebuild --executor celery``) holds the alias's lock, creates the
index and records its ranges in the search server (``reindex.executors.ranges``) like any run;
then it sends one ``reindex.load_range`` task per range to ``config.celery_queue`` and
follows the range documents: it merges each range's counts and failures once, keeps the
``--max-errors`` budget over all of them, and shows the progress of the running ones.
The workers need no result backend: a range's result is its document::

    reindex.rebuild("products", executor="celery", workers=8)  # ranges for about 8 worker processes

What a worker needs: the site's code and settings, this task registered (``"reindex"``
in ``INSTALLED_APPS`` with ``app.autodiscover_tasks()``, which finds ``reindex.tasks``),
and ``worker_prefetch_multiplier = 1`` so that a worker holds one range at a time per
process. The task is acknowledged late and rejected when its worker process dies
(``acks_late``, ``reject_on_worker_lost``), so the broker delivers a range whose worker
was killed to another worker; the new attempt claims the range (a compare-and-swap on
its document) and the counts recorded are that attempt's alone. A running range
without a heartbeat for ``LOCK_TTL`` seconds (a whole worker machine gone, its message
not yet redelivered) is sent again; a run whose ranges no worker takes for ``LOCK_TTL``
seconds (a minute at least) fails.

A task whose build is gone (the coordinator failed, was interrupted or gave up)
stops within a second (at its next heartbeat) without recording anything, and deletes the index if its own
last bulk request re-created it. Celery is imported only when this executor is asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from celery import shared_task

from reindex import interrupts
from reindex.config import SECRET_FIELDS, Config
from reindex.errors import ConfigurationError, LockLost, RunFailed, Superseded
from reindex.executors.local import Job
from reindex.executors.ranges import DONE, FAILED, PENDING, RUNNING, BuildState, dropped_if_recreated

TASK_NAME = "reindex.load_range"
#: Seconds between two reads of the range documents left, by the coordinator: a tenth of a
#: second (a run's end is noticed soon), up to a second when thousands of ranges are left.
POLL_INTERVAL = (0.1, 1.0)
#: Ranges left per second of the interval between two reads.
RANGES_PER_POLL_SECOND = 2000
#: Seconds at least (``LOCK_TTL`` if longer) before a run whose ranges no worker took fails.
NO_WORKER_TIMEOUT = 60.0
#: Settings a worker takes from the coordinator's explicit overrides (secrets never cross the broker).
NOT_SENT = SECRET_FIELDS | {"executor", "workers", "worker_start", "celery_app", "celery_queue"}

_clients: dict[str, Any] = {}


@shared_task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def load_range_task(definition: str, index: str, ranges: int, number: int, overrides: dict[str, Any]) -> str:
    """Load range ``number`` of the build of ``index`` in a Celery worker; what happened, in a word."""
    from django.utils.module_loading import import_string

    from reindex.executors.local import load_range

    config = Config.load(**overrides)
    client = _client(config)
    build = BuildState(config.lock_index, index, ranges)
    try:
        result = load_range(client, import_string(definition)(), build, number, config)
    except Superseded:
        if not build.alive(client):
            dropped_if_recreated(client, index)
        return "superseded"
    if result is None:
        return "done already"
    return "failed" if result.error else "done"


def _client(config: Config) -> Any:
    """One client per worker process and configuration."""
    from reindex.server.connection import Connection

    key = repr(config)
    if key not in _clients:
        _clients[key] = Connection(config).client()
    return _clients[key]


def worker_overrides(config: Config) -> dict[str, Any]:
    """The coordinator's explicit settings that the workers apply over their own (no secrets)."""
    return {name: getattr(config, name) for name in sorted(config.explicit - NOT_SENT)}


def celery_app(config: Config) -> Any:
    """The site's Celery app: ``REINDEX["CELERY_APP"]``, else the current app if the site set one up."""
    from celery import current_app

    if config.celery_app:
        from django.utils.module_loading import import_string

        try:
            return import_string(config.celery_app)
        except ImportError as exc:
            raise ConfigurationError(f"REINDEX['CELERY_APP']: cannot import {config.celery_app}: {exc}") from None
    app = current_app._get_current_object()
    if app.main == "default" and not app.conf.broker_url:
        raise ConfigurationError(
            "--executor celery: no Celery app is set up in this process; "
            "set REINDEX['CELERY_APP'] to your app's dotted path (e.g. 'mysite.celery.app')"
        )
    return app


def check_broker(app: Any) -> None:
    """ConfigurationError when the app's broker URL names a transport Celery cannot use (a typo in its
    scheme, or a transport whose library is not installed). Connects to nothing."""
    from urllib.parse import urlsplit

    try:
        app.connection_for_write().release()
    except (KeyError, ImportError, ValueError) as exc:
        scheme = urlsplit(str(app.conf.broker_url or "")).scheme or "(none)"
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ConfigurationError(
            f"--executor celery: the Celery broker URL (scheme {scheme}://) names no transport Celery can use: "
            f"{reason}; check CELERY_BROKER_URL (broker_url)"
        ) from None


def run_ranges(job: Job, numbers: list[int]) -> None:
    """The Celery executor: send one task per range of ``numbers``, follow them, ``absorb`` each result."""
    app = celery_app(job.config)
    check_broker(app)
    overrides = worker_overrides(job.config)

    def send(number: int) -> None:
        from kombu.exceptions import OperationalError

        args = [job.definition.path, job.build.index, job.build.ranges, number, overrides]
        try:
            app.send_task(TASK_NAME, args=args, queue=job.config.celery_queue)
        except OperationalError as exc:  # the broker is down: the run fails, as with the search server down
            with app.connection_for_write() as connection:
                where = connection.as_uri()  # its password masked
            what = f"{job.definition.alias}: cannot send the range tasks to the Celery broker at {where}"
            raise RunFailed(f"{what}: {exc}") from exc

    for number in numbers:
        send(number)
    Follower(job, set(numbers), send).run()


class Follower:
    """The coordinator's loop: read the ranges left, merge those finished, resend the stalled ones."""

    def __init__(self, job: Job, todo: set[int], send: Callable[[int], None]) -> None:
        self.client, self.build, self.config, self.lock = job.client, job.build, job.config, job.lock
        self.bar, self.absorb, self.todo, self.send = job.bar, job.absorb, todo, send
        self.started = time.time()
        self.resent: dict[int, float] = {}
        self.finished_rows = self.shown = 0
        self.claimed = False

    def run(self) -> None:
        while self.todo:
            interrupts.check()
            if self.lock is not None and self.lock.lost:
                raise LockLost(f"{self.build.index}: another run took the lock over; the ranges were left")
            running_rows = sum(self.step(state) for state in self.build.read(self.client, sorted(self.todo)))
            self.show(self.finished_rows + running_rows)
            if self.todo:
                shortest, longest = POLL_INTERVAL
                interrupts.sleep(min(longest, max(shortest, len(self.todo) / RANGES_PER_POLL_SECOND)))

    def step(self, state: Any) -> int:
        """Take in one range's state; the rows its running attempt has read so far."""
        if state.state != PENDING:
            self.claimed = True
        if state.state in (DONE, FAILED) and state.result is not None:
            self.todo.discard(state.number)
            self.finished_rows += state.result.counts.rows_read
            self.absorb(state.result)  # raises when the run must stop
            return 0
        now, stale = time.time(), self.config.lock_ttl
        unserved = max(stale, NO_WORKER_TIMEOUT)
        if state.state == PENDING and not self.claimed and now - self.started > unserved:
            raise RunFailed(
                f"{self.build.index}: no Celery worker took a range from queue {self.config.celery_queue!r} "
                f"in {unserved:g}s (is a worker serving it?)"
            )
        if state.state == RUNNING:
            if now - state.heartbeat > stale and now - self.resent.get(state.number, 0) > stale:
                self.resent[state.number] = now
                self.send(state.number)  # its worker went silent: another one takes it over
            return state.rows
        return 0

    def show(self, rows: int) -> None:
        if self.bar is not None and rows > self.shown:
            self.bar.update(rows - self.shown)
            self.shown = rows
