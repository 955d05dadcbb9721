"""SIGTERM and SIGINT as an exception that unwinds through a run's clean-up.

``timeout`` from cron, a deploy or Ctrl-C sends a signal. Inside
``signals_raise_interrupted()`` the handler only records it; the run calls ``check()``
at safe points (between batches, before retries, before the swap), which raises
``Interrupted`` there, so the rebuild deletes its partial index, releases its lock and
leaves the alias as it was. Raising from the handler itself would land inside the HTTP
or database client, which may swallow it as a connection error and retry.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reindex.errors import Interrupted

HANDLED = (signal.SIGTERM, signal.SIGINT)


class _State:
    pending: int | None = None
    raised = False


_state = _State()


def _record(signum: int, frame: Any) -> None:
    if _state.pending is None:
        _state.pending = signum


@contextmanager
def signals_raise_interrupted() -> Iterator[None]:
    """Record SIGTERM and SIGINT inside the block for ``check()`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _record) for sig in HANDLED}
    reset()
    try:
        yield
        check()  # a signal that came after the last safe point still fails the command
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reset()


def reset() -> None:
    """Forget a recorded signal (a forked worker inherits its parent's record)."""
    _state.pending, _state.raised = None, False


def check() -> None:
    """Raise ``Interrupted`` once if a signal came; afterwards let the clean-up run."""
    if _state.pending is not None and not _state.raised:
        _state.raised = True
        raise Interrupted.by(_state.pending)


def sleep(seconds: float) -> None:
    """``time.sleep`` that wakes up to ``check()`` for a signal every tenth of a second."""
    deadline = time.monotonic() + seconds
    while True:
        check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.1, left))
